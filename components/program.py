"""The Pulumi program: stack config → typed settings → components → stack outputs.

``stacks/__main__.py`` calls ``main()``. ``build(settings)`` is the part tests and the offline plan
run under Pulumi's mock engine.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components import cost, hostkeys
from components.app import LlmApp
from components.catalogue import LLM_INTERNAL_URL
from components.config import SettingsError, load
from components.hostdata import inventory
from components.model_host import ModelHost
from components.settings import HomelabStackSettings, StackSettings


def secret_inputs(settings: StackSettings) -> dict[str, pulumi.Output[str]]:
    """The stack's secrets as Pulumi secrets (encrypted in state, masked in output)."""
    return {k: pulumi.Output.secret(v.reveal()) for k, v in settings.secrets.items()}


def host_name(settings: StackSettings) -> str:
    return f"llm-{settings.stack}"


def known_hosts(host: ModelHost) -> pulumi.Output[str]:
    """The model host's known_hosts line (its fixed IP, its own host key): what SSH trusts, the same
    after every rebuild (``HOSTS_KNOWN_HOSTS`` in CI)."""
    return pulumi.Output.all(host.address, host.host_public_key).apply(lambda a: hostkeys.known_hosts_line(a[0], a[1]))


def build_homelab(settings: HomelabStackSettings) -> dict[str, Any]:
    from components.homelab import Homelab

    report = cost.guard(settings)
    lab = Homelab("homelab", settings)
    return {
        "ollama_url": lab.ollama_url,
        "n8n_url": lab.n8n_url,
        "models": list(settings.homelab.models),
        "inventory": {"hosts": []},
        "monthly_cost": report.total,
        "cost_breakdown": report.to_dict(),
    }


def build(settings: StackSettings | HomelabStackSettings) -> dict[str, Any]:
    """Create every resource of the stack and return its outputs (nothing here is secret)."""
    if isinstance(settings, HomelabStackSettings):
        return build_homelab(settings)
    report = cost.guard(settings)  # before any resource exists
    host = None
    secrets = secret_inputs(settings)
    if settings.host_enabled:
        assert settings.host is not None
        host = ModelHost(host_name(settings), settings.host, secrets["hostSshKey"])
    app = LlmApp("llm", settings, secrets, host.base_url if host else None)
    return {
        "phase": settings.phase,
        "app_url": app.live_url,
        "llm_internal_url": LLM_INTERNAL_URL,
        "env_layout": app.env_layout,
        "host_ip": host.address if host else None,
        "host_domain": settings.host.domain if host and settings.host else None,
        "host_base_url": host.base_url if host else None,
        "host_known_hosts": known_hosts(host) if host else None,
        "inventory": (
            inventory(host.host_name, host.address, settings.host, host.data_device, host.host_public_key)
            if host and settings.host
            else {"hosts": []}
        ),
        "monthly_cost": report.total,
        "cost_breakdown": report.to_dict(),
    }


def main() -> None:
    try:
        settings = load()
        outputs = build(settings)
    except (SettingsError, cost.BudgetExceeded, ValueError) as exc:
        # RunError: Pulumi prints the message without a Python traceback.
        raise pulumi.RunError(str(exc)) from None
    for key, value in outputs.items():
        pulumi.export(key, value)
