"""The host roles: the one list of their names, order and when each applies.

The cloud layer picks a host's roles from it (``HostSettings.roles``), the deploy applies
``hosts/roles/<name>.py`` in this order for the roles the host's data lists, the local test host
takes the CPU selection, and the host data model accepts only these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

When = Literal["always", "gpu", "llamafactory"]


@dataclass(frozen=True)
class Role:
    name: str
    when: When  # always; only on GPU hosts; only where LLaMA-Factory is enabled
    what: str
    units: tuple[str, ...] = ()  # the systemd units it keeps running and enabled


ROLES: tuple[Role, ...] = (
    Role(
        "base",
        "always",
        "admin user, sshd, upgrades, kernel/login hardening, auditd, fail2ban",
        (
            "auditd",
            "sysstat",
            "acct",
            "fail2ban",
            "apparmor",
            "chkrootkit.timer",
            "unattended-upgrades",
            "systemd-timesyncd",
        ),
    ),
    Role("firewall", "always", "ufw from the catalogue's inbound rules"),
    Role("volume", "always", "the data volume mounted at /data and its directories"),
    Role("docker", "always", "Docker from Debian, loopback-only publishing", ("llm-loopback-guard", "docker")),
    Role("nvidia", "gpu", "driver and container toolkit"),
    Role("ollama", "always", "Ollama release, systemd unit, models", ("ollama",)),
    Role("vllm", "always", "vLLM OpenAI-compatible server container", ("llm-vllm",)),
    Role("llamafactory", "llamafactory", "LLaMA-Factory web UI and API containers", ("llm-llamafactory",)),
    Role(
        "proxy",
        "always",
        "nginx with TLS (certbot), the only public entry",
        ("prometheus-node-exporter", "nginx", "certbot.timer"),
    ),
)
NAMES: tuple[str, ...] = tuple(r.name for r in ROLES)
RoleName = Literal[NAMES]  # type: ignore[valid-type]


def units(names: list[str]) -> list[str]:
    """The systemd units the given roles keep running, as systemd names them (``.service`` added)."""
    return [u if "." in u else f"{u}.service" for r in ROLES if r.name in names for u in r.units]


def select(gpu: bool, llamafactory: bool) -> list[str]:
    """The roles of a host, in deploy order."""
    wanted = {"always": True, "gpu": gpu, "llamafactory": llamafactory}
    return [r.name for r in ROLES if wanted[r.when]]
