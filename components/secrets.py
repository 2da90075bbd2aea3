"""The secrets a stack holds, declared once: which exist, who needs them, when the stack must hold
them (``SECRET_SPECS``), and ``Secret``, the wrapper that keeps a value out of every repr, error and
output. The settings require them, the components turn them into Pulumi secrets, the host layer
fetches the ones its roles read; a value itself never appears in a stack file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SecretSpec:
    """One secret: where it is needed and when the stack must hold it.

    ``required``: "always", "host" (a stack with a model host), "llamafactory" (a host with
    LLaMA-Factory) or "never" (set only while something is under way, e.g. a key rotation).
    ``env``/``services``: its SECRET env name and the App Platform services that get
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
    SecretSpec(
        "huggingfaceApiKey",
        "Hugging Face token (serverless inference, model downloads)",
        "always",
        env="HUGGINGFACE_API_KEY",
        services=("llm",),
        roles=("vllm", "llamafactory"),
        host_optional=True,
    ),
    SecretSpec(
        "langfusePublicKey", "Langfuse public key (tracing)", "always", env="LANGFUSE_PUBLIC_KEY", services=("llm",)
    ),
    SecretSpec(
        "langfuseSecretKey", "Langfuse secret key (tracing)", "always", env="LANGFUSE_SECRET_KEY", services=("llm",)
    ),
    SecretSpec(
        "openaiApiKey", "GPT-4o fallback key of ai-service", "always", env="OPENAI_API_KEY", services=("ai-service",)
    ),
    SecretSpec(
        "vllmApiKey",
        "bearer key of the model host's /v1 API (phase 2), enforced by nginx",
        "host",
        env="VLLM_API_KEY",
        services=("llm",),
        roles=("proxy",),
    ),
    # scripts/rotate-key: the key being replaced, accepted by nginx beside vllmApiKey until App
    # Platform runs with the new one; removed when the rotation ends.
    SecretSpec(
        "vllmApiKeyPrevious",
        "the /v1 key being rotated out (set by scripts/rotate-key only)",
        "never",
        roles=("proxy",),
        host_optional=True,
    ),
    # vLLM's own --api-key: host-local (nginx sends it to vLLM on loopback), never on App Platform
    # and never rotated with vllmApiKey, so a rotation does not restart vLLM.
    SecretSpec(
        "vllmLocalKey", "vLLM's own --api-key, between nginx and vLLM on the host only", "host", roles=("vllm", "proxy")
    ),
    SecretSpec(
        "llamafactoryApiKey",
        "bearer key of LLaMA-Factory's API on the model host",
        "llamafactory",
        roles=("llamafactory",),
    ),
    SecretSpec(
        "llamafactoryUiPassword",
        "basic-auth password of the LLaMA-Factory web UI",
        "llamafactory",
        roles=("llamafactory",),
    ),
    SecretSpec(
        "hostSshKey",
        "the model host's SSH host key (ed25519, OpenSSH format; the same on every rebuild)",
        "host",
        set_with="scripts/host-keys {stack}",
    ),
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
