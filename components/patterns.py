"""What a value from a stack file may look like: one anchored, bounded pattern per kind of value, and
the ``check_*`` validators built on them (a ``ValueError`` with a one-line reason, never the whole
value). The settings models, the host data and the operator commands all check with these, so a
value the plan accepts is one the deploy accepts.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

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
EMAIL = re.compile(
    r"^(?=.{1,254}\Z)[A-Za-z0-9._%+-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\Z"
)
SSH_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) "
    r"([A-Za-z0-9+/]+={0,2})( [ -~]*)?\Z"
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
OLLAMA_MODEL = re.compile(
    r"^(?=.{1,200}\Z)[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*){0,2}(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?\Z"
)
# Go duration (Ollama's OLLAMA_KEEP_ALIVE) or plain seconds; negative = forever.
DURATION = re.compile(r"^-?([0-9]{1,12}|([0-9]{1,12}(\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,6})\Z")
POSIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")
# A release version (Ollama's; scripts/pin takes the same; an Ollama pin carries one, and
# upstream.version_tuple reads a tag by it).
RELEASE_VERSION_TEXT = r"[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}"
RELEASE_VERSION = re.compile(rf"^{RELEASE_VERSION_TEXT}\Z")
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
MIN_RSA_BITS = 2048


def match(pattern: re.Pattern, v: str, what: str) -> str:
    if not isinstance(v, str) or not pattern.match(v):
        raise ValueError(f"must be {what}")
    return v


def _ssh_key_problem(kind: str, b64: str) -> str | None:
    """Why ``kind b64`` is not a usable public key, or None: cryptography's OpenSSH reader refuses bad
    base64, a truncated key, trailing data and a key of another type than ``kind``."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        key = load_ssh_public_key(f"{kind} {b64}".encode())
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"its key is not a valid {kind} key ({' '.join(str(exc).split())[:80] or type(exc).__name__})"
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return f"RSA keys need at least {MIN_RSA_BITS} bits (this one has {key.key_size})"
    return None


# Account names a host already has or that the roles create: the admin user must be none of them
# (it becomes a passwordless sudoer; the roles would rewrite a service account's shell). Debian 12's
# base-passwd static users, the accounts its packages on the host create, and the roles' own.
RESERVED_USERS = frozenset(
    {
        "root",
        "daemon",
        "bin",
        "sys",
        "sync",
        "games",
        "man",
        "lp",
        "mail",
        "news",
        "uucp",
        "proxy",
        "www-data",
        "backup",
        "list",
        "irc",
        "gnats",
        "nobody",
        "messagebus",
        "sshd",
        "polkitd",
        "tss",
        "statd",
        "dnsmasq",
        "nginx",
        "ollama",
        "docker",
        "fail2ban",
        "sysstat",
        "tcpdump",
        "usbmux",
        "avahi",
        "uuidd",
        "ntp",
        "lxd",
        "admin",
        "ubuntu",
        "debian",
        "cloud-user",
        "postfix",
        "prometheus",
        "nvidia-persistenced",
    }
)
# Characters a CIDR may hold: anything else (an IPv6 scope id after '%', spaces, '$', newlines) is
# refused before ipaddress sees it. ipaddress accepts "fe80::1%<anything>" as one address.
CIDR_CHARS = re.compile(r"^[0-9A-Fa-f.:/]{3,49}\Z")


def check_ollama_models(v: list[str]) -> list[str]:
    """Ollama model names, each once, at most MAX_OLLAMA_MODELS."""
    if len(v) > MAX_OLLAMA_MODELS:
        raise ValueError(f"lists {len(v)} models; at most {MAX_OLLAMA_MODELS} (each is pulled onto the host's disk)")
    for m in v:
        if not isinstance(m, str) or not OLLAMA_MODEL.match(m):
            raise ValueError(f"{fmt_value(m)} is not an Ollama model name like llama3.2:3b (at most 200 characters)")
    twice = sorted({m for m in v if v.count(m) > 1})
    if twice:
        raise ValueError(f"lists {', '.join(map(fmt_value, twice))} more than once")
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
        shown = fmt_value(c)
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
            raise ValueError(
                f"{fmt_value(str(k)[:24])}... is not an OpenSSH public key (ssh-ed25519/ssh-rsa/ecdsa-...) on one line"
            )
        why = _ssh_key_problem(m.group(1), m.group(3))
        if why:
            raise ValueError(f"{fmt_value(k[:24])}... is not a usable OpenSSH public key: {why}")
    return [k.strip() for k in v]


def check_acme_email(v: str) -> str:
    if isinstance(v, str) and v.startswith("-"):
        raise ValueError("must not start with '-' (certbot would read it as an option)")
    return match(EMAIL, v, "an e-mail address (Let's Encrypt account)")


def check_acme_directory(v: str) -> str:
    return match(ACME_URL, v, "an https:// ACME directory URL")


# An artifact source or proxy URL (it reaches curl and apt's config): no spaces, quotes or controls.
URL = re.compile(r"^(?=.{1,2048}\Z)https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+:@=-]*)?\Z")


def check_url(v: str, what: str) -> str:
    return match(URL, v, what)


def check_dns_name(v: str) -> str:
    if not isinstance(v, str) or not HOSTNAME.match(v):
        raise ValueError("must be a DNS name like app.example.com")
    return v


def check_github_repo(v: str) -> str:
    if not GITHUB_REPO.match(v):
        raise ValueError("must be 'owner/repo'")
    return v


def check_optional_dns_name(v: str | None) -> str | None:
    return v if v is None else check_dns_name(v)


def check_pinned_tag(v: str) -> str:
    if not isinstance(v, str) or v.lower() == "latest":
        raise ValueError("pin a release tag (e.g. v0.11.0), not 'latest'")
    return match(IMAGE_TAG, v, "an image tag (letters, digits, '_', '.', '-'; at most 128)")


def check_image_repo(v: str | None) -> str | None:
    if v is None:
        return v
    return match(IMAGE_REPO, v, "an image repository like vllm/vllm-openai or registry.example.com/team/image")


def fmt_value(v: Any) -> str:
    """A value as one-line errors show it: its repr, cut at 80 characters."""
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."
