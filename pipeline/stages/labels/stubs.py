"""A local stand-in for the OpenAI and Anthropic HTTP APIs (tests and benchmarks only).

It binds 127.0.0.1 on a free port and answers ``POST /v1/chat/completions`` and
``POST /v1/messages`` in each API's JSON shape. Good answers come from the offline namer's
logic, so a run against the stub exercises the SDK clients end to end. ``mode`` selects a
failure to simulate: ``malformed`` (never valid JSON), ``malformed_once`` (the first answer
to each prompt is garbage), ``refuse``, ``error401``, ``error500``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from pipeline.stages.labels.namers import offline_answer


class LLMStub:
    """``with LLMStub(mode) as stub: stub.openai_url / stub.anthropic_url``; counts requests."""

    def __init__(self, mode: str = "good"):
        self.mode = mode
        self.requests: list[dict] = []
        self.input_tokens = 0
        self.output_tokens = 0
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LLMStub":
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                status, payload = stub.respond(self.path, dict(self.headers), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ answers
    def _text(self, system: str, user: str) -> tuple[Optional[str], bool]:
        """(answer text, refused)."""
        key = system + "\x00" + user
        with self._lock:
            first = key not in self._seen
            self._seen.add(key)
        if self.mode == "malformed" or (self.mode == "malformed_once" and first):
            return "Sure! Here is a great name for this group: Things People Say.", False
        if self.mode == "refuse":
            return None, True
        return offline_answer(system, user), False

    def respond(self, path: str, headers: dict, body: dict) -> tuple[int, dict]:
        lower = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests.append({"path": path, "model": body.get("model"),
                                  "auth": bool(lower.get("authorization") or lower.get("x-api-key"))})
        if self.mode == "error401":
            return 401, {"error": {"type": "authentication_error", "message": "invalid x-api-key"}}
        if self.mode == "error500":
            return 500, {"error": {"type": "api_error", "message": "internal error"}}
        if path.endswith("/chat/completions"):
            messages = body.get("messages", [])
            system = "\n".join(m["content"] for m in messages if m["role"] == "system")
            user = "\n".join(m["content"] for m in messages if m["role"] == "user")
            text, refused = self._text(system, user)
            tokens_in, tokens_out = (len(system) + len(user)) // 4, len(text or "") // 4
            self._count(tokens_in, tokens_out)
            message = {"role": "assistant", "content": text, "refusal": "I can't help with that." if refused else None}
            return 200, {"id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": body.get("model"),
                         "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                                   "total_tokens": tokens_in + tokens_out}}
        if path.endswith("/messages"):
            system = body.get("system") or ""
            if isinstance(system, list):
                system = "\n".join(block.get("text", "") for block in system)
            user = "\n".join(m["content"] if isinstance(m["content"], str)
                             else "".join(b.get("text", "") for b in m["content"])
                             for m in body.get("messages", []) if m["role"] == "user")
            text, refused = self._text(system, user)
            tokens_in, tokens_out = (len(system) + len(user)) // 4, len(text or "") // 4
            self._count(tokens_in, tokens_out)
            return 200, {"id": "msg_stub", "type": "message", "role": "assistant", "model": body.get("model"),
                         "content": [] if refused else [{"type": "text", "text": text}],
                         "stop_reason": "refusal" if refused else "end_turn", "stop_sequence": None,
                         "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out}}
        return 404, {"error": {"message": f"no route {path}"}}

    def _count(self, tokens_in: int, tokens_out: int) -> None:
        with self._lock:
            self.input_tokens += tokens_in
            self.output_tokens += tokens_out
