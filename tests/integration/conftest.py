"""Shared by the integration tests: one converged local test host for the whole session.

Booting and converging a fresh Debian 12 VM under TCG takes minutes, so the host-layer, smoke and
fine-tuning tests share one (state dir ``.state/local-host-it``, its own free loopback ports,
namespace and host-side services, so a developer's ``scripts/local-host up`` is not disturbed).
It is stopped and purged at the end of the session.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

import pytest

from testhost import lifecycle, runner, vm
from testhost.config import config as local_host_config
from testhost.util import free_port

TIMINGS: dict[str, float] = {}
COMMANDS: dict[str, int] = {}


def sh(s, cmd: str) -> str:
    """COMMAND as root on the guest; its stdout, stripped."""
    return vm.ssh_run(cmd, s).stdout.strip()


@pytest.fixture(scope="session")
def say(request):
    """print() that reaches the terminal even under pytest's output capture."""
    capman = request.config.pluginmanager.getplugin("capturemanager")

    def _say(msg: str) -> None:
        ctx = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        with ctx:
            print(f"[integration] {msg}", flush=True)

    return _say


@pytest.fixture(scope="session")
def timed(say):
    """Context manager printing a stage's duration (and keeping it for the session summary); with
    ``guest=`` also the remote commands the stage ran on that guest (sudo's journal lines)."""

    @contextlib.contextmanager
    def _timed(name: str, guest=None):
        say(f"{name} ...")
        since = vm.guest_clock(guest) if guest is not None else None
        t0 = time.monotonic()
        try:
            yield
        finally:
            TIMINGS[name] = time.monotonic() - t0
            extra = ""
            if since is not None:
                with contextlib.suppress(Exception):
                    COMMANDS[name] = vm.remote_commands_since(since, guest)
                    extra = f", {COMMANDS[name]} remote commands"
            say(f"{name}: {TIMINGS[name]:.1f}s{extra}")

    return _timed


@pytest.fixture(scope="session")
def local_host(timed, say):
    """The shared test host, booted (not yet converged)."""
    if os.geteuid() != 0:
        pytest.fail("the VM tests need root (qemu with a tap device, network namespaces, mmdebstrap)")
    st = local_host_config(
        state_dir=local_host_config().repo_root / ".state" / "local-host-it",
        ssh_port=free_port(),
        http_port=free_port(),
        https_port=free_port(),
        apt_proxy_port=free_port(),
        acme_port=free_port(),
        acme_mgmt_port=free_port(),
        mirror_port=free_port(),
        netns="llmtest-it",
        tap="llmtapit",
    )
    lifecycle.down(st, purge=True)
    with timed("boot (image build or reuse, host services, VM to SSH)"):
        lifecycle.ensure_running(st, fresh=True)
    yield st
    with timed("down"):
        lifecycle.down(st, purge=True)
    say("timings: " + ", ".join(f"{k} {v:.1f}s" + (f" ({COMMANDS[k]} commands)" if k in COMMANDS else "")
                                for k, v in TIMINGS.items()))


INTERRUPT_AT = ("Starting operation: proxy", "certificate for")


def interrupted_converge(s) -> list[str]:
    """Start a converge and kill pyinfra (SIGKILL, as a dropped SSH session or a lost laptop would)
    when it starts the proxy role's certificate step: the packages, users, firewall, data dirs,
    Ollama and containers are in place, nginx serves port 80, no certificate or HTTPS server yet.
    Returns the operations it had started."""
    proc = subprocess.Popen(runner.pyinfra_argv(s), cwd=s.repo_root, env=runner._env(s), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    started: list[str] = []
    for line in proc.stdout:
        if "Starting operation:" in line:
            started.append(line.split("Starting operation:", 1)[1].strip())
            if all(marker in line for marker in INTERRUPT_AT):
                proc.kill()
                break
    proc.wait(timeout=60)
    return started


@pytest.fixture(scope="session")
def converged(local_host, timed):
    """The shared host after its first converge, which is interrupted midway and rerun (the rerun
    must finish the job): (settings, operations the interrupted run started, changed count of the
    rerun, changed operation names of the rerun)."""
    with timed("converge (fresh host) until killed at the certificate step", guest=local_host):
        started = interrupted_converge(local_host)
    with timed("converge after the interruption", guest=local_host):
        changed, names = runner.converge(json=True, s=local_host)
    return local_host, started, changed, names


ORDER = ("test_localhost_vm.py", "test_host_layer.py", "test_rotate_key.py", "test_finetune.py", "test_volume_blank.py")


def pytest_collection_modifyitems(items):
    """The bare-VM test first (its own VM, gone before the shared one boots), then the host layer
    (which converges the shared host), then what builds on a converged host."""

    def rank(item) -> int:  # this hook sees the whole session: everything else (unit tests) first
        name = item.path.name
        return ORDER.index(name) if name in ORDER else -1

    items.sort(key=rank)  # stable: file order within a module is kept
