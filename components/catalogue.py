"""One place for the network facts of the platform.

Every port, bind address and public exposure of a host service lives here. The cloud firewalls
(``components.model_host``), ufw and nginx (``hosts/``) and the testinfra checks (``tests/hosts``)
all read this module, so they cannot disagree. This module imports nothing from Pulumi or pyinfra:
it is plain data, safe to import from every layer.

Exposure levels:
  ``public``  reachable from anywhere (cloud firewall + ufw allow 0.0.0.0/0 and ::/0);
  ``admin``   reachable only from the stack's admin CIDRs (SSH);
  ``local``   bound to 127.0.0.1 on the host, reached only through nginx (or not at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Exposure = Literal["public", "admin", "local"]

ANYWHERE_V4 = "0.0.0.0/0"
ANYWHERE_V6 = "::/0"
LOOPBACK = "127.0.0.1"
# Inside a container a service listens on every address; the host publishes it on LOOPBACK only.
CONTAINER_BIND = "0.0.0.0"


@dataclass(frozen=True)
class HostService:
    name: str
    port: int
    bind: str
    exposure: Exposure
    role: str
    description: str

    @property
    def listen(self) -> str:
        """``address:port`` as a daemon is told to listen."""
        return f"{self.bind}:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: how a process on the host reaches a loopback service."""
        return f"http://{LOOPBACK}:{self.port}"


# Host services, keyed by name. Ports of containers are the *host* side of the publish.
HOST_SERVICES: dict[str, HostService] = {
    s.name: s
    for s in (
        HostService("ssh", 22, "0.0.0.0", "admin", "base", "OpenSSH, keys only"),
        HostService("http", 80, "0.0.0.0", "public", "proxy", "nginx: ACME HTTP-01 and redirect to HTTPS"),
        HostService("https", 443, "0.0.0.0", "public", "proxy", "nginx: TLS entry to every API"),
        HostService("ollama", 11434, LOOPBACK, "local", "ollama", "Ollama REST + OpenAI-compatible API"),
        HostService("vllm", 8000, LOOPBACK, "local", "vllm", "vLLM OpenAI-compatible server"),
        HostService("llamafactory-webui", 7860, LOOPBACK, "local", "llamafactory", "LLaMA-Factory web UI"),
        # LLaMA-Factory's API listens on 8000 inside its container; vLLM holds 8000 on the host.
        HostService("llamafactory-api", 8001, LOOPBACK, "local", "llamafactory", "LLaMA-Factory API"),
        HostService("node-exporter", 9100, LOOPBACK, "local", "proxy", "Prometheus node exporter"),
    )
}

# Container-internal ports (what the image listens on), for the publish mapping host:container.
CONTAINER_PORTS: dict[str, int] = {
    "vllm": 8000,
    "llamafactory-webui": 7860,
    "llamafactory-api": 8000,
}


def service(name: str) -> HostService:
    return HOST_SERVICES[name]


@dataclass(frozen=True)
class InboundRule:
    """One inbound allow rule: a TCP port and the source CIDRs allowed to reach it."""

    port: int
    sources: tuple[str, ...]
    service: str


def inbound_rules(admin_cidrs: list[str] | tuple[str, ...]) -> list[InboundRule]:
    """The complete inbound policy of a model host, shared by the cloud firewall and ufw."""
    rules: list[InboundRule] = []
    for s in sorted(HOST_SERVICES.values(), key=lambda s: s.port):
        if s.exposure == "admin":
            rules.append(InboundRule(s.port, tuple(admin_cidrs), s.name))
        elif s.exposure == "public":
            rules.append(InboundRule(s.port, (ANYWHERE_V4, ANYWHERE_V6), s.name))
    return rules


# App Platform component ports (the `llm` gateway and the existing `ai-service`).
APP_PORTS = {"ai-service": 8080, "llm": 8081}
LLM_INTERNAL_URL = f"http://llm:{APP_PORTS['llm']}"

# Data volume layout on every model host.
DATA_MOUNT = "/data"
DATA_LABEL = "llm-data"
DATA_FS = "ext4"
# nofail: a missing volume cannot stop the boot; cloud-init's fstab entry and the volume role's agree
DATA_MOUNT_OPTIONS = "defaults,nofail,x-systemd.device-timeout=30s"
DATA_DIRS = {
    "models": f"{DATA_MOUNT}/models",
    "ollama": f"{DATA_MOUNT}/ollama",
    "huggingface": f"{DATA_MOUNT}/huggingface",
    "datasets": f"{DATA_MOUNT}/datasets",
    "finetune": f"{DATA_MOUNT}/finetune",
}
SECRETS_DIR = "/etc/llm-platform/secrets"
