"""Is a stack ready to create its model host? What the plan refuses, and what it only tells.

Refused (one line each, all at once, by ``scripts/plan`` and by ``pulumi up``), for a stack that
creates a host:

- no Ollama pin (``host.ollama.sha256``), or a pin without its version (``VERSION@HEX``, one pin);
- a documentation-range CIDR in ``host.adminCidrs`` (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
  2001:db8::/32): nobody's network, SSH would be open to no one (or to whoever gets that range);
- a placeholder SSH key (a comment naming ``placeholder``, or the committed example key).

Told, not refused (``notes``): a public name with no DNS record managed by the stack (certbot's
HTTP-01 challenge needs the name to resolve to the host before the first converge), and a gateway
still waiting for its host to be verified (the phase 1 → 2 two-step: ``hostVerified``).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from components import NAMESPACE

if TYPE_CHECKING:
    from components.host_settings import HostSettings
    from components.settings import StackSettings

DOC_NETS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
# The example key the committed stack files carry (its comment says so; this catches it without one).
PLACEHOLDER_KEY_BLOBS = frozenset({"AAAAC3NzaC1lZDI1NTE5AAAAIKNXZkuqr3ycQOXhmecRO3BvW+SSOXMKrjO92cFtYYpq"})
HOST_PROVIDERS = ("vllm", "ollama")


def documentation_cidrs(cidrs: list[str]) -> list[str]:
    """The CIDRs inside a documentation range (RFC 5737, RFC 3849)."""
    out = []
    for c in cidrs:
        net = ipaddress.ip_network(c, strict=False)
        if any(net.version == d.version and net.subnet_of(d) for d in DOC_NETS):
            out.append(c)
    return out


def placeholder_keys(keys: list[str]) -> list[str]:
    """The SSH keys that are placeholders: a comment naming 'placeholder', or the example key."""
    out = []
    for k in keys:
        parts = k.split(None, 2)
        comment = parts[2] if len(parts) > 2 else ""
        if "placeholder" in comment.lower() or (len(parts) > 1 and parts[1] in PLACEHOLDER_KEY_BLOBS):
            out.append(k)
    return out


def _short_key(k: str) -> str:
    parts = k.split(None, 2)
    tail = f" {parts[2]}" if len(parts) > 2 else ""
    return f"{parts[0]} ...{parts[1][-8:]}{tail}"[:80] if len(parts) > 1 else k[:40]


def problems(settings: StackSettings) -> list[str]:
    """What stops the stack from creating its host, one line each (empty: ready, or no host)."""
    if not settings.host_enabled or settings.host is None:
        return []
    from components import ollama_release, upstream

    host, stack, out = settings.host, settings.stack, []
    o = host.ollama
    if not o.sha256:
        out.append(
            f"{NAMESPACE}:host.ollama.sha256: required: the sha256 of {ollama_release.ollama_archive(o.version)} "
            f"of Ollama {o.version}, from the release's {upstream.OLLAMA_CHECKSUMS}; "
            f"pin it with: scripts/pin ollama {stack} {o.version}"
        )
    elif o.pinned_version is None:
        out.append(
            f"{NAMESPACE}:host.ollama.sha256: carries no version: the pin is VERSION@SHA256 so that the version and "
            f"its checksum change together; rewrite it with: scripts/pin ollama {stack} {o.version}"
        )
    doc = documentation_cidrs(host.admin_cidrs)
    if doc:
        out.append(
            f"{NAMESPACE}:host.adminCidrs: {', '.join(doc)} is a documentation range (example value), not a network "
            "of yours; list the office/VPN ranges that may SSH to the host"
        )
    ph = placeholder_keys(host.ssh_public_keys)
    if ph:
        out.append(
            f"{NAMESPACE}:host.sshPublicKeys: {', '.join(map(_short_key, ph))} is a placeholder; list the on-call "
            "engineers' public keys"
        )
    return out


def host_verified(settings: StackSettings) -> bool:
    """Whether the converge+verify step recorded this stack's host as verified (``hostVerified``
    names the host's domain: a new domain needs a new verification)."""
    return bool(settings.host_enabled and settings.host is not None and settings.host_verified == settings.host.domain)


def gateway_provider(settings: StackSettings) -> str:
    """Where the ``llm`` gateway calls: the configured provider, but Hugging Face while a model host
    has not been converged and verified yet (no outage while the host comes up)."""
    p = settings.app.llm.provider
    if p in HOST_PROVIDERS and not host_verified(settings):
        return "huggingface"
    return p


def dns_note(host: HostSettings, stack: str) -> str | None:
    """What is needed for certbot when the stack manages no DNS record for the host's name."""
    if host.dns_zone:
        return None
    who = (
        "your DNS provider (Hetzner hosts get no record from this project)"
        if host.provider == "hetzner"
        else "your DNS provider, or set host.dnsZone to a zone DigitalOcean manages and pulumi up makes it"
    )
    return (
        f"DNS: no record for {host.domain} is managed by this stack: before the first converge, create an A record "
        f"{host.domain} -> the host_ip output (pulumi stack output host_ip -s {stack}) at {who}; certbot's HTTP-01 "
        f"challenge reaches the host by that name on port 80"
    )


def notes(settings: StackSettings) -> list[str]:
    """What the plan tells (not refuses) for a stack with a host."""
    if not settings.host_enabled or settings.host is None:
        return []
    out = []
    dns = dns_note(settings.host, settings.stack)
    if dns:
        out.append(dns)
    p = settings.app.llm.provider
    if p in HOST_PROVIDERS and not host_verified(settings):
        was = f" (it names {settings.host_verified!r}, not {settings.host.domain!r})" if settings.host_verified else ""
        out.append(
            f"gateway: stays on huggingface until the host is verified{was}: after pulumi up, run "
            f"scripts/converge {settings.stack} --verify (it sets llm-platform:hostVerified), then pulumi up -s "
            f"{settings.stack} moves the gateway to {p}"
        )
    return out
