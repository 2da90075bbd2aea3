"""vllm: the vllm/vllm-openai container (the CPU build on CPU hosts) at a pinned tag, the model and
served name from settings, ``--api-key`` from the host-local key (``vllmLocalKey``: nginx enforces the
public keys and sends this one on loopback, so rotating the public key never restarts vLLM),
published on the catalogue's loopback port.

On CPU hosts: the CPU release image needs avx512f (it dies with SIGILL without it), so a host whose
CPU lacks a flag its image needs is refused with one line before anything is changed; the image
runs with the shared memory and KV cache its docs give (components/upstream.py, vllm.cpu_*)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from components import upstream
from components.catalogue import CONTAINER_BIND, CONTAINER_PORTS, DATA_DIRS, service
from components.hostdata import HostData
from hosts import secret_values
from hosts.container import container_service, publish
from hosts.facts import CpuFlags


def vllm_args(data: HostData) -> list[str]:
    v = data.vllm
    # --model, not a positional model: only images whose entrypoint is `vllm serve` take it
    # positionally; the OpenAI API server module of older ones (v0.11.0) takes --model alone.
    # --model works with both (components/upstream.py, vllm.entrypoint and vllm.model_flag).
    args = [
        "--model",
        v.model,
        "--host",
        CONTAINER_BIND,
        "--port",
        str(CONTAINER_PORTS["vllm"]),
        "--served-model-name",
        v.served_model_name,
        "--max-model-len",
        str(v.max_model_len),
    ]
    if v.device == "cuda":
        args += ["--gpu-memory-utilization", str(v.gpu_memory_utilization)]
    return args


def check_cpu(data: HostData, flags: list[str]) -> None:
    """Refuse (one line) a CPU host whose CPU lacks a flag its vLLM image cannot run without."""
    if data.vllm.device != "cpu":
        return
    missing = [f for f in upstream.vllm_cpu_flags_required(data.vllm.ref) if f not in flags]
    if missing:
        raise RuntimeError(
            f"vllm: this CPU has no {', '.join(missing)}; {data.vllm.ref} dies with SIGILL without it "
            "(vllm-project/vllm#18660): set host.vllm.image to an image built with VLLM_CPU_DISABLE_AVX512=true, "
            "or serve with Ollama (host.proxyBackend: ollama) on a host without the vllm role"
        )


def docker_args(data: HostData) -> list[str]:
    """CPU hosts: shared memory for the engine's processes and CAP_SYS_NICE for its NUMA memory
    binding, as vLLM's CPU docs run the image (with --privileged in earlier ones)."""
    if data.vllm.device != "cpu":
        return []
    return ["--shm-size", f"{data.vllm.cpu_shm_size_gb}g", "--cap-add", "SYS_NICE"]


def container_env(data: HostData) -> dict[str, str]:
    """The container's environment apart from its secrets (CPU hosts: the KV cache's GiB of RAM)."""
    if data.vllm.device != "cpu":
        return {}
    return {"VLLM_CPU_KVCACHE_SPACE": str(data.vllm.cpu_kvcache_space_gb)}


@deploy("vllm")
def apply(data: HostData) -> None:
    check_cpu(data, host.get_fact(CpuFlags))
    env = {"VLLM_API_KEY": secret_values.get("vllmLocalKey"), **container_env(data)}
    hf = secret_values.get_optional("huggingfaceApiKey")
    if hf:
        env["HF_TOKEN"] = hf
    container_service(
        data,
        "vllm",
        data.vllm.ref,
        publish_ports=[publish(service("vllm").port, CONTAINER_PORTS["vllm"])],
        volumes=[f"{DATA_DIRS['huggingface']}:/root/.cache/huggingface"],
        env=env,
        args=vllm_args(data),
        gpu=data.vllm.device == "cuda",
        mounts=[DATA_DIRS["huggingface"]],
        docker_args=docker_args(data),
    )
