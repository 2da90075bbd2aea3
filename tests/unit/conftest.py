"""Shared fixtures: each real stack file is run once per session under Pulumi's mock engine."""

from __future__ import annotations

import functools

import pytest

from components import offline

ALL_STACKS = offline.stack_names()
# The platform stacks (App Platform + model host); the homelab stack has its own tests.
STACKS = [s for s in ALL_STACKS if "llm-platform:homelab" not in (offline.STACKS_DIR / f"Pulumi.{s}.yaml").read_text()]


@functools.lru_cache(maxsize=None)
def plan_for(stack: str, overrides: tuple = ()) -> offline.Plan:
    return offline.run(stack, dict(overrides))


def _explicit(metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if name in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return True
    return False


def pytest_generate_tests(metafunc):
    if "stack" in metafunc.fixturenames and not _explicit(metafunc, "stack"):
        metafunc.parametrize("stack", STACKS)
    if "host_stack" in metafunc.fixturenames:
        metafunc.parametrize("host_stack", [s for s in STACKS if plan_for(s).settings.host_enabled])


@pytest.fixture
def plan(stack) -> offline.Plan:
    return plan_for(stack)


@pytest.fixture
def host_plan(host_stack) -> offline.Plan:
    return plan_for(host_stack)


@pytest.fixture(autouse=True)
def _no_gevent_in_this_process():
    """Importing pyinfra_cli monkey-patches the process with gevent, after which Pulumi's mock engine
    deadlocks. Tests that need pyinfra's CLI must run it in a subprocess."""
    yield
    import sys

    assert "pyinfra_cli" not in sys.modules, "a test imported pyinfra_cli in-process; run it in a subprocess"
