"""The typed stack settings: one pydantic model per block of a stack file, with the rules that
tie its values together (a GPU size only in a GPU region, a host wherever the gateway needs one...).
Unknown keys are refused at every level; field names are snake_case here and camelCase in the file.
``components.config`` turns a stack's config into these models, with one line per problem.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components import prices, roles, upstream
from components.patterns import (
    APP_NAME,
    COMPOSE_FILE,
    DOCKER_HOST,
    DURATION,
    EMAIL,
    ENV_KEY,
    GIT_BRANCH,
    HF_MODEL,
    MAX_ADMIN_V4,
    MAX_ADMIN_V6,
    POSIX_USER,
    PROVIDER_IMAGE,
    RELEASE_VERSION,
    RELEASE_VERSION_TEXT,
    SECRET_LIKE_ENV,
    SERVED_NAME,
    SOURCE_DIR,
    check_acme_directory,
    check_acme_email,
    check_admin_cidrs,
    check_admin_user,
    check_github_repo,
    check_image_repo,
    check_ollama_models,
    check_optional_dns_name,
    check_pinned_tag,
    check_ssh_public_keys,
    match,
)
from components.phases import PHASES
from components.secrets import SECRET_SPECS, Secret, SecretSpec


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class KeyedError(ValueError):
    """Raised inside validators to name a key other than the one pydantic is looking at."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}: {allowed}")


def _check(value: str, allowed: tuple, key: str, why: str = "") -> None:
    if value not in allowed:
        raise KeyedError(key, value, f"must be one of {', '.join(map(repr, allowed))}" + (f" {why}" if why else ""))


def _one_of(value: Any, allowed: tuple | list | Mapping) -> Any:
    if value not in allowed:
        raise ValueError("must be one of " + ", ".join(repr(a) for a in allowed))
    return value


def _app_size(v: str) -> str:
    return _one_of(v, tuple(prices.APP_INSTANCE_SIZES))


# The platform's model: what the gateway asks Hugging Face for (phase 1) and what vLLM serves on a host.
DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"


class _ServiceSettings(_Model):
    """What both App Platform services take: their GitHub source, instance size and count."""

    SOURCE_DIR_EXAMPLE: ClassVar[str] = "/backend"

    repo: str
    branch: str = "main"
    source_dir: str
    instance_size: str
    instance_count: int = Field(1, ge=1, le=10, strict=True)

    _repo = field_validator("repo")(check_github_repo)
    _size = field_validator("instance_size")(_app_size)
    _branch = field_validator("branch")(lambda v: match(GIT_BRANCH, v, "a git branch name"))

    @field_validator("source_dir")
    @classmethod
    def _source_dir(cls, v: str) -> str:
        return match(SOURCE_DIR, v, f"an absolute path like {cls.SOURCE_DIR_EXAMPLE}")


class AiServiceSettings(_ServiceSettings):
    repo: str = Field(description="GitHub owner/repo of ai-service")
    source_dir: str = "/"
    instance_size: str = "apps-s-1vcpu-1gb"
    llm_traffic_share: int = Field(
        100, ge=0, le=100, strict=True, description="percent of chat traffic sent to the llm gateway (A/B)"
    )
    envs: dict[str, str] = {}

    @field_validator("envs")
    @classmethod
    def _envs(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not ENV_KEY.match(k):
                raise ValueError(f"env name {k!r} must match {ENV_KEY.pattern}")
            if SECRET_LIKE_ENV.search(k):
                raise ValueError(
                    f"{k!r} looks like a secret: a plain env is stored in the stack file and printed by the plan; "
                    "declare it as a Pulumi secret (components/secrets.py SECRET_SPECS) instead"
                )
        reserved = {"LLM_SERVICE_URL", "LLM_TRAFFIC_SHARE", "OPENAI_API_KEY"}
        clash = sorted(reserved & set(v))
        if clash:
            raise ValueError(f"{', '.join(clash)} are set by the platform; remove them from envs")
        return v


class LlmServiceSettings(_ServiceSettings):
    SOURCE_DIR_EXAMPLE: ClassVar[str] = "/llm"

    source_dir: str = "/llm"
    provider: Literal["huggingface", "vllm", "ollama"]
    huggingface_model: str = DEFAULT_MODEL
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    enable_metrics: bool = Field(True, strict=True)

    _hf_model = field_validator("huggingface_model")(
        lambda v: match(HF_MODEL, v, "a Hugging Face repo id like org/model")
    )


class AlertSettings(_Model):
    emails: list[str] = []
    cpu_percent: int = Field(80, ge=1, le=100, strict=True)
    restart_count: int = Field(3, ge=1, le=100, strict=True)

    @field_validator("emails")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        for e in v:
            if not EMAIL.match(e):
                raise ValueError(f"{e!r} is not an e-mail address")
        return v


class AppSettings(_Model):
    name: str | None = None
    domain: str | None = None
    ai_service: AiServiceSettings
    llm: LlmServiceSettings
    alerts: AlertSettings = AlertSettings()

    _name = field_validator("name")(
        lambda v: (
            v if v is None else match(APP_NAME, v, "2-32 lowercase letters, digits or '-' (App Platform app name)")
        )
    )

    _domain = field_validator("domain")(check_optional_dns_name)


class OllamaSettings(_Model):
    version: str = upstream.OLLAMA_VERSION
    # sha256 of that release's Linux archive (upstream.ollama_archive: .tgz before 0.14.0, .tar.zst
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


class VllmSettings(_Model):
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


class LlamaFactorySettings(_Model):
    enabled: bool | None = None  # default: on where the host has a GPU
    image: str = upstream.LLAMAFACTORY_IMAGE
    tag: str = upstream.LLAMAFACTORY_TAG
    ui_user: str = "admin"

    _tag = field_validator("tag")(check_pinned_tag)
    _image = field_validator("image")(check_image_repo)
    _ui_user = field_validator("ui_user")(
        lambda v: match(POSIX_USER, v, "a user name (lowercase letters, digits, '_', '-')")
    )


class HostSettings(_Model):
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
            _check(self.region, prices.DO_DROPLET_REGIONS, "host.region")
            _check(self.size, tuple(prices.DROPLET_SIZES), "host.size")
            if prices.DROPLET_SIZES[self.size].gpu:
                _check(self.region, prices.DO_GPU_REGIONS, "host.region", why=f"(GPU size {self.size})")
        else:
            _check(self.region, prices.HCLOUD_LOCATIONS, "host.region")
            _check(self.size, tuple(prices.HCLOUD_SERVER_TYPES), "host.size")
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


class HuggingfaceSettings(_Model):
    # bounded: the cost estimate multiplies it by a float (10**400 would overflow it)
    requests_per_month: int = Field(0, ge=0, le=10**12, strict=True)
    usd_per_1k_requests: float = Field(prices.HF_DEFAULT_USD_PER_1K_REQUESTS.usd_month, ge=0, allow_inf_nan=False)
    pro_subscription: bool = Field(False, strict=True)  # optional in the seed plan: opt in per stack


class HomelabSettings(_Model):
    docker_host: str = "unix:///var/run/docker.sock"
    compose_file: str = "docker/homelab/compose.yml"
    models: list[str] = []
    gpu: bool = False

    _docker_host = field_validator("docker_host")(
        lambda v: match(DOCKER_HOST, v, "unix:///path/docker.sock, ssh://user@host or tcp://host:port")
    )
    # a path in this repository (components/homelab.py reads it with a bound), never /dev/zero or /etc
    _compose_file = field_validator("compose_file")(
        lambda v: match(
            COMPOSE_FILE, v, "a .yml file of this repository, relative to its root, like docker/homelab/compose.yml"
        )
    )
    _models = field_validator("models")(lambda v: check_ollama_models(v))


class HomelabStackSettings(_Model):
    """A homelab stack: the compose file's containers on a Docker host; no cloud resources."""

    stack: str
    budget: float = Field(0, ge=0, allow_inf_nan=False)
    homelab: HomelabSettings
    secrets: dict[str, Any] = Field(default_factory=dict, repr=False)

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True, arbitrary_types_allowed=True
    )


class StackSettings(_Model):
    stack: str
    phase: int
    region: str
    budget: float = Field(ge=0, allow_inf_nan=False)
    allow_over_budget: bool = Field(False, strict=True)
    host_enabled: bool = Field(strict=True)
    # The host's domain once `scripts/converge STACK --verify` passed on it: until then the gateway
    # stays on Hugging Face (components/readiness.py).
    host_verified: str | None = None
    app: AppSettings
    host: HostSettings | None = None
    huggingface: HuggingfaceSettings = HuggingfaceSettings()
    secrets: dict[str, Any] = Field(default_factory=dict, repr=False)

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True, arbitrary_types_allowed=True
    )

    _host_verified = field_validator("host_verified")(check_optional_dns_name)

    @field_validator("phase")
    @classmethod
    def _phase(cls, v: int) -> int:
        return _one_of(v, tuple(PHASES))

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        return _one_of(v, prices.APP_REGIONS)

    @model_validator(mode="after")
    def _cross(self) -> StackSettings:
        if self.host_enabled and self.host is None:
            raise KeyedError("host", None, f"is required: phase {self.phase} (or hostEnabled) creates a model host")
        if self.app.llm.provider in ("vllm", "ollama") and not self.host_enabled:
            raise KeyedError(
                "app.llm.provider", self.app.llm.provider, "needs a model host: set phase: 2 (or hostEnabled: true)"
            )
        for size, count, key in (
            (self.app.llm.instance_size, self.app.llm.instance_count, "app.llm.instanceCount"),
            (self.app.ai_service.instance_size, self.app.ai_service.instance_count, "app.aiService.instanceCount"),
        ):
            if count > 1 and size in prices.APP_SINGLE_INSTANCE_SIZES:
                raise KeyedError(key, count, f"must be 1 with instance size {size!r} (single instance only)")
        return self

    # Derived -------------------------------------------------------------------------------------
    @property
    def app_name(self) -> str:
        return self.app.name or f"llm-platform-{self.stack}"[:32]

    def required_secrets(self) -> list[SecretSpec]:
        when = {
            "always": True,
            "host": self.host_enabled,
            "llamafactory": self.host_enabled and self.host is not None and self.host.llamafactory_enabled,
            "never": False,
        }
        return [s for s in SECRET_SPECS if when[s.required]]

    def secret(self, key: str) -> Secret | None:
        return self.secrets.get(key)

    @property
    def gateway_provider(self) -> str:
        """Where the gateway calls now (Hugging Face until the host is verified: components/readiness.py)."""
        from components import readiness

        return readiness.gateway_provider(self)
