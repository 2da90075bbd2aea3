"""Issue 21 §5: vLLM and Ollama on one GPU.

vLLM v0.11.0 refuses to start when the GPU's free memory is below gpu_memory_utilization x total
(the vLLM stand-in applies that check against a simulated GPU). Ollama holds what it loaded for
OLLAMA_KEEP_ALIVE and takes, per GPU, what is free less OLLAMA_GPU_OVERHEAD (ollama@v0.13.5
server/sched.go: ``available := gpu.FreeMemory - envconfig.GpuOverhead() - gpu.MinimumMemory()``).
The scenario: vLLM restarts (a converge, a crash) while Ollama has its model loaded, loaded while
vLLM was down. The settings must leave vLLM its share."""

from __future__ import annotations

import pytest

from components import prices
from hosts.roles import ollama as ollama_role
from hosts.roles.vllm import vllm_args
from testhost.util import free_port
from tests.standins.runner import server_process
from tests.unit.test_upstream import _host_data

GIB = 1 << 30
OLLAMA_MINIMUM_GIB = 457 / 1024  # ollama's per-GPU minimum (discover: 457 MiB on CUDA)


def ollama_model_gib(model: str) -> float:
    """Ollama's GPU footprint for a default (Q4_K_M) tag: ~0.6 GiB per billion parameters + KV cache."""
    size = float(model.rsplit(":", 1)[1].rstrip("b"))
    return size * 0.6 + 1.0


def ollama_gpu_use(env: dict[str, str], model: str, free_gib: float) -> float:
    """What Ollama puts on the GPU when it loads ``model`` with ``free_gib`` free (the rest goes to CPU)."""
    available = free_gib - int(env.get("OLLAMA_GPU_OVERHEAD", "0")) / GIB - OLLAMA_MINIMUM_GIB
    return max(0.0, min(ollama_model_gib(model), available))


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_vllm_restarts_while_ollama_holds_its_model(stack):
    data = _host_data(stack)
    assert data.vllm.device == "cuda" and {"vllm", "ollama"} <= set(data.roles)
    total = prices.DROPLET_SIZES[{"staging": "gpu-4000adax1-20gb", "prod": "gpu-h100x1-80gb"}[stack]].gpu_memory_gb
    # vLLM down, a request reaches Ollama: it loads its model on an idle GPU
    used = ollama_gpu_use(ollama_role.unit_env(data), data.ollama.models[0], total)
    # then vLLM starts again, with the deploy's arguments, on what Ollama left free
    port = free_port()
    argv = [
        "python3",
        "-m",
        "vllm.entrypoints.openai.api_server",
        *vllm_args(data),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = {"STANDIN_GPU_TOTAL_GB": str(total), "STANDIN_GPU_FREE_GB": str(total - used)}
    with server_process(argv, port, env):
        pass


def test_standin_applies_vllms_startup_check():
    port = free_port()
    argv = [
        "vllm",
        "serve",
        "--model",
        "m",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--gpu-memory-utilization",
        "0.9",
    ]
    with pytest.raises(
        RuntimeError,
        match=r"Free memory on device \(15\.0/20\.0 GiB\) on startup is less than desired "
        r"GPU memory utilization \(0\.9, 18\.0 GiB\)",
    ):
        with server_process(argv, port, {"STANDIN_GPU_TOTAL_GB": "20", "STANDIN_GPU_FREE_GB": "15"}):
            pass
    with server_process(argv, port, {"STANDIN_GPU_TOTAL_GB": "20", "STANDIN_GPU_FREE_GB": "18"}):
        pass
