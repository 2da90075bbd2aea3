"""llamafactory: the LLaMA-Factory container at a pinned tag, its web UI and API published on the
catalogue's loopback ports (``llamafactory-webui``, ``llamafactory-api``; the API's port inside the
container is vLLM's on the host), volumes under /data, API key from a secret.

The container's process is the web UI. LLaMA-Factory's API serves one given model, so it is started
on demand inside the running container (``docker exec -d llm-llamafactory llamafactory-cli api
CFG``; scripts/finetune does this for a fine-tuned model) and answers on the published port then.
/data/datasets is mounted over /app/data, so the role makes sure it holds a dataset_info.json
(``{}`` at first; scripts/finetune registers datasets in it)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from components import upstream
from components.catalogue import CONTAINER_BIND, CONTAINER_PORTS, DATA_DIRS, service
from components.hostdata import HostData
from hosts import secret_values
from hosts.container import container_service, publish

FT = DATA_DIRS["finetune"]
VOLUMES = {
    DATA_DIRS["huggingface"]: "/root/.cache/huggingface",
    DATA_DIRS["datasets"]: "/app/data",
    f"{FT}/output": "/app/output",
    f"{FT}/saves": "/app/saves",
}


def container_env() -> dict[str, str]:
    """The container's environment apart from its secrets. GRADIO_ROOT_PATH: the web UI is served by
    nginx at /llamafactory/ (v0.9.4 launches Gradio without root_path, so Gradio reads it from the
    environment); with nginx's X-Forwarded-Host/-Proto it builds its public URL from it
    (components/upstream.py, llamafactory.webui_root_path)."""
    return {
        "GRADIO_SERVER_NAME": CONTAINER_BIND,
        "API_HOST": CONTAINER_BIND,
        "GRADIO_ROOT_PATH": upstream.LLAMAFACTORY_UI_PATH,
    }


@deploy("llamafactory")
def apply(data: HostData) -> None:
    for path in (f"{FT}/output", f"{FT}/saves"):
        files.directory(name=f"fine-tuning directory {path}", path=path, mode="750")
    info = f"{DATA_DIRS['datasets']}/dataset_info.json"
    if not host.get_fact(File, path=info):
        server.shell(name="datasets: empty dataset_info.json", commands=[f"echo '{{}}' > {info}"])
    env = {"API_KEY": secret_values.get("llamafactoryApiKey"), **container_env()}
    hf = secret_values.get_optional("huggingfaceApiKey")
    if hf:
        env["HF_TOKEN"] = hf
    container_service(
        data,
        "llamafactory",
        data.llamafactory.ref,
        publish_ports=[
            publish(service("llamafactory-webui").port, CONTAINER_PORTS["llamafactory-webui"]),
            publish(service("llamafactory-api").port, CONTAINER_PORTS["llamafactory-api"]),
        ],
        volumes=[f"{src}:{dst}" for src, dst in VOLUMES.items()],
        env=env,
        args=["llamafactory-cli", "webui"],
        gpu=data.vllm.device == "cuda",
        mounts=list(VOLUMES),
    )
