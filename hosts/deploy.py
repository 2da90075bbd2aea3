"""The host layer's entry point: configures a model host from its inventory data.

    pyinfra INVENTORY hosts/deploy.py            # apply
    pyinfra INVENTORY hosts/deploy.py --dry      # what would change

INVENTORY is ``hosts/inventory.py`` (a stack's ``inventory`` output, see that file) or the local test
host's generated inventory. Roles run in a fixed order; each host runs the roles its data lists.
"""

from pyinfra import host, state

from hosts import dryplan, hostdata
from hosts.roles import base, data, docker, firewall, llamafactory, nvidia, ollama, proxy, vllm

ORDER = [
    ("base", base), ("firewall", firewall), ("data", data), ("docker", docker), ("nvidia", nvidia),
    ("ollama", ollama), ("vllm", vllm), ("llamafactory", llamafactory), ("proxy", proxy),
]

settings = hostdata.from_host(host)
for role, module in ORDER:
    if role in settings.roles:
        module.apply(settings)

dryplan.write(state, host)  # only for scripts/drift's dry run (LLM_PLATFORM_DRY_PLAN_DIR)
