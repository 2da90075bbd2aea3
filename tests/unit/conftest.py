"""Shared fixtures: each real stack file is run once per session under Pulumi's mock engine."""

from __future__ import annotations

import copy
import functools
import json
import shutil
from pathlib import Path

import pytest

from components import offline

ALL_STACKS = offline.stack_names()
# The platform stacks (App Platform + model host); the homelab stack has its own tests.
STACKS = [s for s in ALL_STACKS if "llm-platform:homelab" not in (offline.STACKS_DIR / f"Pulumi.{s}.yaml").read_text()]

# Stack files carry no Ollama checksum until an operator runs `scripts/pin ollama STACK VERSION`
# against the real release (their plans then fail on purpose: test_upstream.py). Tests that plan such
# a stack pin this stand-in value instead, as `scripts/pin` would write it.
TEST_OLLAMA_SHA256 = "5e" * 32


def pin_overrides(stack: str) -> dict:
    """{"host": ...} with host.ollama.sha256 set, when the stack file's host has none; else {}."""
    doc = offline.load_stack_file(offline.STACKS_DIR / f"Pulumi.{stack}.yaml")
    host = doc.get(f"{offline.NAMESPACE}:host")
    if not isinstance(host, dict) or (host.get("ollama") or {}).get("sha256"):
        return {}
    host = copy.deepcopy(host)
    host.setdefault("ollama", {})["sha256"] = TEST_OLLAMA_SHA256
    return {"host": json.dumps(host)}


@pytest.fixture(scope="session")
def pinned_stacks(tmp_path_factory) -> Path:
    """A copy of stacks/ with every unpinned host stack pinned to TEST_OLLAMA_SHA256 by the real
    `scripts/pin` writer (for the tests that run scripts/plan on whole stack files)."""
    from components import upstream
    from operate.pin import write_pin

    d = tmp_path_factory.mktemp("stacks")
    for f in sorted(offline.STACKS_DIR.glob("Pulumi.*.yaml")):
        shutil.copy(f, d / f.name)
        host = offline.load_stack_file(f).get(f"{offline.NAMESPACE}:host")
        if pin_overrides(f.name[len("Pulumi."):-len(".yaml")]):
            version = str((host.get("ollama") or {}).get("version") or upstream.OLLAMA_VERSION)
            write_pin(d / f.name, version, TEST_OLLAMA_SHA256)
    return d


@functools.lru_cache(maxsize=None)
def plan_for(stack: str, overrides: tuple = ()) -> offline.Plan:
    return offline.run(stack, {**pin_overrides(stack), **dict(overrides)})


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
