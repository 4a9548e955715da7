"""Request ids, security headers and the access log, for every request (pure ASGI, no body
buffering)."""

import logging
import re
import time
import uuid

from fastapi.routing import iter_route_contexts
from starlette.datastructures import MutableHeaders
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("haven.access")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        is_static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                headers["X-Frame-Options"] = "DENY"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                if not is_static:
                    # Safeguarding pages must not linger in shared browser caches.
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AccessLogMiddleware:
    """One line a request: method, route, status, duration and request id. The route is the
    path template that matched (`/incidents/{incident_id}`), and never the query string, which
    holds what people searched for (a pupil's name). Runs inside SecurityHeadersMiddleware,
    which gives the request its id."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.templates: dict[int, str] = {}  # id of a route -> its full path template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts: an error no handler turned into one

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            access_log.info(
                "%s %s %s %.1fms request=%s",
                scope["method"],
                self._route(scope),
                status,
                (time.perf_counter() - started) * 1000,
                scope.get("state", {}).get("request_id", "-"),
            )

    def _route(self, scope: Scope) -> str:
        """The template of the route that answered, else the path (a static file, a 404)."""
        route = scope.get("route")
        if route is None or isinstance(route, Mount):
            return scope["path"]
        if id(route) not in self.templates:
            # A route of an included router knows only its own part of the path.
            contexts = iter_route_contexts(scope["app"].router.routes)
            self.templates = {id(context.original_route): context.path for context in contexts}
        return self.templates.get(id(route)) or scope["path"]
