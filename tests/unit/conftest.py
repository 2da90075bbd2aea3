"""Shared fixtures: each real stack file is run once per session under Pulumi's mock engine."""

from __future__ import annotations

import copy
import functools
import json
import shutil
from pathlib import Path

import pytest

from components import NAMESPACE, offline, stackfile

ALL_STACKS = stackfile.stack_names()


def by_type(plan: offline.Plan, type_: str) -> list[offline.Resource]:
    """The plan's resources of one type, in registration order."""
    return [r for r in plan.resources if r.type == type_]


def one(plan: offline.Plan, type_: str) -> offline.Resource:
    """The plan's one resource of ``type_`` (fails when there are none or several)."""
    [found] = by_type(plan, type_)
    return found


# The platform stacks (App Platform + model host); the homelab stack has its own tests.
STACKS = [
    s for s in ALL_STACKS if "llm-platform:homelab" not in (stackfile.STACKS_DIR / f"Pulumi.{s}.yaml").read_text()
]

# Stack files carry no Ollama checksum until an operator runs `scripts/pin ollama STACK VERSION`
# against the real release, and example values (documentation-range admin CIDRs, a placeholder SSH
# key) until the environment's own are filled in: their plans fail on purpose (test_upstream.py,
# test_readiness.py). Tests that plan such a stack fill in these stand-ins instead, as an operator
# would (`scripts/pin` writes the pin as VERSION@SHA256), and mark its host verified (the phase 2
# gateway points at the host): the tests are about what the program makes of a ready stack.
TEST_OLLAMA_SHA256 = "5e" * 32
TEST_ADMIN_CIDR = "10.20.0.0/16"


def test_ssh_key(comment: str = "oncall@test") -> str:
    """A well-formed ed25519 public key that is no placeholder."""
    import base64
    import struct

    blob = b"".join(struct.pack(">I", len(p)) + p for p in (b"ssh-ed25519", bytes(range(32))))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


test_ssh_key.__test__ = False  # a helper, not a test


def pin_overrides(stack: str) -> dict:
    """{"host": ..., "hostVerified": ...}: the stack file's host with its pin, admin CIDRs, SSH keys
    and verification filled in where they hold example values; {} for a stack without a host block."""
    from components import readiness, upstream

    doc = stackfile.load_stack_file(stackfile.STACKS_DIR / f"Pulumi.{stack}.yaml")
    host = doc.get(f"{NAMESPACE}:host")
    if not isinstance(host, dict):
        return {}
    host = copy.deepcopy(host)
    ollama = host.setdefault("ollama", {})
    if not ollama.get("sha256"):
        ollama["sha256"] = f"{ollama.get('version') or upstream.OLLAMA_VERSION}@{TEST_OLLAMA_SHA256}"
    cidrs = host.get("adminCidrs") or []
    doc_cidrs = readiness.documentation_cidrs(cidrs)
    if doc_cidrs:
        host["adminCidrs"] = [c for c in cidrs if c not in doc_cidrs] + [TEST_ADMIN_CIDR]
    keys = host.get("sshPublicKeys") or []
    if readiness.placeholder_keys(keys):
        host["sshPublicKeys"] = [k for k in keys if k not in readiness.placeholder_keys(keys)] + [test_ssh_key()]
    out = {"host": json.dumps(host)}
    if f"{NAMESPACE}:hostVerified" not in doc and host.get("domain"):
        out["hostVerified"] = host["domain"]
    return out


@pytest.fixture(scope="session")
def pinned_stacks(tmp_path_factory) -> Path:
    """A copy of stacks/ with every unpinned host stack pinned to TEST_OLLAMA_SHA256 by the real
    `scripts/pin` writer (for the tests that run scripts/plan on whole stack files)."""
    from components import upstream
    from operate.pin import write_pin

    d = tmp_path_factory.mktemp("stacks")
    for f in sorted(stackfile.STACKS_DIR.glob("Pulumi.*.yaml")):
        shutil.copy(f, d / f.name)
        host = stackfile.load_stack_file(f).get(f"{NAMESPACE}:host")
        ready = pin_overrides(f.name[len("Pulumi.") : -len(".yaml")])
        if ready:
            version = str((host.get("ollama") or {}).get("version") or upstream.OLLAMA_VERSION)
            write_pin(d / f.name, version, TEST_OLLAMA_SHA256)
            ready_host = json.loads(ready["host"])
            text = (d / f.name).read_text()
            for cidr in host.get("adminCidrs") or []:
                if cidr not in ready_host["adminCidrs"]:
                    text = text.replace(f"[{cidr}]", f"[{TEST_ADMIN_CIDR}]")
            for key in host.get("sshPublicKeys") or []:
                if key not in ready_host["sshPublicKeys"]:
                    text = text.replace(key, test_ssh_key())
            if "hostVerified" in ready:
                text = text.replace(
                    "\nconfig:\n", f"\nconfig:\n  llm-platform:hostVerified: {ready['hostVerified']}\n", 1
                )
            (d / f.name).write_text(text)
    return d


def automation_config(stack: str, overrides: dict | None = None, secrets: dict | None = None) -> dict:
    """What the Automation API's ``get_all_config`` returns for the ready fixture of ``stack``:
    ``{"ns:key": ConfigValue-like}`` (placeholder secrets unless ``secrets`` gives values)."""
    from types import SimpleNamespace

    raw, secure = stackfile.read_stack_file(stack, {**pin_overrides(stack), **(overrides or {})})
    from components.secrets import SECRET_SPECS

    never = {f"{NAMESPACE}:{s.key}" for s in SECRET_SPECS if s.required == "never"}  # a rotation's, not set
    out = {k: SimpleNamespace(value=v, secret=k in secure) for k, v in raw.items() if k not in never}
    for k, v in (secrets or {}).items():
        out[f"{NAMESPACE}:{k}"] = SimpleNamespace(value=v, secret=True)
    return out


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
