"""hosts/dryplan.plan against a real pyinfra state on ``@local`` (facts gathered on this machine; the
operations are only planned, nothing runs)."""

from __future__ import annotations

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.operation import add_op
from pyinfra.context import ctx_host, ctx_state
from pyinfra.operations import files, server

from hosts import dryplan


@pytest.mark.parametrize("check_for_changes", [True, False], ids=["dry-run", "yes"])
def test_plan_lists_the_operations_that_will_change(tmp_path, check_for_changes):
    """pyinfra's public OperationMeta.will_change: the change pyinfra found while adding the operation
    (a dry run, as scripts/drift runs it), or, where pyinfra skipped that check (``--yes``), the
    operation's own commands, asked for the host that deploy.py runs for."""
    inventory = Inventory((["@local"], {}))
    state = State(inventory, Config(), check_for_changes=check_for_changes)
    connect_all(state)
    add_op(state, server.shell, name="always", commands=["echo hi"])
    add_op(state, files.directory, name="already there", path=str(tmp_path))
    add_op(state, server.shell, name="guarded", commands=["echo guarded"], _if=lambda: True)
    host = inventory.get_host("@local")
    with ctx_state.use(state), ctx_host.use(host):
        assert dryplan.plan(state, host) == [{"name": "always", "commands": ["echo hi"], "diffs": []}]
