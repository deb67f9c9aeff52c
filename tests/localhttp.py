"""Local HTTP servers for the clients' tests: a handler per test, served on 127.0.0.1 at a free port."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (method, path with query, headers) -> (status, body) or (status, body, extra response headers): a str is
# sent as text/html, anything else as JSON
Answer = Callable[[str, str, dict[str, str]], tuple[Any, ...]]


class _Handler(BaseHTTPRequestHandler):
    answer: Answer

    def _reply(self) -> None:
        status, body, *extra = type(self).answer(self.command, self.path, dict(self.headers.items()))
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if isinstance(body, str) else "application/json")
        for name, value in (extra[0] if extra else {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_HEAD = _reply

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(answer: Answer, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """``http(s)://<host>:<port>`` answering every request with ``answer``; stopped on exit."""
    handler = type("Handler", (_Handler,), {"answer": staticmethod(answer)})
    server = ThreadingHTTPServer((host, 0), handler)
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{'https' if tls else 'http'}://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
