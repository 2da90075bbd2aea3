"""Shared by the integration tests: two local test hosts, each converged once, used side by side.

Booting and converging a fresh Debian 12 VM under TCG takes minutes, and a VM running its remote
commands one after another keeps one core busy, so the scenarios are split in two chains, each on
its own host (own state dir, free loopback ports, namespace and host-side services, so a
developer's ``scripts/local-host up`` is not disturbed), which pytest-xdist runs side by side
(``scripts/test``: ``-n 2 --dist loadgroup``; one worker per chain: ``CHAINS`` in tests/conftest.py):

* **host A** (``local_host`` → ``converged``): the bare VM's checks, a first converge killed midway
  and rerun, the no-op converge, the checks, smoke, loopback guard, drift and repair, key rotation.
* **host B** (``host_b`` → ``converged_b``): its data volume arrives after boot (the first converge
  formats it), then the rebuild from scratch keeping that volume, the TCP scans and fine-tuning on
  the rebuilt host.

Without xdist (``-n 0``) the chains run one after the other. Each host is stopped and purged at the
end of the session. Stage timings are printed as they happen (under xdist: after each test, by the
controller) and summed up at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time

import pytest

from components.catalogue import DATA_LABEL, DATA_MOUNT
from testhost import access, lifecycle, runner, vm
from testhost.config import config as local_host_config
from testhost.util import free_port
from tests.conftest import WORKER, carry_to_controller

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
        if WORKER:  # a worker's output does not reach the terminal: the report carries the line
            carry_to_controller(f"[integration {WORKER}] {msg}")
            return
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


HOSTS = {  # chain: (state dir under .state/, namespace, tap device)
    "A": ("local-host-it", "llmtest-it", "llmtapit"),
    "B": ("local-host-ib", "llmtest-ib", "llmtapib"),
}


def vcpus() -> int:
    """Each test host's vCPUs: ``LLM_LOCAL_CPUS`` when set, else an equal share of the cores this
    process may use (1 on 2 cores), at most 2 (``scripts/local-host up``'s default). Under TCG a vCPU
    is a host thread that spins while the guest waits on a lock held by a vCPU the host has
    descheduled: two 2-vCPU hosts on 2 cores took each stage 1.6-1.9x its time alone (and a boot once
    hung in a soft lockup); with 1 vCPU each, the whole suite went from 18:59 to 14:17 (2026-12-05)."""
    env = os.environ.get("LLM_LOCAL_CPUS", "").strip()
    cores = len(os.sched_getaffinity(0))  # the cores this process may use (nproc), not the machine's
    return int(env) if env else min(2, max(1, cores // len(HOSTS)))  # never more than a host alone gets


@contextlib.contextmanager
def booted_host(chain: str, timed, say):
    """A test host of its own (not yet converged), stopped and purged afterwards."""
    if os.geteuid() != 0:
        pytest.fail("the VM tests need root (qemu with a tap device, network namespaces, mmdebstrap)")
    state, ns, tap = HOSTS[chain]
    st = local_host_config(
        state_dir=local_host_config().repo_root / ".state" / state,
        ssh_port=free_port(),
        http_port=free_port(),
        https_port=free_port(),
        apt_proxy_port=free_port(),
        acme_port=free_port(),
        acme_mgmt_port=free_port(),
        mirror_port=free_port(),
        netns=ns,
        tap=tap,
        cpus=vcpus(),
    )
    lifecycle.down(st, purge=True)
    with timed(f"boot host {chain} (image build or reuse, host services, VM to SSH)"):
        lifecycle.ensure_running(st, fresh=True)
    yield st
    with timed(f"down host {chain}"):
        lifecycle.down(st, purge=True)
    say(
        "timings: "
        + ", ".join(
            f"{k} {v:.1f}s" + (f" ({COMMANDS[k]} commands)" if k in COMMANDS else "") for k, v in TIMINGS.items()
        )
    )


@pytest.fixture(scope="session")
def local_host(timed, say):
    """Host A, booted (not yet converged)."""
    with booted_host("A", timed, say) as st:
        yield st


@pytest.fixture(scope="session")
def host_b(timed, say):
    """Host B, booted (not yet converged)."""
    with booted_host("B", timed, say) as st:
        yield st


INTERRUPT_AT = ("Starting operation: proxy", "certificate for")


def interrupted_converge(s) -> list[str]:
    """Start a converge and kill pyinfra (SIGKILL, as a dropped SSH session or a lost laptop would)
    when it starts the proxy role's certificate step: the packages, users, firewall, data dirs,
    Ollama and containers are in place, nginx serves port 80, no certificate or HTTPS server yet.
    Returns the operations it had started."""
    proc = subprocess.Popen(
        runner.pyinfra_argv(s),
        cwd=s.repo_root,
        env=runner._env(s),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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


LATE_SERIAL = "late-volume"
LATE = f"/dev/disk/by-id/virtio-{LATE_SERIAL}"
ASIDE = "llm-data-old"


def qmp(s, command: str, timeout: float = 30, **args) -> dict:
    """One QMP command to the host's qemu (its socket in the state dir)."""
    from qemu.qmp.legacy import QEMUMonitorProtocol

    q = QEMUMonitorProtocol(str(s.qmp_socket))
    try:
        q.connect()
        q.settimeout(timeout)
        return q.cmd(command, **args)
    finally:
        q.close()


def set_data_device(s, device: str | None) -> None:
    """Name the volume in the host's data (host.json and the inventory the deploy reads)."""
    data = json.loads(s.host_json.read_text())
    if device is None:
        data.pop("data_device", None)
    else:
        data["data_device"] = device
    s.host_json.write_text(json.dumps(data, indent=2) + "\n")
    s.inventory.write_text(access.render_inventory(s, data))


@pytest.fixture(scope="session")
def converged_b(host_b, timed):
    """Host B after its first converge, onto a data volume that arrived after boot (issue 21 §3: a
    Hetzner VolumeAttachment made after the server; cloud-init 22.4.2's cc_disk_setup does not wait
    for it). The volume cloud-init formatted at boot is unmounted and its label moved aside (so no
    device carries ``llm-data`` and it stands for a device with data, which must never be touched); a
    new blank disk is hot-plugged through QMP (blockdev-add + device_add virtio-blk-pci with a serial:
    the guest names it /dev/disk/by-id/virtio-<serial>, as a provider names its volume) and named as
    the host data's ``data_device``; the converge formats it (label llm-data) and mounts it at /data.

    The late disk is this host's volume from then on: host data goes back to finding it by label,
    and the rebuild attaches it to the new VM (test_rebuild.py). Returns (settings, facts seen)."""
    s = host_b
    old = sh(s, f"blkid -L {DATA_LABEL}")
    image = s.state_dir / "late-volume.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), s.data_disk_size], check=True)
    sh(s, f"umount {DATA_MOUNT} && e2label {old} {ASIDE}")
    qmp(s, "blockdev-add", driver="qcow2", **{"node-name": "late0"}, file={"driver": "file", "filename": str(image)})
    qmp(s, "device_add", driver="virtio-blk-pci", drive="late0", id="late0", serial=LATE_SERIAL)
    sh(s, f"udevadm settle; test -b {LATE}")
    seen = {"old": old, "image": image, "blank_before": sh(s, f"blkid -p {LATE} || true") == ""}
    set_data_device(s, LATE)
    with timed("converge (fresh host B, its volume attached after boot)", guest=s):
        seen["changed"], _ = runner.converge(json=True, s=s)  # raises when the deploy fails
    seen["late"] = sh(s, f"readlink -f {LATE}")
    seen["labelled"] = sh(s, f"blkid -L {DATA_LABEL}")
    seen["mounted"] = sh(s, f"findmnt -no SOURCE {DATA_MOUNT}")
    seen["old_label"] = sh(s, f"blkid -o value -s LABEL {old}")
    set_data_device(s, None)
    return s, seen
