"""What the three stand-ins share: a small threaded HTTP server and the OpenAI-compatible API the
platform calls (``GET /v1/models`` with each model's ``root``, ``POST /v1/chat/completions`` without
streaming), guarded by a bearer key when one is set. Every answer says it comes from a stand-in."""

from __future__ import annotations

import json
import signal
import sys
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def answer(label: str, model: str, prompt: str) -> str:
    said = " ".join(prompt.split())
    said = said if len(said) <= 160 else said[:157] + "..."
    digest = zlib.crc32(f"{model}\n{prompt}".encode())
    return (
        f"Stand-in answer from {model} ({label} stand-in, no model ran). "
        f"You said: {said or '(empty)'}. Digest {digest:08x}."
    )


class Handler(BaseHTTPRequestHandler):
    """Serves ``self.server.models`` ([(id, root)]) with ``self.server.api_key``; subclasses add routes."""

    protocol_version = "HTTP/1.1"
    server_version = "standin"
    sys_version = ""
    label = "stand-in"

    def log_message(self, fmt, *args):  # the request line and status only: never headers or bodies
        log(f"{self.label} stand-in: {self.address_string()} {fmt % args}")

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if not self.route(self.command, path):
            self.send_json(404, {"error": f"{self.command} {path} is not served by the {self.label} stand-in"})

    do_HEAD = do_POST = do_DELETE = do_GET

    def route(self, method: str, path: str) -> bool:
        return self.openai(method, path)

    def send_json(self, status: int, obj: dict) -> None:
        body = json.dumps({**obj, "standin": True}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def json_body(self) -> dict:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        return body if isinstance(body, dict) else {}

    def served(self) -> list[tuple[str, str]]:
        return self.server.models

    def resolve(self, model: str) -> str | None:
        return model if model in [name for name, _ in self.served()] else None

    def openai(self, method: str, path: str) -> bool:
        if not path.startswith("/v1/"):
            return False
        key = getattr(self.server, "api_key", None)
        if key and self.headers.get("Authorization", "") != f"Bearer {key}":
            self.send_json(401, {"error": "Unauthorized"})
        elif path == "/v1/models" and method in ("GET", "HEAD"):
            data = [
                {"id": i, "object": "model", "created": 0, "owned_by": self.label, "root": r} for i, r in self.served()
            ]
            self.send_json(200, {"object": "list", "data": data})
        elif path == "/v1/chat/completions" and method == "POST":
            self.chat(self.json_body())
        else:
            return False
        return True

    def chat(self, body: dict) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or body.get("stream"):
            return self.send_json(
                400, {"error": "messages must be a non-empty list (and the stand-in does not stream)"}
            )
        model = self.resolve(str(body.get("model") or ""))
        if model is None:
            return self.send_json(404, {"error": f"The model `{body.get('model')}` does not exist."})
        prompt = next(
            (m.get("content") for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), ""
        )
        if isinstance(prompt, list):  # content parts
            prompt = " ".join(str(p.get("text", "")) for p in prompt if isinstance(p, dict))
        text = answer(self.label, model, str(prompt or ""))
        used, made = len(str(prompt or "").split()), len(text.split())
        self.send_json(
            200,
            {
                "id": f"chatcmpl-standin-{zlib.crc32(text.encode()):08x}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": used, "completion_tokens": made, "total_tokens": used + made},
            },
        )


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(handler: type[Handler], host: str, port: int, what: str, **attrs) -> int:
    """Serve until SIGTERM/SIGINT (as PID 1 of a container, SIGTERM needs a handler to stop it)."""
    srv = Server((host, port), handler)
    srv.__dict__.update(attrs)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log(f"STAND-IN {what} for tests on {host}:{port}: no model is loaded, answers are canned")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
