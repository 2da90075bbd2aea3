"""The model host's settings block (``host:`` in a stack file): provider, region and size, admin
access, TLS, and the services the host runs (Ollama, vLLM, LLaMA-Factory), with the rules that tie
those values together and the facts derived from them (GPU, image, roles). The rest of a stack's
settings is ``components.settings``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components import prices, roles, upstream
from components.patterns import (
    DURATION,
    HF_MODEL,
    MAX_ADMIN_V4,
    MAX_ADMIN_V6,
    POSIX_USER,
    PROVIDER_IMAGE,
    RELEASE_VERSION,
    RELEASE_VERSION_TEXT,
    SERVED_NAME,
    check_acme_directory,
    check_acme_email,
    check_admin_cidrs,
    check_admin_user,
    check_image_repo,
    check_ollama_models,
    check_optional_dns_name,
    check_pinned_tag,
    check_ssh_public_keys,
    match,
)
from components.settings_model import KeyedError, SettingsModel, check_one_of

# The platform's model: what the gateway asks Hugging Face for (phase 1) and what vLLM serves on a host.
DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"


class OllamaSettings(SettingsModel):
    version: str = upstream.OLLAMA_VERSION
    # sha256 of that release's Linux archive (ollama_release.ollama_archive: .tgz before 0.14.0, .tar.zst
    # from it), from the release's sha256sum.txt; `scripts/pin ollama STACK VERSION` writes both.
    # Required wherever the host is created: the deploy refuses to install an unpinned archive.
    # In a stack file it carries its version ("0.13.5@<hex>", one pin): a version edited without
    # its checksum (or the reverse) is refused at plan. The host data may hold the bare hex.
    sha256: str | None = Field(None, pattern=rf"^({RELEASE_VERSION_TEXT}@)?[0-9a-f]{{64}}$")
    models: list[str] = ["llama3.1:8b"]
    keep_alive: str = "24h"
    num_parallel: int = Field(2, ge=1, le=64, strict=True)
    # Models loaded at once (OLLAMA_MAX_LOADED_MODELS). On a GPU host with vLLM, Ollama also reserves
    # vLLM's share of each GPU (OLLAMA_GPU_OVERHEAD; see VllmSettings.gpu_memory_utilization).
    max_loaded_models: int = Field(1, ge=1, le=16, strict=True)

    _version = field_validator("version")(lambda v: match(RELEASE_VERSION, v, "a release version like 0.13.5"))
    _models = field_validator("models")(lambda v: check_ollama_models(v))

    _keep_alive = field_validator("keep_alive")(
        lambda v: match(DURATION, v, "a duration like 24h, 30m, 90s or -1 (forever)")
    )

    @property
    def pinned_version(self) -> str | None:
        """The version the pin carries ("0.13.5@<hex>"), or None (no pin, or a bare hex)."""
        return self.sha256.partition("@")[0] if self.sha256 and "@" in self.sha256 else None

    @property
    def archive_sha256(self) -> str | None:
        """The archive's sha256 (hex), without the version the pin carries."""
        return self.sha256.rpartition("@")[2] if self.sha256 else None

    @model_validator(mode="after")
    def _one_pin(self) -> OllamaSettings:
        pinned = self.pinned_version
        if pinned is not None and pinned != self.version:
            raise KeyedError(
                "host.ollama.sha256",
                f"{pinned}@...",
                f"pins Ollama {pinned} but host.ollama.version is {self.version}: change both together with: "
                f"scripts/pin ollama STACK {self.version}",
            )
        return self


class VllmSettings(SettingsModel):
    image: str | None = None  # default: vllm/vllm-openai on GPU hosts, the CPU build elsewhere
    tag: str = upstream.VLLM_TAG
    model: str = DEFAULT_MODEL
    served_model_name: str = "llama-3.1-8b-instruct"
    max_model_len: int = Field(8192, ge=256, le=1_048_576, strict=True)
    # GPU hosts: the share of the GPU's *total* memory vLLM takes. v0.11.0 refuses to start when less
    # than that is free (vllm/v1/worker/gpu_worker.py init_device). Ollama shares the GPU: the ollama
    # role reserves this share from it (OLLAMA_GPU_OVERHEAD, bytes per GPU) and lets it load one model
    # at a time (OLLAMA_MAX_LOADED_MODELS=1), so whatever Ollama holds, even for keep_alive after
    # a request that came while vLLM was down, leaves vLLM its share at a restart. Ollama gets the rest
    # of the GPU (and the CPU for what does not fit): 10% of it at 0.90.
    gpu_memory_utilization: float = Field(0.90, gt=0, le=1, allow_inf_nan=False)
    # CPU hosts: what vLLM's CPU docs run the image with: --shm-size (GiB) and VLLM_CPU_KVCACHE_SPACE
    # (GiB of RAM for the KV cache), see components/upstream.py vllm.cpu_flags.
    cpu_shm_size_gb: int = Field(4, ge=1, le=1024, strict=True)
    cpu_kvcache_space_gb: int = Field(4, ge=1, le=4096, strict=True)

    _tag = field_validator("tag")(check_pinned_tag)
    _image = field_validator("image")(check_image_repo)

    def image_for(self, gpu: bool) -> str:
        """The configured image, else vLLM's GPU image on GPU hosts and its CPU build elsewhere."""
        return self.image or (upstream.VLLM_GPU_IMAGE if gpu else upstream.VLLM_CPU_IMAGE)

    _model = field_validator("model")(lambda v: match(HF_MODEL, v, "a Hugging Face repo id like org/model"))
    _served = field_validator("served_model_name")(
        lambda v: match(SERVED_NAME, v, "a model name of letters, digits, '.', '_', ':', '-'")
    )


class LlamaFactorySettings(SettingsModel):
    enabled: bool | None = None  # default: on where the host has a GPU
    image: str = upstream.LLAMAFACTORY_IMAGE
    tag: str = upstream.LLAMAFACTORY_TAG
    ui_user: str = "admin"

    _tag = field_validator("tag")(check_pinned_tag)
    _image = field_validator("image")(check_image_repo)
    _ui_user = field_validator("ui_user")(
        lambda v: match(POSIX_USER, v, "a user name (lowercase letters, digits, '_', '-')")
    )


class HostSettings(SettingsModel):
    provider: Literal["digitalocean", "hetzner"]
    region: str
    size: str
    image: str | None = None
    volume_size_gb: int = Field(100, ge=10, le=16384, strict=True)
    admin_user: str = "llmadmin"
    admin_cidrs: list[str]
    # SSH from ranges wider than an IPv4 /8 or an IPv6 /32 in all is refused unless this is set.
    allow_wide_admin_cidrs: bool = Field(False, strict=True)
    ssh_public_keys: list[str]
    domain: str
    dns_zone: str | None = None
    acme_email: str
    acme_directory: str = "https://acme-v02.api.letsencrypt.org/directory"
    proxy_backend: Literal["vllm", "ollama"] = "vllm"
    ollama: OllamaSettings = OllamaSettings()
    vllm: VllmSettings = VllmSettings()
    llamafactory: LlamaFactorySettings = LlamaFactorySettings()

    _image = field_validator("image")(
        lambda v: (
            v
            if v is None
            else match(
                PROVIDER_IMAGE,
                v,
                "a provider image like debian-12-x64 or debian-12 "
                "(lowercase letters, digits, '.', '_', '-'; at most 64)",
            )
        )
    )
    _admin_user = field_validator("admin_user")(lambda v: check_admin_user(v))
    _admin_cidrs = field_validator("admin_cidrs")(lambda v: check_admin_cidrs(v))
    _ssh_keys = field_validator("ssh_public_keys")(lambda v: check_ssh_public_keys(v))
    _dns = field_validator("domain", "dns_zone")(check_optional_dns_name)
    _email = field_validator("acme_email")(lambda v: check_acme_email(v))
    _acme = field_validator("acme_directory")(lambda v: check_acme_directory(v))

    @model_validator(mode="after")
    def _cidrs_not_too_wide(self) -> HostSettings:
        if self.allow_wide_admin_cidrs:
            return self
        nets = [ipaddress.ip_network(c) for c in self.admin_cidrs]
        for version, limit, width in ((4, MAX_ADMIN_V4, "/8"), (6, MAX_ADMIN_V6, "/32")):
            covered = sum(
                n.num_addresses for n in ipaddress.collapse_addresses(x for x in nets if x.version == version)
            )
            if covered > limit:
                raise KeyedError(
                    "host.adminCidrs",
                    self.admin_cidrs,
                    f"together open SSH to more than an IPv{version} {width}; list your admin networks "
                    "(or set host.allowWideAdminCidrs: true to accept it)",
                )
        return self

    @model_validator(mode="after")
    def _provider_catalogue(self) -> HostSettings:
        if self.provider == "digitalocean":
            check_one_of(self.region, prices.DO_DROPLET_REGIONS, "host.region")
            check_one_of(self.size, tuple(prices.DROPLET_SIZES), "host.size")
            if prices.DROPLET_SIZES[self.size].gpu:
                check_one_of(self.region, prices.DO_GPU_REGIONS, "host.region", why=f"(GPU size {self.size})")
        else:
            check_one_of(self.region, prices.HCLOUD_LOCATIONS, "host.region")
            check_one_of(self.size, tuple(prices.HCLOUD_SERVER_TYPES), "host.size")
        if self.dns_zone and self.provider != "digitalocean":
            raise KeyedError(
                "host.dnsZone",
                self.dns_zone,
                "is only supported with provider 'digitalocean': for a "
                "Hetzner host, remove it and create the A record host.domain -> the host_ip output "
                "yourself at your DNS provider (this project makes none)",
            )
        if self.dns_zone and not (self.domain == self.dns_zone or self.domain.endswith("." + self.dns_zone)):
            raise KeyedError("host.dnsZone", self.dns_zone, f"must be the zone of host.domain {self.domain!r}")
        return self

    # Derived facts -------------------------------------------------------------------------------
    @property
    def gpu(self) -> bool:
        return self.provider == "digitalocean" and prices.DROPLET_SIZES[self.size].gpu

    @property
    def gpu_memory_gb(self) -> int | None:
        """Memory of one of the host's GPUs (the size's GPU memory over its GPU count, ``x8`` in the slug)."""
        if not self.gpu:
            return None
        count = re.search(r"x([0-9]+)-", self.size)
        return prices.DROPLET_SIZES[self.size].gpu_memory_gb // (int(count.group(1)) if count else 1)

    @property
    def resolved_image(self) -> str:
        if self.image:
            return self.image
        if self.provider == "hetzner":
            return "debian-12"
        return prices.DROPLET_SIZES[self.size].default_image

    @property
    def llamafactory_enabled(self) -> bool:
        return self.gpu if self.llamafactory.enabled is None else self.llamafactory.enabled

    @property
    def roles(self) -> list[str]:
        return roles.select(gpu=self.gpu, llamafactory=self.llamafactory_enabled)
