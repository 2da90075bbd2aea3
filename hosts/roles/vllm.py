"""vllm: the vllm/vllm-openai container (the CPU build on CPU hosts) at a pinned tag, the model and
served name from settings, ``--api-key`` from the host-local key (``vllmLocalKey``: nginx enforces the
public keys and sends this one on loopback, so rotating the public key never restarts vLLM),
published on the catalogue's loopback port."""

from __future__ import annotations

from pyinfra.api import deploy

from components.catalogue import CONTAINER_BIND, CONTAINER_PORTS, DATA_DIRS, service
from hosts import secret_values
from hosts.container import container_service, publish
from components.hostdata import HostData


def vllm_args(data: HostData) -> list[str]:
    v = data.vllm
    # --model, not a positional model: only images whose entrypoint is `vllm serve` take it
    # positionally; the OpenAI API server module of older ones (v0.11.0) takes --model alone.
    # --model works with both (components/upstream.py, vllm.entrypoint and vllm.model_flag).
    args = [
        "--model", v.model,
        "--host", CONTAINER_BIND,
        "--port", str(CONTAINER_PORTS["vllm"]),
        "--served-model-name", v.served_model_name,
        "--max-model-len", str(v.max_model_len),
    ]
    if v.device == "cuda":
        args += ["--gpu-memory-utilization", str(v.gpu_memory_utilization)]
    return args


@deploy("vllm")
def apply(data: HostData) -> None:
    env = {"VLLM_API_KEY": secret_values.get("vllmLocalKey")}
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
    )
