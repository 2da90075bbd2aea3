"""converge (pyinfra deploy) and verify (testinfra) against the running local test host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .access import secrets_file, testinfra_args
from .config import TestHostConfig
from .config import config as _config
from .util import LocalHostError, detail, log, which

DEPLOY = "hosts/deploy.py"
TESTS = "tests/hosts"


def _venv_bin(name: str) -> str:
    """Prefer the tool next to the running interpreter (the project venv), then PATH."""
    cand = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(cand, os.X_OK):
        return cand
    found = which(name)
    if not found:
        raise LocalHostError(f"{name} not found (is the project virtualenv active? run through scripts/local-host)")
    return found


def _env(s: TestHostConfig) -> dict:
    """Environment of pyinfra/pytest: the repo on PYTHONPATH, the local host's generated secrets
    (unless LLM_PLATFORM_SECRETS_FILE is already set) and its host data for tests/hosts."""
    env = dict(os.environ)
    env.setdefault("LLM_PLATFORM_SECRETS_FILE", str(secrets_file(s)))
    env.setdefault("LLM_PLATFORM_HOST_DATA", str(s.host_json))
    env["PYTHONPATH"] = str(s.repo_root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def parse_pyinfra_json(stdout: str) -> tuple[int, list[str], int]:
    """(changed count, names of changed operations, error count) from ``pyinfra -y --json`` output.

    ``results.operations[*].success`` lists the hosts on which the operation changed something,
    ``no_change`` those where it didn't; ``results.totals.success`` is the changed count."""
    decoder = json.JSONDecoder()
    payload = None
    # The JSON document is the last top-level object that starts a line on stdout.
    starts = [i for i in range(len(stdout)) if stdout[i] == "{" and (i == 0 or stdout[i - 1] == "\n")]
    for i in reversed(starts):
        try:
            obj, _ = decoder.raw_decode(stdout, i)
        except ValueError:
            continue
        if isinstance(obj, dict) and "results" in obj:
            payload = obj
            break
    if payload is None:
        raise LocalHostError("could not find pyinfra's JSON document in its output")
    results = payload.get("results")
    if not results:
        raise LocalHostError("pyinfra JSON has no results (was it a dry run?)")
    names = [op.get("name") or ",".join(op.get("names", [])) for op in results["operations"] if op.get("success")]
    totals = results.get("totals", {})
    return int(totals.get("success", len(names))), names, int(totals.get("error", 0))


def operation_count(stdout: str) -> int:
    """How many operations the run had (``results.totals.hosts``: one per operation and host)."""
    start = stdout.rfind("\n{")
    try:
        doc = __import__("json").loads(stdout[start + 1 :] if start >= 0 else stdout)
        return int(doc["results"]["totals"].get("hosts", len(doc["results"]["operations"])))
    except (ValueError, KeyError, TypeError):
        return 0


def pyinfra_argv(s: TestHostConfig, extra_args: list[str] | None = None) -> list[str]:
    """``pyinfra <inventory> hosts/deploy.py -y [extra_args]`` for the guest (run it in the repo
    root with ``_env(s)``). Raises LocalHostError if the deploy or the inventory is missing."""
    if not (s.repo_root / DEPLOY).is_file():
        raise LocalHostError(f"{DEPLOY} does not exist yet: nothing to converge (the VM is up; try `ssh`/`verify`)")
    if not s.inventory.is_file():
        raise LocalHostError(f"no inventory at {s.inventory}: run `scripts/local-host up` first")
    return [_venv_bin("pyinfra"), str(s.inventory), DEPLOY, "-y", *(extra_args or [])]


def converge(
    json: bool = True,
    s: TestHostConfig | None = None,
    *,
    extra_args: list[str] | None = None,
    stats: dict | None = None,
) -> tuple[int, list[str]]:
    """Run ``pyinfra <inventory> hosts/deploy.py -y`` against the guest.

    With ``json=True`` (default) adds ``--json`` and returns (changed_count, changed_operation_names);
    otherwise streams pyinfra's normal output and returns (-1, []). ``stats``, when given, gets the
    number of ``operations`` (JSON mode). Raises LocalHostError if the deploy is missing or pyinfra fails."""
    s = s or _config()
    argv = pyinfra_argv(s, extra_args)
    if json:
        argv.append("--json")
    log(f"converge: {' '.join(argv[1:])}")
    t0 = time.monotonic()
    if json:
        proc = subprocess.run(argv, cwd=s.repo_root, env=_env(s), stdout=subprocess.PIPE, text=True)
    else:
        proc = subprocess.run(argv, cwd=s.repo_root, env=_env(s))
    dt = time.monotonic() - t0
    if proc.returncode != 0:
        raise LocalHostError(f"pyinfra failed (exit {proc.returncode}) after {dt:.1f}s")
    if not json:
        detail(f"converge: done in {dt:.1f}s")
        return -1, []
    changed, names, errors = parse_pyinfra_json(proc.stdout)
    if stats is not None:
        stats["operations"] = operation_count(proc.stdout)
    if errors:
        raise LocalHostError(f"pyinfra reported {errors} failed operation(s)")
    detail(f"converge: {changed} operation(s) changed in {dt:.1f}s" + (f": {', '.join(names)}" if names else ""))
    return changed, names


def verify(s: TestHostConfig | None = None, extra_args: list[str] | None = None) -> int:
    """Run testinfra (tests/hosts) against the guest; returns pytest's exit code."""
    s = s or _config()
    tests = s.repo_root / TESTS
    if not tests.is_dir():
        raise LocalHostError(f"{TESTS}/ does not exist yet: nothing to verify")
    if not s.ssh_config.is_file():
        raise LocalHostError(f"no {s.ssh_config}: run `scripts/local-host up` first")
    argv = [sys.executable, "-m", "pytest", TESTS, *testinfra_args(s), *(extra_args or [])]
    log(f"verify: {' '.join(argv[1:])}")
    t0 = time.monotonic()
    rc = subprocess.run(argv, cwd=s.repo_root, env=_env(s)).returncode
    detail(f"verify: exit {rc} in {time.monotonic() - t0:.1f}s")
    return rc
