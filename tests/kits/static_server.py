"""A static HTTP server for tests: a folder served like a public bucket, with HTTP Range, optional CORS
and per-object headers. Standard library only; runs in a thread on 127.0.0.1 (ephemeral port).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeHandler(SimpleHTTPRequestHandler):
    """GET/HEAD with single byte ranges (206), OPTIONS preflights, headers from ``headers_for(path)``."""

    ranges = True
    cors_origin: Optional[str] = None           # "*" or one origin; None = no CORS headers at all
    headers_for: Optional[Callable[[str], dict]] = None

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _cors(self) -> None:
        if self.cors_origin and self.headers.get("Origin"):
            self.send_header("Access-Control-Allow-Origin", self.cors_origin)
            self.send_header("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges")

    def do_OPTIONS(self) -> None:
        self.send_response(204 if self.cors_origin else 403)
        if self.cors_origin:
            self.send_header("Access-Control-Allow-Origin", self.cors_origin)
            self.send_header("Access-Control-Allow-Methods", "GET, HEAD")
            self.send_header("Access-Control-Allow-Headers", "Range, Content-Type")
            self.send_header("Access-Control-Max-Age", "86400")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start, end, status = 0, len(data) - 1, 200
        match = _RANGE.match(self.headers.get("Range", "")) if self.ranges else None
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), len(data) - 1) if match.group(2) else len(data) - 1
            else:
                start = max(0, len(data) - int(match.group(2)))
            status = 206
        chunk = data[start:end + 1]
        self.send_response(status)
        extra = (self.headers_for or (lambda _p: {}))(os.path.relpath(path, self.directory))
        self.send_header("Content-Type", extra.pop("Content-Type", self.guess_type(str(path))))
        for name, value in extra.items():
            self.send_header(name, value)
        if self.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(len(chunk)))
        self._cors()
        self.end_headers()
        if body:
            self.wfile.write(chunk)


@contextlib.contextmanager
def static_server(root: Path, *, ranges: bool = True, cors_origin: Optional[str] = "*",
                  headers_for: Optional[Callable[[str], dict]] = None):
    """Serve ``root``; yields the base URL (``http://127.0.0.1:PORT``). Stopped on exit."""
    handler_cls = type("Handler", (RangeHandler,), {"ranges": ranges, "cors_origin": cors_origin,
                                                    "headers_for": staticmethod(headers_for) if headers_for else None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler_cls, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
