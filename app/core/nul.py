"""API requests may not carry NUL (U+0000) in their text.

JSON and URLs can carry it, but no one means to send it and PostgreSQL cannot store it in text,
so a request that does is refused (422, naming where) before anything is read or written, and
does the same on every database.
"""

import contextlib
import json

from fastapi import Request

from app.core.errors import InvalidInput

NUL = "\x00"


def _paths_with_nul(value, path: str):
    if isinstance(value, str):
        if NUL in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if NUL in str(key):
                yield inner
            yield from _paths_with_nul(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths_with_nul(item, f"{path}.{index}" if path else str(index))


async def refuse_nul_characters(request: Request) -> None:
    """A dependency of the API router. Form fields (only the evidence note) say so themselves."""
    fields = [
        f"query.{name}"
        for name, value in request.query_params.multi_items()
        if NUL in name or NUL in value
    ]
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()
        if b"\\u0000" in body:  # the only way JSON writes a NUL
            with contextlib.suppress(ValueError):  # not JSON: FastAPI answers that itself
                fields += list(_paths_with_nul(json.loads(body), ""))
    if fields:
        raise InvalidInput(
            "Text may not contain NUL (U+0000) characters.",
            errors=[{"field": field, "message": "contains a NUL character"} for field in fields],
        )
