"""A real HTTP receiver on 127.0.0.1 whose answers each test scripts."""

import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self):
        self.answers: deque = deque()  # (status, headers, delay seconds)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(
                    {
                        "headers": dict(self.headers.items()),
                        "body": body.decode(),
                        "path": self.path,
                    }
                )
                status, headers, delay = (
                    receiver.answers.popleft() if receiver.answers else (200, {}, 0)
                )
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, status: int, headers: dict | None = None, delay: float = 0) -> None:
        self.answers.append((status, headers or {}, delay))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
