"""Conditional requests on single API resources: `ETag` with `If-None-Match` (304) on reads and
`If-Match` (412 on a lost update) on writes. The tag is a hash of the JSON representation, so it
changes exactly when what the client would see changes."""

import hashlib
from typing import Annotated

import orjson
from fastapi import Header
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from app.core.errors import DomainError

IfNoneMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description="An `ETag` from an earlier answer: if the resource has not changed since, "
        "the answer is `304 Not Modified` with no body",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description="The `ETag` of the version you changed: if someone else has changed the "
        "resource since, nothing is written and the answer is `412 Precondition Failed`",
    ),
]


class PreconditionFailed(DomainError):
    status_code = 412
    title = "Precondition failed"


def etag_of(resource: BaseModel) -> str:
    body = orjson.dumps(resource.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _tags(header: str) -> set[str]:
    # Weak comparison (RFC 9110 8.8.3.2): W/"x" matches "x".
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _matches(header: str, etag: str) -> bool:
    tags = _tags(header)
    return "*" in tags or etag in tags


def json_with_etag(
    resource: BaseModel, *, if_none_match: str | None = None, status_code: int = 200
) -> Response:
    """The resource with its ETag, or 304 when the client already holds this version."""
    etag = etag_of(resource)
    headers = {"ETag": etag}
    if if_none_match and _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(resource.model_dump(mode="json"), status_code=status_code, headers=headers)


def require_current(resource: BaseModel, if_match: str | None) -> None:
    """Refuse a write made against an older version than the one stored."""
    if if_match is None:
        return
    if not _matches(if_match, etag_of(resource)):
        raise PreconditionFailed(
            "The resource has changed since you read it. Fetch it again, reapply your change "
            "and send it with the new ETag in If-Match.",
            errors=[{"field": "If-Match", "message": "does not match the current ETag"}],
        )
