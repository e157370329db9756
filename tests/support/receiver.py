"""A real HTTP server that records the callbacks smsgate pushes to it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class CallbackReceiver:
    """Records every request; answers ``fail_first`` requests with HTTP 500,
    each after ``delay`` seconds (a slow receiver)."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.requests: list[Received] = []
        self.fail_first = fail_first
        self.delay = delay
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._changed:
                    receiver.requests.append(
                        Received(self.command, self.path, dict(self.headers), body)
                    )
                    failing = len(receiver.requests) <= receiver.fail_first
                    receiver._changed.notify_all()
                if receiver.delay:
                    time.sleep(receiver.delay)  # the receiver's own slowness, in its thread
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_GET = do_POST = _record

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/dlr"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least ``count`` requests arrived (or fail after ``timeout``)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(
                    f"expected {count} callbacks, got {len(self.requests)} in {timeout}s"
                )
            return list(self.requests)

    def __enter__(self) -> CallbackReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
