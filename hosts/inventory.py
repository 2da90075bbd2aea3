"""pyinfra inventory of a stack's model hosts, from the cloud layer's ``inventory`` stack output.

    pulumi stack output inventory --json -s prod > inventory.prod.json
    LLM_PLATFORM_INVENTORY=inventory.prod.json pyinfra hosts/inventory.py hosts/deploy.py

(``scripts/converge STACK`` does both, and provides the secrets.) Hosts land in the group
``model_hosts``; each carries its data (roles and role settings) and connects as the admin user with
sudo, checking the host's SSH key strictly: against the key the stack pins (the output's ``host_key``,
written to the file ``LLM_PLATFORM_KNOWN_HOSTS`` names: ``operate.targets`` does both), else against
the operator's own known_hosts; never trusted on first use (pyinfra's default is ``accept-new``).
"""

from __future__ import annotations

import json
import os
from typing import Any


def hosts_from_output(doc: dict[str, Any], known_hosts_file: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for h in doc.get("hosts", []):
        data = dict(h["data"])
        data.update(
            ssh_hostname=h["ssh_hostname"], ssh_user=h["ssh_user"], _sudo=True, ssh_strict_host_key_checking="yes"
        )
        if h.get("host_key") and known_hosts_file:
            data["ssh_known_hosts_file"] = known_hosts_file
        out.append((h["name"], data))
    return out


_path = os.environ.get("LLM_PLATFORM_INVENTORY")
if _path:  # evaluated by pyinfra as an inventory file
    with open(_path) as fh:
        model_hosts = hosts_from_output(json.load(fh), os.environ.get("LLM_PLATFORM_KNOWN_HOSTS"))
