"""A real HTTP server on loopback that answers with recorded payloads (tests only)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: handler(method, path, query, headers, body) -> (status, JSON body)
Handler = Callable[[str, str, dict[str, list[str]], dict[str, str], Any], tuple[int, Any]]


@contextmanager
def serve(handler: Handler) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Serve ``handler`` on 127.0.0.1; yields (base URL, log of (method, path?query))."""
    seen: list[tuple[str, str]] = []

    class _H(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            seen.append((self.command, self.path))
            status, answer = handler(
                self.command, parts.path, parse_qs(parts.query), dict(self.headers), body
            )
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
