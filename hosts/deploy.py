"""The host layer's entry point: configures a model host from its inventory data.

    pyinfra INVENTORY hosts/deploy.py            # apply
    pyinfra INVENTORY hosts/deploy.py --dry      # what would change

INVENTORY is ``hosts/inventory.py`` (a stack's ``inventory`` output, see that file) or the local test
host's generated inventory. The roles (``components.roles``: names and order) are
``hosts/roles/<name>.py``; each host runs the ones its data lists, in that order.
"""

import importlib

from pyinfra import host, state

from components import hostdata, roles
from hosts import dryplan, factcache

factcache.install(host, state)  # each fact read once per run, the last run's in one command
data = hostdata.from_host(host)
for name in roles.NAMES:
    if name in data.roles:
        importlib.import_module(f"hosts.roles.{name}").apply(data)

dryplan.write(state, host)  # only for scripts/drift's dry run (LLM_PLATFORM_DRY_PLAN_DIR)
