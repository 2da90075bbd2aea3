"""Where ``scripts/finetune`` runs its commands: one host of a resolved target (``operate.targets``),
reached through its ``operate.remote.Remote`` (as root through ``sudo -n``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from operate.remote import Remote, RemoteError

__all__ = ["Host", "RemoteError", "resolve"]


@dataclass
class Host:
    stack: str
    name: str
    remote: Remote
    roles: list[str]
    secrets: dict[str, str] = field(repr=False, default_factory=dict)
    local_state_dir: Path | None = None  # the local test host's state dir (its models are recorded there)

    @property
    def is_local(self) -> bool:
        return self.local_state_dir is not None

    def secret(self, key: str) -> str | None:
        from hosts.secret_values import env_name

        return os.environ.get(env_name(key)) or self.secrets.get(key) or None

    def cli_args(self) -> str:
        """How to name this host again on the command line."""
        return self.stack if self.is_local else f"{self.stack} {self.name}"


def resolve(stack: str, host: str | None, *, local_settings: Any = None) -> Host:
    """The host named by ``STACK [HOST]`` (``local`` = the local test host); one-line ``RemoteError``s."""
    from operate import cli, targets
    from operate.automation import Unavailable

    try:
        cli.resolve_stack(stack, local=True)
    except cli.UsageError as exc:
        raise RemoteError(str(exc)) from None
    try:
        target = targets.resolve(stack, local_settings=local_settings)
        h = target.host(host)
        remote = target.remote(h.name)
    except LookupError as exc:
        raise RemoteError(f"{exc}: nothing to fine-tune on" if not target.hosts else str(exc)) from None
    except Unavailable as exc:
        raise RemoteError(str(exc) if targets.is_local(stack) else f"stack {stack}: {exc}") from None
    state_dir = target.local.state_dir if target.is_local else None
    return Host(stack, h.name, remote, list(h.data.roles), target.secrets, state_dir)
