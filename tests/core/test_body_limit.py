"""The request body cap: refused up front by Content-Length, or as soon as a streamed body
passes it, with problem+json under /api/ and a short page elsewhere."""

import json

import anyio
import pytest
from fastapi import FastAPI, File, Form, UploadFile
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from app.core.body_limit import BodySizeLimitMiddleware

LIMIT = 1000


def make_app():
    calls: list[str] = []

    async def echo(request: Request):
        calls.append(request.url.path)
        body = await request.body()
        return JSONResponse({"received": len(body)})

    routes = [
        Route("/upload", echo, methods=["GET", "POST", "PUT", "PATCH"]),
        Route("/api/v1/upload", echo, methods=["POST"]),
    ]
    app = BodySizeLimitMiddleware(
        Starlette(routes=routes), max_bytes=LIMIT, file_limit_bytes=10 * 1024 * 1024
    )
    return app, calls


@pytest.fixture
def limited():
    app, calls = make_app()
    with TestClient(app) as client:
        yield client, calls


async def _drive(app, *, method: str, path: str, chunks: list[bytes], headers=()):
    """Call an ASGI app with a body in several messages and no Content-Length (chunked)."""
    pending = list(chunks)
    reads = 0
    sent: list[dict] = []

    async def receive():
        nonlocal reads
        reads += 1
        if not pending:
            await anyio.sleep(0.01)
            return {"type": "http.disconnect"}
        body = pending.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 443),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    response_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    starts = sum(m["type"] == "http.response.start" for m in sent)
    return start["status"], response_headers, body, reads, starts


def drive(app, **kwargs):
    return anyio.run(lambda: _drive(app, **kwargs))


def test_a_declared_length_over_the_limit_is_refused_without_calling_the_app(limited):
    client, calls = limited
    response = client.post("/upload", content=b"x" * (LIMIT + 1))

    assert response.status_code == 413 and calls == []
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["connection"] == "close"
    assert "The upload is too large" in response.text
    assert "up to 10 MB" in response.text  # the per-file limit people know, not the body cap
    assert "<script" not in response.text and "style=" not in response.text


def test_an_api_request_over_the_limit_gets_problem_json(limited):
    client, calls = limited
    response = client.post("/api/v1/upload", content=b"x" * (LIMIT * 5))

    assert response.status_code == 413 and calls == []
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 413 and problem["title"] == "Content too large"
    assert "up to 10 MB" in problem["detail"]


def test_a_body_at_the_limit_passes(limited):
    client, calls = limited
    for method in ("POST", "PUT", "PATCH"):
        response = client.request(method, "/upload", content=b"x" * LIMIT)
        assert response.status_code == 200 and response.json() == {"received": LIMIT}
    assert len(calls) == 3


def test_get_is_not_limited(limited):
    client, _ = limited
    # A GET's body is never read by Haven; the cap is for methods that carry one.
    response = client.request("GET", "/upload", content=b"x" * (LIMIT * 3))
    assert response.status_code == 200 and response.json() == {"received": LIMIT * 3}


def test_a_streamed_body_is_cut_off_as_soon_as_it_passes_the_limit():
    app, calls = make_app()
    chunks = [b"x" * 400] * 10  # 4,000 bytes in ten messages, no Content-Length

    status, headers, body, reads, starts = drive(
        app, method="POST", path="/upload", chunks=chunks, headers=[("host", "testserver")]
    )

    assert status == 413 and starts == 1  # the app's own answer to the cut-off is dropped
    assert headers["content-type"].startswith("text/html")
    assert b"The upload is too large" in body
    assert reads == 3  # 400 + 400 + 400 > 1,000: nothing more was read from the client
    assert calls == ["/upload"]


def test_a_streamed_api_body_over_the_limit_gets_problem_json():
    app, _ = make_app()
    status, headers, body, reads, _ = drive(
        app, method="POST", path="/api/v1/upload", chunks=[b"y" * 600] * 5
    )
    assert status == 413 and reads == 2
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 413


def test_a_streamed_body_under_the_limit_passes():
    app, _ = make_app()
    status, _, body, _, _ = drive(app, method="POST", path="/upload", chunks=[b"z" * 250] * 4)
    assert status == 200 and json.loads(body) == {"received": 1000}


def test_an_htmx_request_gets_a_fragment_for_the_flash_region():
    app, _ = make_app()
    status, headers, body, _, _ = drive(
        app,
        method="POST",
        path="/upload",
        chunks=[b"x" * 2000],
        headers=[("hx-request", "true")],
    )
    assert status == 413
    assert headers["hx-retarget"] == "#flash" and headers["hx-reswap"] == "innerHTML"
    assert body.startswith(b'<div class="alert alert-error" role="alert">')


def test_a_multipart_upload_to_a_fastapi_route_is_cut_off_cleanly():
    received: list[int] = []
    api = FastAPI()

    @api.post("/report")
    async def report(title: str = Form(), file: UploadFile = File()):
        received.append(len(await file.read()))
        return {"ok": True}

    app = BodySizeLimitMiddleware(api, max_bytes=LIMIT)
    boundary = "haven-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nA post\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + b"\0" * 5000
        + f"\r\n--{boundary}--\r\n".encode()
    )
    chunks = [body[i : i + 512] for i in range(0, len(body), 512)]

    status, _, page, reads, starts = drive(
        app,
        method="POST",
        path="/report",
        chunks=chunks,
        headers=[("content-type", f"multipart/form-data; boundary={boundary}")],
    )

    assert status == 413 and starts == 1 and received == []
    assert b"up to 1,000 bytes" in page  # by default the message quotes the body cap itself
    assert reads == 2

    # The same form under the cap reaches the route.
    small = body.replace(b"\0" * 5000, b"\0" * 100)
    status, _, _, _, _ = drive(
        app,
        method="POST",
        path="/report",
        chunks=[small],
        headers=[("content-type", f"multipart/form-data; boundary={boundary}")],
    )
    assert status == 200 and received == [100]
