"""vLLM's OpenAI server, stand-in: ``vllm serve [MODEL] ...`` and ``python3 -m
vllm.entrypoints.openai.api_server ...`` (the image's entrypoint by tag: components/upstream.py).

As the real ones: the API server module ignores a positional model and serves ``--model`` (else
vLLM's default, Qwen/Qwen3-0.6B: vllm-project/vllm#32292), ``vllm serve`` takes it either way;
``/v1/models`` lists each ``--served-model-name`` with the loaded model as ``root``; ``--api-key`` (or
VLLM_API_KEY) guards /v1 (401 without it); ``GET /health`` is open. Other flags are accepted and ignored.

And as the real ones fail:

* the CPU release image (``vllm-cpu-release-repo``, built with AVX512 kernels) dies with SIGILL on a CPU
  without ``avx512f`` (vllm-project/vllm#18660): its image sets STANDIN_REQUIRED_CPU_FLAGS, checked
  against /proc/cpuinfo (STANDIN_CPUINFO names another file, for tests) before anything else;
* on a GPU, v0.11.0's worker refuses to start when the device's free memory is below
  ``--gpu-memory-utilization`` x total (vllm/v1/worker/gpu_worker.py, ``init_device``): with
  STANDIN_GPU_TOTAL_GB and STANDIN_GPU_FREE_GB set (a simulated GPU), the same check, the same message.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .openai_api import Handler, serve

DEFAULT_MODEL = "Qwen/Qwen3-0.6B"
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9  # vLLM's CacheConfig default


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The ``flags`` of the first processor in cpuinfo."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def die_without_cpu_flags() -> None:
    """The release image's kernels use AVX512 instructions: without them the first one is SIGILL."""
    need = os.environ.get("STANDIN_REQUIRED_CPU_FLAGS", "").split()
    if need and not set(need) <= cpu_flags(os.environ.get("STANDIN_CPUINFO") or "/proc/cpuinfo"):
        signal.signal(signal.SIGILL, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGILL)


def gpu_memory_error(utilization: float) -> str | None:
    """v0.11.0's startup check on a simulated GPU (GiB figures), or None when it passes or no GPU is simulated."""
    total, free = os.environ.get("STANDIN_GPU_TOTAL_GB"), os.environ.get("STANDIN_GPU_FREE_GB")
    if not (total and free):
        return None
    total_gib, free_gib = float(total), float(free)
    requested = total_gib * utilization
    if free_gib >= requested:
        return None
    return (
        f"ValueError: Free memory on device ({round(free_gib, 2)}/{round(total_gib, 2)} GiB) on startup is less than "
        f"desired GPU memory utilization ({utilization}, {round(requested, 2)} GiB). Decrease GPU memory "
        "utilization or reduce GPU memory used by other processes."
    )


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
    die_without_cpu_flags()
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
    p.add_argument("--gpu-memory-utilization", type=float, default=DEFAULT_GPU_MEMORY_UTILIZATION)
    a, _ = p.parse_known_args(argv)
    error = gpu_memory_error(a.gpu_memory_utilization)
    if error:
        print(error, file=sys.stderr)
        return 1
    model = a.model or (None if api_server else a.model_tag) or DEFAULT_MODEL
    names = a.served_model_name or [model]
    what = f"vLLM {os.environ.get('STANDIN_VERSION', '')} serving {model} as {', '.join(names)}"
    return serve(VllmHandler, a.host, a.port, what, models=[(n, model) for n in names], api_key=a.api_key)


if __name__ == "__main__":
    sys.exit(main())
