"""The typed stack settings: one pydantic model per block of a stack file, with the rules that
tie its values together (an instance count its size allows, a host wherever the gateway needs one...).
Unknown keys are refused at every level; field names are snake_case here and camelCase in the file.
The host block (``host:``) is ``components.host_settings``; the base the models share is
``components.settings_model``. ``components.config`` turns a stack's config into these models, with
one line per problem.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components import prices
from components.host_settings import DEFAULT_MODEL, HostSettings
from components.patterns import (
    APP_NAME,
    COMPOSE_FILE,
    DOCKER_HOST,
    EMAIL,
    ENV_KEY,
    GIT_BRANCH,
    HF_MODEL,
    SECRET_LIKE_ENV,
    SOURCE_DIR,
    check_github_repo,
    check_ollama_models,
    check_optional_dns_name,
    match,
)
from components.phases import PHASES
from components.secrets import SECRET_SPECS, Secret, SecretSpec
from components.settings_model import KeyedError, SettingsModel, one_of


def _app_size(v: str) -> str:
    return one_of(v, tuple(prices.APP_INSTANCE_SIZES))


class _ServiceSettings(SettingsModel):
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


class AlertSettings(SettingsModel):
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


class AppSettings(SettingsModel):
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


class HuggingfaceSettings(SettingsModel):
    # bounded: the cost estimate multiplies it by a float (10**400 would overflow it)
    requests_per_month: int = Field(0, ge=0, le=10**12, strict=True)
    usd_per_1k_requests: float = Field(prices.HF_DEFAULT_USD_PER_1K_REQUESTS.usd_month, ge=0, allow_inf_nan=False)
    pro_subscription: bool = Field(False, strict=True)  # optional in the seed plan: opt in per stack


class HomelabSettings(SettingsModel):
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


class HomelabStackSettings(SettingsModel):
    """A homelab stack: the compose file's containers on a Docker host; no cloud resources."""

    stack: str
    budget: float = Field(0, ge=0, allow_inf_nan=False)
    homelab: HomelabSettings
    secrets: dict[str, Any] = Field(default_factory=dict, repr=False)

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True, arbitrary_types_allowed=True
    )


class StackSettings(SettingsModel):
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
        return one_of(v, tuple(PHASES))

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        return one_of(v, prices.APP_REGIONS)

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
