"""vLLM's OpenAI server, stand-in: ``vllm serve [MODEL] ...`` and ``python3 -m
vllm.entrypoints.openai.api_server ...`` (the image's entrypoint by tag: components/upstream.py).

As the real ones: the API server module ignores a positional model and serves ``--model`` (else
vLLM's default, Qwen/Qwen3-0.6B: vllm-project/vllm#32292), ``vllm serve`` takes it either way;
``/v1/models`` lists each ``--served-model-name`` with the loaded model as ``root``; ``--api-key`` (or
VLLM_API_KEY) guards /v1 (401 without it); ``GET /health`` is open. Other flags are accepted and ignored.
"""

from __future__ import annotations

import argparse
import os
import sys

from .openai_api import Handler, serve

DEFAULT_MODEL = "Qwen/Qwen3-0.6B"


class VllmHandler(Handler):
    label = "vLLM"

    def route(self, method: str, path: str) -> bool:
        if path == "/health" and method in ("GET", "HEAD"):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True
        return self.openai(method, path)


def main(argv: list[str] | None = None, api_server: bool = False) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not api_server:
        if argv[:1] != ["serve"]:
            print("vllm (stand-in): only `vllm serve` is provided", file=sys.stderr)
            return 2
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="vllm serve (stand-in)")
    p.add_argument("model_tag", nargs="?")
    p.add_argument("--model")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=os.environ.get("VLLM_API_KEY"))
    p.add_argument("--served-model-name", nargs="+")
    p.add_argument("--max-model-len")  # the deploy's other flags with a value, so none is taken for the model
    p.add_argument("--gpu-memory-utilization")
    a, _ = p.parse_known_args(argv)
    model = a.model or (None if api_server else a.model_tag) or DEFAULT_MODEL
    names = a.served_model_name or [model]
    what = f"vLLM {os.environ.get('STANDIN_VERSION', '')} serving {model} as {', '.join(names)}"
    return serve(VllmHandler, a.host, a.port, what, models=[(n, model) for n in names], api_key=a.api_key)


if __name__ == "__main__":
    sys.exit(main())
