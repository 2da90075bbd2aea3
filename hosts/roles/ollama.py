"""ollama: the pinned release from the artifact source (sha256-checked), a system user, a systemd
unit listening on the catalogue's loopback address with its models under /data, and the configured models pulled
through Ollama's API only when missing."""

from __future__ import annotations

import math
import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, server

from components import ollama_release, roles
from components.catalogue import DATA_DIRS, service
from components.hostdata import HostData
from hosts.file_ops import template_file
from hosts.ops import Restart, account, ollama_models, service_running

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
PREFIX = "/usr/local"
BIN = f"{PREFIX}/bin/ollama"
MARKER = f"{PREFIX}/lib/ollama/.llm-platform-release"
CACHE = "/var/cache/llm-platform"


MODELS_DIR = f"{DATA_DIRS['ollama']}/models"


GIB = 1 << 30


def unit_env(data: HostData) -> dict[str, str]:
    """The Ollama server's environment (its systemd unit), in order. On a GPU host with vLLM, Ollama
    reserves vLLM's share of each GPU (OLLAMA_GPU_OVERHEAD, bytes: Ollama's scheduler takes the free
    memory less this): vLLM refuses to start with less than its share free, and Ollama keeps what
    it loaded for keep_alive (components/settings.py, VllmSettings.gpu_memory_utilization)."""
    o = data.ollama
    env = {
        "OLLAMA_HOST": service("ollama").listen,
        "OLLAMA_MODELS": MODELS_DIR,
        "OLLAMA_KEEP_ALIVE": o.keep_alive,
        "OLLAMA_NUM_PARALLEL": str(o.num_parallel),
        "OLLAMA_MAX_LOADED_MODELS": str(o.max_loaded_models),
    }
    if data.vllm.device == "cuda" and "vllm" in data.roles:
        if not data.gpu_memory_gb:
            raise RuntimeError(
                "ollama: the GPU's memory is unknown (host data gpu_memory_gb): cannot leave vLLM its share"
            )
        env["OLLAMA_GPU_OVERHEAD"] = str(math.ceil(data.vllm.gpu_memory_utilization * data.gpu_memory_gb * GIB))
    return env


@deploy("ollama")
def apply(data: HostData) -> None:
    o = data.ollama
    sha = data.ollama.archive_sha256  # the pin is VERSION@HEX in a stack file, the bare hex on the local host
    name = ollama_release.ollama_archive(o.version)
    if not sha:
        raise RuntimeError(
            f"ollama {o.version}: no sha256 pinned for {name}; pin it with: scripts/pin ollama STACK {o.version}"
        )
    url = ollama_release.ollama_release_url(data.artifacts.ollama_base_url, o.version, name)
    marker = f"{o.version} {sha}"

    # install
    account(
        name="ollama system user",
        user="ollama",
        system=True,
        home="/usr/share/ollama",
        shell="/bin/false",
        create_home=True,
    )
    files.directory(name="download cache", path=CACHE, mode="755")
    archive = f"{CACHE}/ollama-{o.version}-{name}"
    files.download(name=f"ollama {o.version} archive (sha256 checked)", src=url, dest=archive, sha256sum=sha)
    ollama = Restart("ollama", daemon_reload=True)
    installed = "\n".join(host.get_fact(FileContents, path=MARKER) or []).strip()
    if installed != marker:
        ollama.watch(
            server.shell(
                name=f"ollama {o.version}: unpack into {PREFIX}",
                commands=[
                    f"rm -rf {PREFIX}/lib/ollama",
                    shlex.join(ollama_release.ollama_unpack_command(archive, PREFIX)),
                    f"echo '{marker}' > {MARKER}",
                ],
            )
        )

    # configure
    models_dir = MODELS_DIR
    files.directory(name="ollama data directory", path=DATA_DIRS["ollama"], user="ollama", group="ollama", mode="750")
    files.directory(name="ollama models directory", path=models_dir, user="ollama", group="ollama", mode="750")
    ollama.watch(
        template_file(
            name="ollama systemd unit",
            src=str(TEMPLATES / "ollama.service.j2"),
            dest="/etc/systemd/system/ollama.service",
            bin=BIN,
            models_dir=models_dir,
            env=unit_env(data),
        )
    )

    # activate: restart only when the binary or the unit changed
    ollama.apply()
    service_running(name="ollama running and enabled", unit="ollama", units=roles.units(data.roles))
    ollama_models(name=f"ollama models: {', '.join(o.models) or 'none'}", models=o.models)
