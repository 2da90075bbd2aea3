"""The data a model host is configured from, validated before any operation is planned.

It arrives as pyinfra host data: from a stack's ``inventory`` output (``hosts/inventory.py``) or from
the local test host's generated inventory. Secrets are never part of it (see ``hosts/secret_values.py``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from components.upstream import OLLAMA_RELEASES

ALL_ROLES = ("base", "firewall", "data", "docker", "nvidia", "ollama", "vllm", "llamafactory", "proxy")


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ollama(_M):
    version: str
    models: list[str] = []
    keep_alive: str = "24h"
    num_parallel: int = 2


class Vllm(_M):
    image: str
    tag: str
    model: str
    served_model_name: str
    max_model_len: int = 8192
    gpu_memory_utilization: float = 0.9
    device: Literal["cuda", "cpu"] = "cuda"

    @property
    def ref(self) -> str:
        return f"{self.image}:{self.tag}"


class LlamaFactory(_M):
    image: str = "hiyouga/llamafactory"
    tag: str
    ui_user: str = "admin"

    @property
    def ref(self) -> str:
        return f"{self.image}:{self.tag}"


class ImageArchive(_M):
    """A ``docker save`` tarball to ``docker load`` instead of pulling from a registry."""

    url: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Artifacts(_M):
    """Where internet-only downloads come from. Production: the vendors; the local test host: a mirror."""

    ollama_base_url: str = OLLAMA_RELEASES
    ollama_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    images: dict[str, ImageArchive] = {}  # keyed by image ref "repo:tag"


class HostData(_M):
    provider: str = "local"
    roles: list[Literal[ALL_ROLES]]  # type: ignore[valid-type]
    admin_user: str
    admin_cidrs: list[str]
    ssh_public_keys: list[str]
    domain: str
    acme_email: str
    acme_directory: str
    # A private ACME server's CA (operator-side path): trusted system-wide on the host so certbot's
    # first issuance and its renewals verify it. Production (Let's Encrypt) leaves it unset.
    acme_ca_cert_src: str | None = None
    gpu: Literal["auto", "none"] = "auto"
    proxy_backend: Literal["vllm", "ollama"] = "vllm"
    apt_proxy: str | None = None
    ollama: Ollama
    vllm: Vllm
    llamafactory: LlamaFactory
    artifacts: Artifacts = Artifacts()
    secrets: list[str] = []


def from_host(host: Any) -> HostData:
    """Validate a pyinfra host's data (only the keys this model knows; pyinfra adds its own)."""
    raw = host.data.dict()
    known = {k: raw[k] for k in HostData.model_fields if k in raw}
    return HostData.model_validate(known)
