"""A cap on request bodies, enforced before and while they stream in (pure ASGI).

A request whose Content-Length is over the cap is answered 413 at once, without calling the
application. Otherwise the body is counted as the application reads it; the moment it passes the
cap, Haven answers 413 and the application is told the client has gone (an `http.disconnect`),
so it stops reading and whatever it answers afterwards is dropped. Under /api/ the answer is
problem+json; elsewhere a short HTML page (a fragment for htmx, shown in the #flash region).
"""

from html import escape

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.error_handlers import problem_response

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TITLE = "Upload too large"


def _readable(size: int) -> str:
    """ "10 MB", "10.5 MB"; smaller limits (tests, odd settings) in KB or bytes."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size:,} bytes"


class BodySizeLimitMiddleware:
    """`max_bytes` caps the whole body of a multipart upload. `file_limit_bytes`, when given, is
    the per-file limit quoted in the message (the body cap is usually a little larger, to leave
    room for the form's other fields). `max_data_bytes`, when given, caps every other body (JSON,
    plain forms), which never needs to be as large as a file."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        file_limit_bytes: int | None = None,
        max_data_bytes: int | None = None,
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.file_limit_bytes = file_limit_bytes or max_bytes
        self.max_data_bytes = max_data_bytes or max_bytes

    def _limit(self, scope: Scope) -> int:
        content_type = Headers(scope=scope).get("content-type", "")
        if content_type.lower().startswith("multipart/"):
            return self.max_bytes
        return self.max_data_bytes

    def _too_large(self, scope: Scope) -> Response:
        headers = Headers(scope=scope)
        if self._limit(scope) == self.max_bytes:
            limit = _readable(self.file_limit_bytes)
            detail = (
                f"The upload is too large: Haven accepts files of up to {limit}. Choose a "
                "smaller file (crop the screenshot, or save the PDF at a smaller size) and send "
                "it again."
            )
        else:
            limit = _readable(self.max_data_bytes)
            detail = (
                f"The request body is too large: Haven accepts up to {limit}. Send the data in "
                "smaller requests (a roster in batches of up to 5,000 people)."
            )
        # The rest of the body is not read, so the connection cannot be reused.
        close = {"Connection": "close"}
        if scope["path"].startswith("/api/"):
            return problem_response(413, "Content too large", detail, headers=close)
        if headers.get("hx-request") == "true":
            fragment = f'<div class="alert alert-error" role="alert"><p>{escape(detail)}</p></div>'
            return HTMLResponse(
                fragment,
                status_code=413,
                headers={**close, "HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
            )
        page = (
            '<!doctype html>\n<html lang="en-GB">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{TITLE} - Haven</title>\n"
            '<link rel="stylesheet" href="/static/css/haven.css">\n</head>\n<body>\n'
            f'<main class="container">\n<h1>{TITLE}</h1>\n<p>{escape(detail)}</p>\n'
            "<p>Use your browser's Back button to return to the form.</p>\n</main>\n"
            "</body>\n</html>\n"
        )
        return HTMLResponse(page, status_code=413, headers=close)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return

        max_bytes = self._limit(scope)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
            await self._too_large(scope)(scope, receive, send)
            return

        received = 0
        cut_off = False  # the body went over the cap: the application reads no more of it
        answered = False  # we answered 413, so the application's own answer is dropped
        app_started = False

        async def send_unless_answered(message: Message) -> None:
            nonlocal app_started
            if answered:
                return
            if message["type"] == "http.response.start":
                app_started = True
            await send(message)

        async def counting_receive() -> Message:
            nonlocal received, cut_off, answered
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    cut_off = True
                    if not app_started:  # otherwise too late to answer: just stop the body
                        await self._too_large(scope)(scope, receive, send)
                        answered = True
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, counting_receive, send_unless_answered)
        except ClientDisconnect:
            # The application read on after we cut the body off; it has been answered already.
            if not answered:
                raise
