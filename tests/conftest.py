"""Session-wide: the order of the tests and, under pytest-xdist, who runs which, and the integration
tests' stage lines printed by the controller (the integration fixtures are in
tests/integration/conftest.py). Here because pytest loads this file in every session, the
controller's included, whatever paths it is given."""

from __future__ import annotations

import os

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_PRINTED: dict[str, int] = {}  # controller: stage lines already printed, per test
_CONFIG: list = [None]
_CURRENT: list = [None]  # the item a worker runs now, whatever its directory


def pytest_configure(config):
    _CONFIG[0] = config


def pytest_runtest_setup(item):
    _CURRENT[0] = item


def carry_to_controller(line: str) -> None:
    """A worker's line for the terminal, on the report of the item running now (the hosts' last
    lines come while a unit test may be the one running: the session ends in its teardown)."""
    if _CURRENT[0] is not None:
        _CURRENT[0].user_properties.append(("integration", line))


def pytest_runtest_logreport(report):
    """Controller side of a worker's ``say``: print the stage lines that came with this report."""
    if WORKER or _CONFIG[0] is None:
        return
    lines = [v for k, v in getattr(report, "user_properties", ()) if k == "integration"]
    new = lines[_PRINTED.get(report.nodeid, 0) :]
    terminal = _CONFIG[0].pluginmanager.getplugin("terminalreporter")  # registered after this conftest
    if new and terminal is not None:
        _PRINTED[report.nodeid] = len(lines)
        terminal.write_line("")
        for line in new:
            terminal.write_line(line)


CHAINS = {  # the two chains, each one host's scenarios in the order they build on each other
    "host-a": ("test_localhost_vm.py", "test_host_layer.py", "test_rotate_key.py"),
    "host-b": ("test_volume_blank.py", "test_rebuild.py", "test_exposure.py", "test_finetune.py"),
}
ORDER = CHAINS["host-a"] + CHAINS["host-b"]


def chain_of(nodeid: str) -> str | None:
    """The chain of an integration test (``tests/integration/<file>::...``), None for any other
    (tests/unit has files of the same names)."""
    path = nodeid.split("::", 1)[0]
    folder, _, name = path.rpartition("/")
    if not folder.endswith("tests/integration"):
        return None
    return next((chain for chain, files in CHAINS.items() if name in files), None)


def pytest_collection_modifyitems(items):
    """Unit tests first, then host A's chain, then host B's (the order within a chain matters:
    each builds on the one before)."""

    def rank(item) -> int:  # this hook sees the whole session: everything else (unit tests) first
        name = item.path.name
        return ORDER.index(name) if item.path.parent.name == "integration" and name in ORDER else -1

    items.sort(key=rank)  # stable: file order within a module is kept


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup``: each chain is one unit of work (one worker runs it, in order), every
    other test its own (as ``--dist load``). pytest-xdist 3.8.0's own ``xdist_group`` marks have no
    effect under pytest 9.2 (xdist tags ``item._nodeid``; pytest 9 derives ``nodeid`` from
    ``item._id``), so the chains are read from the file names here."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ChainScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return chain_of(nodeid) or nodeid

    return ChainScheduling(config, log)
