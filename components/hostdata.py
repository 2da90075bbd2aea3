"""The model host's data: one model, built by the cloud layer, read by the deploy and the checks.

The cloud layer turns a stack's validated ``HostSettings`` into ``HostData`` (``from_settings``) and
hands it over in the ``inventory`` stack output; ``hosts/inventory.py`` makes that a pyinfra
inventory, the deploy validates each host's data back into ``HostData`` (``from_host``) and
``tests/hosts`` reads the same JSON. The local test host builds its ``HostData`` from the same
settings models with its own addresses and artifact mirror. The role settings (Ollama, vLLM,
LLaMA-Factory) are the stack settings' own models, so their defaults and checks live once, in
``components.settings`` and ``components.patterns``. Plain data: no secret values (``secrets`` lists
the *names* the host's roles read; see ``SECRET_SPECS``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from components import patterns, upstream
from components.host_settings import HostSettings, LlamaFactorySettings, OllamaSettings, VllmSettings
from components.roles import RoleName
from components.secrets import SECRET_SPECS


class _ImageRef:
    image: str
    tag: str

    @property
    def ref(self) -> str:
        """``repo:tag``, as Docker names the image."""
        return f"{self.image}:{self.tag}"


class Vllm(_ImageRef, VllmSettings):
    image: str  # resolved (VllmSettings.image_for): the GPU image, the CPU build, or the stack's own
    device: Literal["cuda", "cpu"]


class LlamaFactory(_ImageRef, LlamaFactorySettings):
    pass


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageArchive(_Data):
    """A ``docker save`` tarball to ``docker load`` instead of pulling from a registry."""

    url: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # Rust regex: $ is the end of the text

    _url = field_validator("url")(lambda v: patterns.check_url(v, "an http(s) URL of the archive"))


class Artifacts(_Data):
    """Where internet-only downloads come from. Production: the vendors; the local test host: a mirror."""

    ollama_base_url: str = upstream.OLLAMA_RELEASES
    images: dict[str, ImageArchive] = {}  # keyed by image ref "repo:tag"

    _base = field_validator("ollama_base_url")(
        lambda v: patterns.check_url(v, "an http(s) base URL of Ollama's releases")
    )


class HostData(_Data):
    provider: Literal["digitalocean", "hetzner", "local"]
    roles: list[RoleName]
    admin_user: str
    admin_cidrs: list[str]
    ssh_public_keys: list[str]
    domain: str
    acme_email: str
    acme_directory: str
    gpu: Literal["auto", "none"]
    proxy_backend: Literal["vllm", "ollama"]
    ollama: OllamaSettings
    vllm: Vllm
    llamafactory: LlamaFactory
    secrets: list[str]
    artifacts: Artifacts = Artifacts()
    # Local test host only: its apt proxy, and the CA (operator-side path) of its private ACME
    # server, trusted system-wide on the host so certbot verifies it. Production leaves both unset.
    apt_proxy: str | None = None
    acme_ca_cert_src: str | None = None
    # GiB of one GPU (GPU hosts; the ollama role reserves vLLM's share of it)
    gpu_memory_gb: int | None = None
    # The data volume's device as the provider names it (/dev/disk/by-id/scsi-0HC_Volume_<id>, ...):
    # the volume role formats it when cloud-init did not (it was attached after first boot) and it
    # is provably blank.
    data_device: str | None = None

    # The deploy does not trust its input: host data that did not come through the stack settings
    # (a hand-edited inventory, a stale stack output) is refused by the settings' own checks.
    _admin_user = field_validator("admin_user")(lambda v: patterns.check_admin_user(v))
    _admin_cidrs = field_validator("admin_cidrs")(lambda v: patterns.check_admin_cidrs(v))
    _ssh_keys = field_validator("ssh_public_keys")(lambda v: patterns.check_ssh_public_keys(v))
    _domain = field_validator("domain")(lambda v: patterns.check_dns_name(v))
    _email = field_validator("acme_email")(lambda v: patterns.check_acme_email(v))
    _acme = field_validator("acme_directory")(lambda v: patterns.check_acme_directory(v))
    _apt_proxy = field_validator("apt_proxy")(
        lambda v: v if v is None else patterns.check_url(v, "an http(s) proxy URL")
    )

    @classmethod
    def build(
        cls, *, provider: str, gpu: bool, roles: list[str], host: HostSettings | None = None, **fields: Any
    ) -> HostData:
        """The data of a host with these roles; role settings from ``host`` (defaults: the settings
        models' own), ``fields`` for the rest."""
        ollama = host.ollama if host else OllamaSettings()
        vllm = host.vllm if host else VllmSettings()
        lf = host.llamafactory if host else LlamaFactorySettings()
        image = vllm.image_for(gpu)
        return cls(
            provider=provider,
            roles=roles,
            gpu="auto" if gpu else "none",
            ollama=fields.pop("ollama", ollama),
            vllm=Vllm(
                **{**vllm.model_dump(), "image": image, "device": "cuda" if gpu else "cpu", **fields.pop("vllm", {})}
            ),
            llamafactory=LlamaFactory(**{**lf.model_dump(), **fields.pop("llamafactory", {})}),
            secrets=host_secrets(roles),
            **fields,
        )


def host_secrets(roles: list[str]) -> list[str]:
    """Names of the secrets the given roles read (``SECRET_SPECS``), in the table's order."""
    return [s.key for s in SECRET_SPECS if set(s.roles) & set(roles)]


def required_host_secrets(roles: list[str]) -> list[str]:
    """The subset the roles cannot work without."""
    return [s.key for s in SECRET_SPECS if set(s.roles) & set(roles) and not s.host_optional]


def from_settings(host: HostSettings) -> HostData:
    return HostData.build(
        provider=host.provider,
        gpu=host.gpu,
        roles=host.roles,
        host=host,
        admin_user=host.admin_user,
        admin_cidrs=list(host.admin_cidrs),
        ssh_public_keys=list(host.ssh_public_keys),
        domain=host.domain,
        acme_email=host.acme_email,
        acme_directory=host.acme_directory,
        proxy_backend=host.proxy_backend,
        gpu_memory_gb=host.gpu_memory_gb,
    )


def from_host(host: Any) -> HostData:
    """Validate a pyinfra host's data (only the keys this model knows; pyinfra adds its own)."""
    raw = host.data.dict()
    return HostData.model_validate({k: raw[k] for k in HostData.model_fields if k in raw})


FROM_CLOUD = frozenset({"data_device"})
"""Host data the cloud layer adds from its resources (not from the stack file's settings)."""


def inventory(
    host_name: str, address: Any, host: HostSettings, data_device: Any = None, host_key: Any = None
) -> dict[str, Any]:
    """The ``inventory`` stack output: ``{"hosts": [{name, ssh_hostname, ssh_user, host_key, data}]}``
    (``address``, ``data_device`` and ``host_key`` may be Pulumi Outputs). ``host_key``: the public
    SSH host key (``ssh-ed25519 AAAA...``) the host answers with; the host layer pins it
    (``operate.targets``)."""
    data = from_settings(host).model_dump(mode="json")
    if data_device is not None:
        data["data_device"] = data_device
    entry = {"name": host_name, "ssh_hostname": address, "ssh_user": host.admin_user}
    if host_key is not None:
        entry["host_key"] = host_key
    return {"hosts": [{**entry, "data": data}]}
