"""Typed stack settings: the stack's Pulumi config, read once and validated before any resource exists.

``parse_settings(raw, stack)`` is plain Python (testable without Pulumi): ``raw`` maps
``"llm-platform:<key>"`` to the string Pulumi hands the program (objects arrive as JSON text).
``load()`` reads the current stack's config from the Pulumi runtime and calls it.

Every problem becomes a ``SettingsError`` whose message is one line per problem, each naming the key,
the value and what is allowed, e.g.::

    llm-platform:host.provider = 'aws': must be one of 'digitalocean', 'hetzner'

Secret keys are declared here and only here (``SECRET_KEYS``). Their values never appear in an error,
a repr or an output: they are wrapped in ``Secret`` and turned into Pulumi secrets by the components.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components import NAMESPACE, prices, roles, upstream
from components.phases import PHASES, apply_preset



# --------------------------------------------------------------------------------------------------
# Secrets: declared once.
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SecretSpec:
    """One secret: where it is needed and when the stack must hold it.

    ``required``: "always", "host" (a stack with a model host), "llamafactory" (a host with
    LLaMA-Factory) or "never" (set only while something is under way, e.g. a key rotation). ``env``/``services``: its SECRET env name and the App Platform services that get
    it. ``roles``: the host roles that read it (the host layer fetches exactly these for a host);
    ``host_optional``: the roles work without it (e.g. gated model downloads only)."""

    key: str
    description: str
    required: Literal["always", "host", "llamafactory", "never"]
    env: str | None = None
    services: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    host_optional: bool = False
    set_with: str = ""  # the command that sets it, when not `pulumi config set --secret KEY <value>`


SECRET_SPECS: tuple[SecretSpec, ...] = (
    SecretSpec("huggingfaceApiKey", "Hugging Face token (serverless inference, model downloads)", "always",
               env="HUGGINGFACE_API_KEY", services=("llm",), roles=("vllm", "llamafactory"), host_optional=True),
    SecretSpec("langfusePublicKey", "Langfuse public key (tracing)", "always",
               env="LANGFUSE_PUBLIC_KEY", services=("llm",)),
    SecretSpec("langfuseSecretKey", "Langfuse secret key (tracing)", "always",
               env="LANGFUSE_SECRET_KEY", services=("llm",)),
    SecretSpec("openaiApiKey", "GPT-4o fallback key of ai-service", "always",
               env="OPENAI_API_KEY", services=("ai-service",)),
    SecretSpec("vllmApiKey", "bearer key of the model host's /v1 API (phase 2), enforced by nginx", "host",
               env="VLLM_API_KEY", services=("llm",), roles=("proxy",)),
    # scripts/rotate-key: the key being replaced, accepted by nginx beside vllmApiKey until App
    # Platform runs with the new one; removed when the rotation ends.
    SecretSpec("vllmApiKeyPrevious", "the /v1 key being rotated out (set by scripts/rotate-key only)", "never",
               roles=("proxy",), host_optional=True),
    # vLLM's own --api-key: host-local (nginx sends it to vLLM on loopback), never on App Platform
    # and never rotated with vllmApiKey, so a rotation does not restart vLLM.
    SecretSpec("vllmLocalKey", "vLLM's own --api-key, between nginx and vLLM on the host only", "host",
               roles=("vllm", "proxy")),
    SecretSpec("llamafactoryApiKey", "bearer key of LLaMA-Factory's API on the model host", "llamafactory",
               roles=("llamafactory",)),
    SecretSpec("llamafactoryUiPassword", "basic-auth password of the LLaMA-Factory web UI", "llamafactory",
               roles=("llamafactory",)),
    SecretSpec("hostSshKey", "the model host's SSH host key (ed25519, OpenSSH format; the same on every rebuild)",
               "host", set_with="scripts/host-keys {stack}"),
)
SECRET_KEYS: frozenset[str] = frozenset(s.key for s in SECRET_SPECS)
# Secrets a host reads end up inside nginx's key map, env files and htpasswd: one token of printable,
# unquoted characters, long enough not to be guessed. The plan checks the stack's values with it, so
# App Platform never gets a key the host would refuse (hosts.secret_values checks it again).
HOST_SECRET = re.compile(r"[A-Za-z0-9._~+/=:@%^*!,-]{16,512}")
HOST_SECRET_RULE = (
    "must be 16-512 characters of A-Z a-z 0-9 . _ ~ + / = : @ % ^ * ! , - (no spaces, quotes, "
    "backslashes or newlines: it is written into nginx, env and htpasswd files); e.g. openssl rand -base64 32"
)
# The providers' own secrets (other namespaces): a Pulumi secret or the provider's env variable.
PROVIDER_SECRETS: dict[str, str] = {"digitalocean:token": "DIGITALOCEAN_TOKEN", "hcloud:token": "HCLOUD_TOKEN"}


class Secret:
    """A secret config value. Its repr and str never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(****)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SettingsError(ValueError):
    """Bad stack config. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


# --------------------------------------------------------------------------------------------------
# Models. Field names are snake_case in Python and camelCase in the stack file.
# --------------------------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


def _one_of(value: Any, allowed: tuple | list | Mapping) -> Any:
    if value not in allowed:
        raise ValueError("must be one of " + ", ".join(repr(a) for a in allowed))
    return value


# Every value that reaches a command, a unit file, nginx, htpasswd or an App Platform spec is matched
# against one of these before anything is planned; the deploy also quotes what it passes to a shell.
# All are anchored with \Z (``$`` also matches before a trailing newline), spell digits [0-9] (``\d``
# also matches Arabic-Indic and other Unicode digits, which int() then reads) and bound the length.
# GitHub: owner at most 39 characters, repository name at most 100.
GITHUB_REPO = re.compile(r"^[A-Za-z0-9_.-]{1,39}/[A-Za-z0-9_.-]{1,100}\Z")
GIT_BRANCH = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,100}(?<![./])\Z")
SOURCE_DIR = re.compile(r"^/(?!.*\.\.)[A-Za-z0-9._/-]{0,200}\Z")
HOSTNAME = re.compile(r"^(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")
ENV_KEY = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}\Z")
EMAIL = re.compile(r"^(?=.{1,254}\Z)[A-Za-z0-9._%+-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\Z")
SSH_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) ([A-Za-z0-9+/]+={0,2})( [ -~]*)?\Z"
)
# Docker image repository (optionally with a registry host[:port]) and tag (Docker's reference grammar).
# At most 255 characters in all (Docker's own limit on a repository name).
IMAGE_REPO = re.compile(
    r"^(?=.{1,255}\Z)((?:[a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?(:[0-9]{1,5})?/)?"
    r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*\Z"
)
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
# Hugging Face repo id ("org/name" or "name") and a served model name.
HF_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?\Z")
SERVED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")
# Ollama model name: [namespace/]name[:tag].
# name, namespace/name or host/namespace/name (hf.co/org/Repo-GGUF), with an optional :tag
OLLAMA_MODEL = re.compile(r"^(?=.{1,200}\Z)[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*){0,2}(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?\Z")
# Go duration (Ollama's OLLAMA_KEEP_ALIVE) or plain seconds; negative = forever.
DURATION = re.compile(r"^-?([0-9]{1,12}|([0-9]{1,12}(\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,6})\Z")
POSIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")
# A release version (Ollama's; scripts/pin takes the same).
RELEASE_VERSION = re.compile(r"^[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}\Z")
# The provider's OS image: a DigitalOcean slug (debian-12-x64), a Hetzner name (debian-12,
# ubuntu-24.04) or a snapshot id. It is printed by the plan and sent to the provider's API.
PROVIDER_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")
# An App Platform app name.
APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]\Z")
# The homelab's Docker daemon: a socket path, ssh://user@host[:port] or tcp://host:port.
DOCKER_HOST = re.compile(r"^(?=.{1,255}\Z)(unix|ssh|tcp)://[A-Za-z0-9._~%/:@\[\]-]+\Z")
# The homelab's compose file: a YAML file in this repository, named relative to its root.
COMPOSE_FILE = re.compile(r"^(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_][A-Za-z0-9_./-]{0,200}\.ya?ml\Z")
# Ollama models a host pulls (each several GB onto its disk): a short list, each once.
MAX_OLLAMA_MODELS = 32
ACME_URL = re.compile(r"^(?=.{1,2048}\Z)https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/-]*)?\Z")
# Plain env names that look like they hold a secret: declared secrets only (SECRET_SPECS).
# PASSWORD/SECRET/CREDENTIAL anywhere; TOKEN and KEY as a whole word (HF_TOKEN, API_KEY, but not
# TOKENIZERS_PARALLELISM or KEYBOARD_LAYOUT)
SECRET_LIKE_ENV = re.compile(r"PASSWORD|PASSWD|SECRET|CREDENTIAL|(^|_)(API)?(TOKEN|KEY)S?(_|$)")
# SSH from admin ranges: together no wider than one IPv4 /8 or IPv6 /32, unless host.allowWideAdminCidrs.
MAX_ADMIN_V4 = 2 ** (32 - 8)
MAX_ADMIN_V6 = 2 ** (128 - 32)
SSH_KEY_TYPES = {"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                 "sk-ssh-ed25519@openssh.com"}
MIN_RSA_BITS = 2048


def _match(pattern: re.Pattern, v: str, what: str) -> str:
    if not isinstance(v, str) or not pattern.match(v):
        raise ValueError(f"must be {what}")
    return v


def _ssh_key_blob_ok(kind: str, b64: str) -> str | None:
    """Why the base64 part is not a ``kind`` public key, or None when it is one."""
    import base64
    import struct

    try:
        blob = base64.b64decode(b64, validate=True)
    except ValueError:
        return "its key is not base64"
    fields, pos = [], 0
    while pos < len(blob) and len(fields) < 4:
        if pos + 4 > len(blob):
            return "its key is truncated"
        (n,) = struct.unpack(">I", blob[pos:pos + 4])
        if n > len(blob) - pos - 4:
            return "its key is truncated"
        fields.append(blob[pos + 4:pos + 4 + n])
        pos += 4 + n
    if not fields or fields[0] != kind.encode():
        return f"its key does not encode a {kind} key"
    if kind == "ssh-ed25519" and (len(fields) < 2 or len(fields[1]) != 32):
        return "its key is not a 32-byte ed25519 key"
    if kind == "ssh-rsa":
        if len(fields) < 3:
            return "its key is truncated"
        bits = len(fields[2].lstrip(b"\0")) * 8
        if bits < MIN_RSA_BITS:
            return f"RSA keys need at least {MIN_RSA_BITS} bits"
    return None


# Account names a host already has or that the roles create: the admin user must be none of them
# (it becomes a passwordless sudoer; the roles would rewrite a service account's shell). Debian 12's
# base-passwd static users, the accounts its packages on the host create, and the roles' own.
RESERVED_USERS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "www-data",
    "backup", "list", "irc", "gnats", "nobody", "messagebus", "sshd", "polkitd", "tss", "statd", "dnsmasq",
    "nginx", "ollama", "docker", "fail2ban", "sysstat", "tcpdump", "usbmux", "avahi", "uuidd", "ntp", "lxd",
    "admin", "ubuntu", "debian", "cloud-user", "postfix", "prometheus", "nvidia-persistenced",
})
# Characters a CIDR may hold: anything else (an IPv6 scope id after '%', spaces, '$', newlines) is
# refused before ipaddress sees it. ipaddress accepts "fe80::1%<anything>" as one address.
CIDR_CHARS = re.compile(r"^[0-9A-Fa-f.:/]{3,49}\Z")


def check_ollama_models(v: list[str]) -> list[str]:
    """Ollama model names, each once, at most MAX_OLLAMA_MODELS."""
    if len(v) > MAX_OLLAMA_MODELS:
        raise ValueError(f"lists {len(v)} models; at most {MAX_OLLAMA_MODELS} (each is pulled onto the host's disk)")
    for m in v:
        if not isinstance(m, str) or not OLLAMA_MODEL.match(m):
            raise ValueError(f"{_fmt_value(m)} is not an Ollama model name like llama3.2:3b (at most 200 characters)")
    twice = sorted({m for m in v if v.count(m) > 1})
    if twice:
        raise ValueError(f"lists {', '.join(map(_fmt_value, twice))} more than once")
    return list(v)


def check_admin_user(v: str) -> str:
    """A non-root login that is no system or service account."""
    if not isinstance(v, str) or not POSIX_USER.match(v) or v == "root":
        raise ValueError("must be a non-root POSIX user name (lowercase, max 32 chars)")
    if v in RESERVED_USERS or v.startswith(("_", "systemd-")):
        raise ValueError(f"{v!r} is a system or service account; choose a personal admin name like llmadmin")
    return v


def check_admin_cidrs(v: list[str]) -> list[str]:
    """Networks in their compressed form (what ufw, nginx and fail2ban are given verbatim)."""
    if not v:
        raise ValueError("must list at least one CIDR (SSH is allowed only from these)")
    for c in v:
        shown = _fmt_value(c)
        if not isinstance(c, str) or not CIDR_CHARS.match(c):
            raise ValueError(f"{shown} is not a CIDR like 203.0.113.0/24 (digits, hex, '.', ':' and '/' only)")
        try:
            net = ipaddress.ip_network(c, strict=True)
        except ValueError:
            raise ValueError(f"{shown} is not a CIDR like 203.0.113.0/24 (host bits must be zero)") from None
        if net.prefixlen == 0:
            raise ValueError(f"{shown} would open SSH to the whole internet; list your admin networks")
        if str(net) != c:
            raise ValueError(f"{shown} must be written in its compressed form {str(net)!r}")
    if len(set(v)) != len(v):
        raise ValueError("lists a CIDR twice")
    return list(v)


def check_ssh_public_keys(v: list[str]) -> list[str]:
    if not v:
        raise ValueError("must list at least one SSH public key")
    for k in v:
        m = SSH_KEY.match(k.strip()) if isinstance(k, str) else None
        if not m:
            raise ValueError(f"{_fmt_value(str(k)[:24])}... is not an OpenSSH public key (ssh-ed25519/ssh-rsa/ecdsa-...) on one line")
        why = _ssh_key_blob_ok(m.group(1), m.group(3))
        if why:
            raise ValueError(f"{_fmt_value(k[:24])}... is not a usable OpenSSH public key: {why}")
    return [k.strip() for k in v]


def check_acme_email(v: str) -> str:
    if isinstance(v, str) and v.startswith("-"):
        raise ValueError("must not start with '-' (certbot would read it as an option)")
    return _match(EMAIL, v, "an e-mail address (Let's Encrypt account)")


def check_acme_directory(v: str) -> str:
    return _match(ACME_URL, v, "an https:// ACME directory URL")


# An artifact source or proxy URL (it reaches curl and apt's config): no spaces, quotes or controls.
URL = re.compile(r"^(?=.{1,2048}\Z)https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+:@=-]*)?\Z")


def check_url(v: str, what: str) -> str:
    return _match(URL, v, what)


def check_dns_name(v: str) -> str:
    if not isinstance(v, str) or not HOSTNAME.match(v):
        raise ValueError("must be a DNS name like app.example.com")
    return v


def _github_repo(v: str) -> str:
    if not GITHUB_REPO.match(v):
        raise ValueError("must be 'owner/repo'")
    return v


def _app_size(v: str) -> str:
    return _one_of(v, tuple(prices.APP_INSTANCE_SIZES))


def _dns_name(v: str | None) -> str | None:
    return v if v is None else check_dns_name(v)


def _pinned_tag(v: str) -> str:
    if not isinstance(v, str) or v.lower() == "latest":
        raise ValueError("pin a release tag (e.g. v0.11.0), not 'latest'")
    return _match(IMAGE_TAG, v, "an image tag (letters, digits, '_', '.', '-'; at most 128)")


def _image_repo(v: str | None) -> str | None:
    if v is None:
        return v
    return _match(IMAGE_REPO, v, "an image repository like vllm/vllm-openai or registry.example.com/team/image")


class AiServiceSettings(_Model):
    repo: str = Field(description="GitHub owner/repo of ai-service")
    branch: str = "main"
    source_dir: str = "/"
    instance_size: str = "apps-s-1vcpu-1gb"
    instance_count: int = Field(1, ge=1, le=10, strict=True)
    llm_traffic_share: int = Field(100, ge=0, le=100, strict=True,
                                   description="percent of chat traffic sent to the llm gateway (A/B)")
    envs: dict[str, str] = {}

    _repo = field_validator("repo")(_github_repo)
    _size = field_validator("instance_size")(_app_size)
    _branch = field_validator("branch")(lambda v: _match(GIT_BRANCH, v, "a git branch name"))
    _source_dir = field_validator("source_dir")(lambda v: _match(SOURCE_DIR, v, "an absolute path like /backend"))

    @field_validator("envs")
    @classmethod
    def _envs(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not ENV_KEY.match(k):
                raise ValueError(f"env name {k!r} must match {ENV_KEY.pattern}")
            if SECRET_LIKE_ENV.search(k):
                raise ValueError(
                    f"{k!r} looks like a secret: a plain env is stored in the stack file and printed by the plan; "
                    "declare it as a Pulumi secret (components/settings.py SECRET_SPECS) instead"
                )
        reserved = {"LLM_SERVICE_URL", "LLM_TRAFFIC_SHARE", "OPENAI_API_KEY"}
        clash = sorted(reserved & set(v))
        if clash:
            raise ValueError(f"{', '.join(clash)} are set by the platform; remove them from envs")
        return v


class LlmServiceSettings(_Model):
    repo: str
    branch: str = "main"
    source_dir: str = "/llm"
    instance_size: str
    instance_count: int = Field(1, ge=1, le=10, strict=True)
    provider: Literal["huggingface", "vllm", "ollama"]
    huggingface_model: str = "meta-llama/Llama-3.1-8B-Instruct"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    enable_metrics: bool = Field(True, strict=True)

    _repo = field_validator("repo")(_github_repo)
    _size = field_validator("instance_size")(_app_size)
    _branch = field_validator("branch")(lambda v: _match(GIT_BRANCH, v, "a git branch name"))
    _source_dir = field_validator("source_dir")(lambda v: _match(SOURCE_DIR, v, "an absolute path like /llm"))
    _hf_model = field_validator("huggingface_model")(lambda v: _match(HF_MODEL, v, "a Hugging Face repo id like org/model"))


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
        lambda v: v if v is None else _match(APP_NAME, v, "2-32 lowercase letters, digits or '-' (App Platform app name)"))

    _domain = field_validator("domain")(_dns_name)


class OllamaSettings(_Model):
    version: str = upstream.OLLAMA_VERSION
    # sha256 of that release's Linux archive (upstream.ollama_archive: .tgz before 0.14.0, .tar.zst
    # from it), from the release's sha256sum.txt; `scripts/pin ollama STACK VERSION` writes both.
    # Required wherever the host is created: the deploy refuses to install an unpinned archive.
    # In a stack file it carries its version ("0.13.5@<hex>", one pin): a version edited without
    # its checksum (or the reverse) is refused at plan. The host data may hold the bare hex.
    sha256: str | None = Field(None, pattern=r"^([0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}@)?[0-9a-f]{64}$")
    models: list[str] = ["llama3.1:8b"]
    keep_alive: str = "24h"
    num_parallel: int = Field(2, ge=1, le=64, strict=True)
    # Models loaded at once (OLLAMA_MAX_LOADED_MODELS). On a GPU host with vLLM, Ollama also reserves
    # vLLM's share of each GPU (OLLAMA_GPU_OVERHEAD; see VllmSettings.gpu_memory_utilization).
    max_loaded_models: int = Field(1, ge=1, le=16, strict=True)

    _version = field_validator("version")(lambda v: _match(RELEASE_VERSION, v, "a release version like 0.13.5"))
    _models = field_validator("models")(lambda v: check_ollama_models(v))

    _keep_alive = field_validator("keep_alive")(
        lambda v: _match(DURATION, v, "a duration like 24h, 30m, 90s or -1 (forever)"))

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
            raise _KeyedError(
                "host.ollama.sha256", f"{pinned}@...",
                f"pins Ollama {pinned} but host.ollama.version is {self.version}: change both together with: "
                f"scripts/pin ollama STACK {self.version}",
            )
        return self


VLLM_GPU_IMAGE = upstream.VLLM_GPU_IMAGE
VLLM_CPU_IMAGE = upstream.VLLM_CPU_IMAGE  # see components/upstream.py for its status


class VllmSettings(_Model):
    image: str | None = None  # default: vllm/vllm-openai on GPU hosts, the CPU build elsewhere
    tag: str = upstream.VLLM_TAG
    model: str = "meta-llama/Llama-3.1-8B-Instruct"
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

    _tag = field_validator("tag")(_pinned_tag)
    _image = field_validator("image")(_image_repo)

    def image_for(self, gpu: bool) -> str:
        """The configured image, else vLLM's GPU image on GPU hosts and its CPU build elsewhere."""
        return self.image or (VLLM_GPU_IMAGE if gpu else VLLM_CPU_IMAGE)

    _model = field_validator("model")(lambda v: _match(HF_MODEL, v, "a Hugging Face repo id like org/model"))
    _served = field_validator("served_model_name")(
        lambda v: _match(SERVED_NAME, v, "a model name of letters, digits, '.', '_', ':', '-'"))


class LlamaFactorySettings(_Model):
    enabled: bool | None = None  # default: on where the host has a GPU
    image: str = upstream.LLAMAFACTORY_IMAGE
    tag: str = upstream.LLAMAFACTORY_TAG
    ui_user: str = "admin"

    _tag = field_validator("tag")(_pinned_tag)
    _image = field_validator("image")(_image_repo)
    _ui_user = field_validator("ui_user")(lambda v: _match(POSIX_USER, v, "a user name (lowercase letters, digits, '_', '-')"))


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
        lambda v: v if v is None else _match(PROVIDER_IMAGE, v, "a provider image like debian-12-x64 or debian-12 "
                                             "(lowercase letters, digits, '.', '_', '-'; at most 64)"))
    _admin_user = field_validator("admin_user")(lambda v: check_admin_user(v))
    _admin_cidrs = field_validator("admin_cidrs")(lambda v: check_admin_cidrs(v))
    _ssh_keys = field_validator("ssh_public_keys")(lambda v: check_ssh_public_keys(v))
    _dns = field_validator("domain", "dns_zone")(_dns_name)
    _email = field_validator("acme_email")(lambda v: check_acme_email(v))
    _acme = field_validator("acme_directory")(lambda v: check_acme_directory(v))

    @model_validator(mode="after")
    def _cidrs_not_too_wide(self) -> HostSettings:
        if self.allow_wide_admin_cidrs:
            return self
        nets = [ipaddress.ip_network(c) for c in self.admin_cidrs]
        for version, limit, width in ((4, MAX_ADMIN_V4, "/8"), (6, MAX_ADMIN_V6, "/32")):
            covered = sum(n.num_addresses for n in ipaddress.collapse_addresses(x for x in nets if x.version == version))
            if covered > limit:
                raise _KeyedError(
                    "host.adminCidrs", self.admin_cidrs,
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
            raise _KeyedError("host.dnsZone", self.dns_zone, "is only supported with provider 'digitalocean': for a "
                              "Hetzner host, remove it and create the A record host.domain -> the host_ip output "
                              "yourself at your DNS provider (this project makes none)")
        if self.dns_zone and not (self.domain == self.dns_zone or self.domain.endswith("." + self.dns_zone)):
            raise _KeyedError("host.dnsZone", self.dns_zone, f"must be the zone of host.domain {self.domain!r}")
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
        lambda v: _match(DOCKER_HOST, v, "unix:///path/docker.sock, ssh://user@host or tcp://host:port"))
    # a path in this repository (components/homelab.py reads it with a bound), never /dev/zero or /etc
    _compose_file = field_validator("compose_file")(
        lambda v: _match(COMPOSE_FILE, v, "a .yml file of this repository, relative to its root, like docker/homelab/compose.yml"))
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

    _host_verified = field_validator("host_verified")(_dns_name)

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
            raise _KeyedError("host", None, f"is required: phase {self.phase} (or hostEnabled) creates a model host")
        if self.app.llm.provider in ("vllm", "ollama") and not self.host_enabled:
            raise _KeyedError(
                "app.llm.provider", self.app.llm.provider, "needs a model host: set phase: 2 (or hostEnabled: true)"
            )
        for size, count, key in (
            (self.app.llm.instance_size, self.app.llm.instance_count, "app.llm.instanceCount"),
            (self.app.ai_service.instance_size, self.app.ai_service.instance_count, "app.aiService.instanceCount"),
        ):
            if count > 1 and size in prices.APP_SINGLE_INSTANCE_SIZES:
                raise _KeyedError(key, count, f"must be 1 with instance size {size!r} (single instance only)")
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


class _KeyedError(ValueError):
    """Raised inside validators to name a key other than the one pydantic is looking at."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}: {allowed}")


def _check(value: str, allowed: tuple, key: str, why: str = "") -> None:
    if value not in allowed:
        raise _KeyedError(key, value, f"must be one of {', '.join(map(repr, allowed))}" + (f" {why}" if why else ""))


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------
TOP_LEVEL_KEYS = {
    to_camel(name) for name in StackSettings.model_fields if name not in ("stack", "secrets")
} | set(SECRET_KEYS) | {"homelab"}
HOMELAB_KEYS = {"homelab", "budget"}


def _decode(raw: str) -> Any:
    """Pulumi hands every config value over as a string; objects and numbers as JSON text."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return raw


def _fmt_value(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Walk the model along ``loc`` (aliases) and return the allowed keys at the parent level."""
    current: Any = model
    for part in loc[:-1]:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return None
        ann = field.annotation
        args = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        current = args[0] if args else ann
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return None


def _format_errors(exc: ValidationError, model: type[BaseModel] | None = None) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(str(p) for p in err["loc"])
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _KeyedError):
            shown = "" if ctx_err.value is None else f" = {_fmt_value(ctx_err.value)}"
            lines.append(f"{NAMESPACE}:{ctx_err.key}{shown}: {ctx_err.allowed}")
            continue
        key = ".".join(loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model or StackSettings, err["loc"])
            msg = "unknown key" + (f"; allowed here: {', '.join(sorted(allowed))}" if allowed else "")
            lines.append(f"{NAMESPACE}:{key}: {msg}")
        elif err["type"] == "missing":
            lines.append(f"{NAMESPACE}:{key}: required key is missing")
        else:
            msg = msg.replace("Input should be", "must be")
            shown = err["input"]
            if "envs" in loc:  # env values may be secrets: names only
                shown = sorted(shown) if isinstance(shown, dict) else "****"
            lines.append(f"{NAMESPACE}:{key} = {_fmt_value(shown)}: {msg}")
    return lines


def _unknown_key(full_key: str, key: str) -> str:
    """The refusal of an unknown top-level key. Never its value: a secret set under a misspelled key
    (huggingfaceApikey) would be printed, and drift copies the line into its report."""
    import difflib

    near = difflib.get_close_matches(key, [k for k in TOP_LEVEL_KEYS if k.lower() == key.lower()] or TOP_LEVEL_KEYS, n=1)
    hint = f" (did you mean {NAMESPACE}:{near[0]}? keys are case-sensitive)" if near else ""
    shown = full_key if re.match(r"^[A-Za-z0-9_.:-]{1,100}\Z", full_key) else _fmt_value(full_key)
    return f"{shown}: unknown key{hint}; allowed: {', '.join(sorted(TOP_LEVEL_KEYS))}"


def parse_settings(
    raw: Mapping[str, str], stack: str, secure_keys: Collection[str] | None = None
) -> StackSettings | HomelabStackSettings:
    """Validate the stack's config (``namespace:key`` → string) into ``StackSettings``.

    ``secure_keys``: the full keys that are Pulumi secrets (the engine's list); when given, a secret
    key given in plain text is refused."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    secrets: dict[str, Secret] = {}
    prefix = NAMESPACE + ":"
    plain = (lambda k: False) if secure_keys is None else (lambda k: k not in secure_keys)
    for full_key, text in raw.items():
        if full_key in PROVIDER_SECRETS and text and plain(full_key):
            problems.append(
                f"{full_key}: is stored in plain text in the stack file; remove it and run: pulumi config set "
                f"--secret {full_key} <value> -s {stack} (or export {PROVIDER_SECRETS[full_key]} instead)"
            )
        if not full_key.startswith(prefix):
            continue  # other namespaces (digitalocean:region, ...) belong to providers
        key = full_key[len(prefix):]
        if key in SECRET_KEYS:
            if text and plain(full_key):
                problems.append(
                    f"{full_key}: is stored in plain text in the stack file; a secret must be a Pulumi secret: "
                    f"remove it and run: pulumi config set --secret {key} <value> -s {stack}"
                )
            elif text:
                secrets[key] = Secret(text)
            continue
        if key not in TOP_LEVEL_KEYS:
            problems.append(_unknown_key(full_key, key))
            continue
        values[key] = _decode(text)
    if problems:
        raise SettingsError(problems)

    if "homelab" in values:
        extra = sorted(set(values) - HOMELAB_KEYS)
        if extra:
            raise SettingsError(
                [f"{NAMESPACE}:{k}: not a homelab key; a homelab stack takes only {', '.join(sorted(HOMELAB_KEYS))}"
                 for k in extra]
            )
        try:
            return HomelabStackSettings.model_validate({**values, "stack": stack})
        except ValidationError as exc:
            raise SettingsError(_format_errors(exc, HomelabStackSettings)) from None

    phase = values.get("phase")
    if phase not in PHASES:
        allowed = ", ".join(map(str, PHASES))
        raise SettingsError(
            [f"{NAMESPACE}:phase = {_fmt_value(phase)}: must be one of {allowed}" if phase is not None
             else f"{NAMESPACE}:phase: required key is missing (one of {allowed})"]
        )
    merged = apply_preset(int(phase), values)
    try:
        settings = StackSettings.model_validate({**merged, "stack": stack, "secrets": secrets})
    except ValidationError as exc:
        raise SettingsError([line.replace("scripts/pin ollama STACK ", f"scripts/pin ollama {stack} ")
                             for line in _format_errors(exc)]) from None
    from components import readiness

    not_ready = readiness.problems(settings)
    if not_ready:
        raise SettingsError(not_ready)

    unsafe = [s.key for s in SECRET_SPECS if s.roles and s.key in secrets and settings.host_enabled
              and not HOST_SECRET.fullmatch(secrets[s.key].reveal())]
    if unsafe:
        raise SettingsError([f"{NAMESPACE}:{k}: the secret ({len(secrets[k].reveal())} characters) {HOST_SECRET_RULE}"
                             for k in unsafe])
    missing = [s for s in settings.required_secrets() if s.key not in secrets]
    if missing:
        raise SettingsError(
            [
                f"{NAMESPACE}:{s.key}: required secret is missing ({s.description}); "
                f"set it with: {s.set_with.format(stack=stack) or f'pulumi config set --secret {s.key} <value> -s {stack}'}"
                for s in missing
            ]
        )
    if settings.host_enabled and "hostSshKey" in secrets:
        from components import hostkeys

        try:
            hostkeys.check(secrets["hostSshKey"].reveal())
        except hostkeys.BadHostKey as exc:
            raise SettingsError([f"{NAMESPACE}:hostSshKey: the secret is {exc}; make one with: scripts/host-keys "
                                 f"{stack} --rotate"]) from None
    return settings


def load() -> StackSettings | HomelabStackSettings:
    """Read and validate the current stack's config from the Pulumi runtime (once per program run):
    the CLI's ``PULUMI_CONFIG`` environment, overlaid with what ``set_all_config`` set (an Automation
    API inline program, Pulumi's mock tests). Secret keys likewise; where the runtime marks none at
    all (an engine that does not say), the plain-text-secret check is left out rather than refusing
    every secret."""
    import os

    import pulumi
    from pulumi.runtime import config as rc

    raw = {**rc.get_config_env(), **rc.CONFIG.get()}
    marked = "PULUMI_CONFIG_SECRET_KEYS" in os.environ or any(rc.is_config_secret(k) for k in raw)
    secure = set(rc.get_config_secret_keys_env()) | {k for k in raw if rc.is_config_secret(k)}
    return parse_settings(raw, pulumi.get_stack(), secure_keys=secure if marked else None)
