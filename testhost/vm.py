"""The qemu VM of the local test host: disks, NoCloud seed, accelerator choice, boot, SSH, stop.

State (per checkout) lives in ``.state/local-host/``:
  disk.qcow2   throwaway overlay over the cached base image (new on every boot from "down")
  data.qcow2   the data volume (/dev/vdb in the guest, label llm-data, mounted at /data): kept
               across down / recreate; only ``down --purge`` deletes it
  seed.iso     NoCloud seed (meta-data, user-data with the host key, network-config), 0600
  console.log  the guest's serial console
  qemu.pid, qmp.sock, vm.json
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

from qemu.qmp import QMPError
from qemu.qmp.legacy import QEMUMonitorProtocol

from components import hostkeys, yamlio
from components.cloud_init import render_user_data
from operate import remote
from operate.remote import ssh_argv
from operate.wait import wait_until

from . import netns
from .access import ensure_host_key, ensure_ssh_key, write_access_files
from .config import ADMIN_USER, DATA_DEVICE, HOSTNAME, TestHostConfig
from .config import config as _config
from .image import Image, ensure_image, image_for
from .util import (
    LocalHostError,
    atomic_write,
    detail,
    log,
    pid_alive,
    read_pidfile,
    require_port_free,
    run,
    stage,
    tail,
    terminate,
    which,
)

MAC_USER = "52:54:00:4c:4c:01"
MAC_SCAN = "52:54:00:4c:4c:02"
KERNEL_CMDLINE = "root=/dev/vda rw console=ttyS0 net.ifnames=0 biosdevname=0"
QEMU = "qemu-system-x86_64"


# --- accelerator ---------------------------------------------------------------------------------


def detect_accel(s: TestHostConfig | None = None, image: Image | None = None, *, probe: bool = True) -> tuple[str, str]:
    """Choose ``kvm`` or ``tcg`` and say why.

    KVM is used only if it really works: /dev/kvm must be usable, the module must be kvm_intel or
    kvm_amd (not ``kvm_pvm``: under PVM Debian's kernel hangs at "Probing EDD"), and a probe boot of
    the image's kernel under KVM must reach the kernel's own panic (no root fs) within 60 s. The
    probe result is cached per (host kernel, guest kernel) in the cache dir.
    """
    s = s or _config()
    if s.accel in ("kvm", "tcg"):
        return s.accel, f"forced by LLM_LOCAL_ACCEL={s.accel}"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "/dev/kvm is missing or not accessible"
    if Path("/sys/module/kvm_pvm").exists():
        return "tcg", "kvm_pvm module loaded (PVM): Debian's kernel hangs early under it"
    if not (Path("/sys/module/kvm_intel").exists() or Path("/sys/module/kvm_amd").exists()):
        return "tcg", "neither kvm_intel nor kvm_amd is loaded"
    if not probe:
        return "kvm", "kvm_intel/kvm_amd loaded (not probed)"
    image = image or image_for(s)
    ok, why = probe_kvm(s, image)
    return ("kvm", why) if ok else ("tcg", why)


def probe_kvm(s: TestHostConfig, image: Image, timeout: float = 60.0) -> tuple[bool, str]:
    """Boot the image's kernel under KVM with no root fs and check it gets as far as its panic."""
    kernel_version = image.dir / "kernel-version"
    key = f"{platform.release()}|{kernel_version.read_text().strip() if kernel_version.exists() else image.dir.name}"
    cache_file = s.cache_dir / "kvm-probe.json"
    try:
        cached = json.loads(cache_file.read_text())
        if cached.get("key") == key:
            return cached["ok"], cached["why"] + " (cached probe)"
    except (FileNotFoundError, ValueError, KeyError):
        pass
    log("probing KVM with a short kernel boot (up to 60s)")
    out = s.cache_dir / f".kvm-probe-{os.getpid()}.log"
    argv = [
        QEMU, "-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1",
        "-kernel", image.kernel, "-append", "console=ttyS0 panic=-1 root=/dev/null",
        "-no-reboot", "-display", "none", "-serial", f"file:{out}", "-monitor", "none",
    ]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=timeout)
        text = out.read_text(errors="replace") if out.exists() else ""
        ok = "Kernel panic" in text or "VFS:" in text
        err = (proc.stderr.read() or b"").decode(errors="replace").strip().splitlines() if proc.stderr else []
        why = (
            f"KVM probe boot reached the kernel panic in {time.monotonic() - t0:.1f}s"
            if ok
            else f"KVM probe boot failed (qemu rc {proc.returncode}: {err[-1] if err else 'no kernel output'})"
        )
    except subprocess.TimeoutExpired:
        terminate(proc.pid, name="kvm probe")
        ok, why = False, f"KVM probe boot hung for {timeout:.0f}s"
    finally:
        out.unlink(missing_ok=True)
    s.cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(cache_file, json.dumps({"key": key, "ok": ok, "why": why}) + "\n")
    return ok, why


# --- seed + disks --------------------------------------------------------------------------------


def render_meta_data(instance_id: str) -> str:
    return f"instance-id: {instance_id}\nlocal-hostname: {HOSTNAME}\n"


def render_network_config(s: TestHostConfig) -> str:
    doc = {
        "version": 2,
        "ethernets": {
            "eth0": {"dhcp4": True},
            # the scan NIC: static, no gateway, so only the namespace is reachable through it
            "eth1": {"addresses": [f"{s.ns_guest_addr}/{s.ns_prefix}"]},
        },
    }
    return yamlio.dump(doc)


def render_seed_user_data(public_key: str, host_key: str) -> str:
    """As a stack's server gets it: the admin key, the data volume, and the host's own host key."""
    return render_user_data(
        admin_user=ADMIN_USER,
        ssh_public_keys=[public_key],
        data_device=DATA_DEVICE,
        hostname=HOSTNAME,
        host_key=host_key,
    )


def make_seed(s: TestHostConfig, instance_id: str) -> Path:
    pub = ensure_ssh_key(s)
    src = s.state_dir / "seed"
    src.mkdir(parents=True, exist_ok=True)
    os.chmod(src, 0o700)  # the user-data holds the host's private key
    atomic_write(src / "meta-data", render_meta_data(instance_id))
    atomic_write(src / "user-data", render_seed_user_data(pub, ensure_host_key(s)), 0o600)
    atomic_write(src / "network-config", render_network_config(s))
    tmp = s.seed.with_suffix(".iso.tmp")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    run(["cloud-localds", "--network-config", src / "network-config", tmp, src / "user-data", src / "meta-data"],
        quiet=True)  # fmt: skip
    os.chmod(tmp, 0o600)
    os.replace(tmp, s.seed)
    return s.seed


def ensure_data_disk(s: TestHostConfig) -> bool:
    """Create the data volume if absent (blank: cloud-init formats it on first boot). True if new."""
    if s.data_disk.exists():
        return False
    tmp = s.data_disk.with_suffix(".tmp")
    run(["qemu-img", "create", "-q", "-f", "qcow2", tmp, s.data_disk_size], quiet=True)
    os.replace(tmp, s.data_disk)
    return True


def new_overlay(s: TestHostConfig, image: Image) -> None:
    s.overlay.unlink(missing_ok=True)
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", image.qcow2, "-F", "qcow2", s.overlay], quiet=True)


# --- qemu ----------------------------------------------------------------------------------------


def qemu_argv(s: TestHostConfig, image: Image, accel: str) -> list[str]:
    fwd = ",".join(
        f"hostfwd=tcp:127.0.0.1:{host}-:{guest}"
        for host, guest in ((s.ssh_port, 22), (s.http_port, 80), (s.https_port, 443))
    )
    accel_args = ["-accel", "kvm", "-cpu", "host"] if accel == "kvm" else [
        "-accel", "tcg,thread=multi,tb-size=512", "-cpu", "max"]  # fmt: skip
    return [
        QEMU,
        "-name", f"{HOSTNAME},process={HOSTNAME}-qemu",
        *accel_args,
        "-smp", str(s.cpus), "-m", str(s.memory_mb),
        "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", KERNEL_CMDLINE,
        "-drive", f"file={s.overlay},format=qcow2,if=virtio,cache=unsafe,discard=unmap",
        "-drive", f"file={s.data_disk},format=qcow2,if=virtio,cache=writeback,discard=unmap",
        "-drive", f"file={s.seed},format=raw,if=virtio,readonly=on",
        "-netdev", f"user,id=n0,net=10.0.2.0/24,{fwd}",
        "-device", f"virtio-net-pci,netdev=n0,mac={MAC_USER}",
        "-netdev", f"tap,id=n1,ifname={s.tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=n1,mac={MAC_SCAN}",
        "-object", "rng-random,id=rng0,filename=/dev/urandom",
        "-device", "virtio-rng-pci,rng=rng0",
        "-display", "none", "-vga", "none", "-monitor", "none",
        "-serial", f"file:{s.console_log}",
        "-qmp", f"unix:{s.qmp_socket},server=on,wait=off",
        "-pidfile", str(s.qemu_pidfile),
        "-daemonize",
    ]  # fmt: skip


def qemu_pid(s: TestHostConfig | None = None) -> int | None:
    s = s or _config()
    return read_pidfile(s.qemu_pidfile, expect=str(s.qemu_pidfile))


def is_running(s: TestHostConfig | None = None) -> bool:
    return qemu_pid(s) is not None


def vm_info(s: TestHostConfig | None = None) -> dict:
    s = s or _config()
    try:
        return json.loads(s.vm_json.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def refresh_access_files(s: TestHostConfig, image: Image | None = None) -> dict:
    """known_hosts (the host's own host key, as its user-data installs it), ssh_config, inventory.py, host.json."""
    from .services import acme_ca_bundle_src, mirror_manifest

    return write_access_files(s, acme_ca_bundle_src(s), mirror_manifest(s))


def boot(
    s: TestHostConfig | None = None, *, image: Image | None = None, fresh: bool = True, record: dict | None = None
) -> bool:
    """Start the VM unless it already runs. Returns True if it was started.

    ``fresh=True`` (default) boots a new overlay over the base image, i.e. a clean host that runs
    cloud-init's first boot again; the data disk is reused (created blank if absent). ``record``:
    more keys for the VM's record (``vm.json``), e.g. the instance a rebuild replaces."""
    s = s or _config()
    if is_running(s):
        detail(f"VM already running (pid {qemu_pid(s)})")
        return False
    if not which(QEMU):
        raise LocalHostError("qemu-system-x86_64 not found: apt-get install qemu-system-x86 qemu-utils")
    image = image or ensure_image(s)
    s.state_dir.mkdir(parents=True, exist_ok=True)
    for port, what, env in (
        (s.ssh_port, "the guest's SSH forward", "LLM_LOCAL_SSH_PORT"),
        (s.http_port, "the guest's HTTP forward", "LLM_LOCAL_HTTP_PORT"),
        (s.https_port, "the guest's HTTPS forward", "LLM_LOCAL_HTTPS_PORT"),
    ):
        require_port_free(port, what, env)
    accel, why = detect_accel(s, image)
    with stage(f"boot VM ({accel}: {why})"):
        info = vm_info(s)
        if fresh or not s.overlay.exists() or info.get("image") != str(image.dir):
            new_overlay(s, image)
            instance_id = f"{HOSTNAME}-{uuid.uuid4().hex[:12]}"
        else:
            instance_id = info.get("instance_id") or f"{HOSTNAME}-{uuid.uuid4().hex[:12]}"
        if ensure_data_disk(s):
            detail(f"created blank data disk {s.data_disk} ({s.data_disk_size}, sparse)")
        else:
            detail(f"reusing data disk {s.data_disk}")
        make_seed(s, instance_id)
        refresh_access_files(s, image)
        netns.ensure_netns(s)
        netns.prepare_tap(s)
        s.qemu_pidfile.unlink(missing_ok=True)
        s.qmp_socket.unlink(missing_ok=True)
        if s.console_log.exists():
            os.replace(s.console_log, s.console_log.with_suffix(".log.prev"))
        argv = qemu_argv(s, image, accel)
        atomic_write(s.state_dir / "qemu.cmdline", shlex.join(argv) + "\n")
        proc = run(argv, check=False, capture=True)
        if proc.returncode != 0:
            netns.teardown(s)
            raise LocalHostError(f"qemu failed to start (exit {proc.returncode}):\n{proc.stderr.strip()}")
        netns.attach_tap(s)
        atomic_write(
            s.vm_json,
            json.dumps(
                {
                    "image": str(image.dir),
                    "instance_id": instance_id,
                    "accel": accel,
                    "accel_reason": why,
                    "pid": qemu_pid(s),
                    "started_at": time.time(),
                    "ports": {"ssh": s.ssh_port, "http": s.http_port, "https": s.https_port},
                    **(record or {}),
                },
                indent=2,
            )
            + "\n",
        )
        detail(f"qemu pid {qemu_pid(s)}, console log {s.console_log}")
    return True


# --- ssh -----------------------------------------------------------------------------------------


def ssh_args(s: TestHostConfig | None = None, *, tty: bool = False) -> list[str]:
    """argv prefix to run a command on the guest as the admin user: ``[*ssh_args(), "cmd"]`` (the one
    ssh argv, ``operate.remote.ssh_argv``, with the generated ssh_config)."""
    s = s or _config()
    return ssh_argv(HOSTNAME, config=s.ssh_config, tty=tty)


def guest_clock(s: TestHostConfig | None = None) -> int:
    """The guest's clock (epoch seconds), read without sudo (so it is not counted as a command)."""
    return int(ssh_run("date +%s", s, sudo=False).stdout.strip())


def remote_commands_since(since: int, s: TestHostConfig | None = None) -> int:
    """How many commands ran through sudo on the guest since ``since`` (guest clock): what a
    converge, a dry run or testinfra pays for each remote command (~0.4 s under emulation, a round
    trip over a real link). Counted from sudo's own journal lines; this query's own line left out."""
    out = ssh_run(f"journalctl -q -o cat _COMM=sudo --since @{int(since)} | grep -c 'COMMAND=' || true", s).stdout
    return max(0, int(out.strip() or 0) - 1)


def ssh_run(
    command: str,
    s: TestHostConfig | None = None,
    *,
    sudo: bool = True,
    check: bool = True,
    capture: bool = True,
    timeout: float | None = 300,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run a shell command on the guest (as root through sudo by default): the test host's own
    primitive (its errors are ``LocalHostError``s), on the same argv as ``operate.remote.Remote``."""
    s = s or _config()
    proc = subprocess.run(
        remote.Remote(ssh_args(s), HOSTNAME).argv(command, sudo),
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        text=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        err = (proc.stderr or "").strip() if capture else ""
        raise LocalHostError(f"on the guest, `{command}` failed (exit {proc.returncode})" + (f": {err}" if err else ""))
    return proc


def close_ssh_master(s: TestHostConfig | None = None) -> None:
    s = s or _config()
    if s.ssh_config.exists():
        subprocess.run([*ssh_args(s)[:3], "-O", "exit", HOSTNAME], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ssh_ok(s: TestHostConfig) -> bool:
    try:
        proc = subprocess.run(
            [*ssh_args(s)[:3], "-o", "ConnectTimeout=5", HOSTNAME, "true"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return False
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in (proc.stderr or "") or "Host key verification failed" in (
        proc.stderr or ""
    ):
        raise LocalHostError(f"the guest's SSH host key does not match {s.known_hosts}:\n{proc.stderr.strip()}")
    return proc.returncode == 0


def wait_for_ssh(s: TestHostConfig | None = None, *, timeout: float = 900, cloud_init: bool = True) -> float:
    """Wait until the guest answers SSH with its own host key and the admin user can log in (and
    cloud-init is done): ``operate.remote.wait_for_ssh`` with the login as its predicate. Returns
    seconds waited."""
    s = s or _config()
    t0 = time.monotonic()
    deadline = t0 + timeout

    def running() -> None:
        if not is_running(s):
            print(file=sys.stderr)
            raise LocalHostError(f"qemu exited while booting; console log tail:\n{tail(s.console_log, 40)}")

    def failure(_message: str) -> LocalHostError:
        print(file=sys.stderr)
        return LocalHostError(
            f"no SSH on 127.0.0.1:{s.ssh_port} after {timeout:.0f}s; console log tail ({s.console_log}):\n"
            + tail(s.console_log, 40)
        )

    with stage("wait for SSH"):
        try:
            remote.wait_for_ssh(
                "127.0.0.1",
                hostkeys.public_of(ensure_host_key(s)),
                s.ssh_port,
                timeout,
                2,
                probe=_host_key,
                check=running,
                ready=lambda: _ssh_ok(s),
                error=failure,
                on_wait=_dot,
            )
        except remote.HostKeyMismatch as exc:
            raise LocalHostError(f"the guest's SSH host key does not match {s.known_hosts}: {exc}") from None
        print(file=sys.stderr, flush=True)
        detail(f"SSH up after {time.monotonic() - t0:.1f}s")
        if cloud_init:
            left = max(60.0, deadline - time.monotonic())
            proc = ssh_run(
                "cloud-init status --wait >/dev/null; cloud-init status --long", s, check=False, timeout=left
            )
            status = (proc.stdout or "").strip()
            if "status: done" not in status:
                detail("cloud-init did not finish cleanly:\n" + "\n".join("      " + ln for ln in status.splitlines()))
            else:
                detail(f"cloud-init done after {time.monotonic() - t0:.1f}s")
    return time.monotonic() - t0


def _host_key(address: str, port: int) -> str:
    return remote.server_host_key(address, port, timeout=5)


def _dot() -> None:
    print(".", end="", file=sys.stderr, flush=True)


def boot_id(s: TestHostConfig | None = None) -> str:
    return ssh_run("cat /proc/sys/kernel/random/boot_id", s).stdout.strip()


def reboot(s: TestHostConfig | None = None, *, timeout: float = 900) -> float:
    """Reboot the guest in place (same overlay, same data disk) and wait for SSH again."""
    s = s or _config()
    before = boot_id(s)
    t0 = time.monotonic()

    def rebooted() -> bool:
        try:
            return _ssh_ok(s) and boot_id(s) != before
        except LocalHostError:
            return False

    with stage("reboot guest"):
        ssh_run("systemctl reboot", s, check=False, timeout=30)
        close_ssh_master(s)
        time.sleep(3)
        wait_until(
            rebooted,
            timeout - (time.monotonic() - t0),
            2,
            lambda: f"guest did not come back after reboot; console tail:\n{tail(s.console_log, 40)}",
            error=LocalHostError,
            on_wait=_dot,
        )
        print(file=sys.stderr, flush=True)
        wait_for_ssh(s, timeout=max(60, timeout - (time.monotonic() - t0)))
    return time.monotonic() - t0


def _qmp(s: TestHostConfig, command: str) -> None:
    qmp = QEMUMonitorProtocol(str(s.qmp_socket))
    try:
        qmp.connect()
        qmp.settimeout(5)
        qmp.cmd(command)
    finally:
        qmp.close()


def stop(s: TestHostConfig | None = None, *, timeout: float = 120) -> None:
    """Shut the VM down cleanly (guest poweroff, then ACPI, then SIGTERM). Idempotent.

    Disks stay: the overlay until the next fresh boot, the data disk until ``down --purge``."""
    s = s or _config()
    pid = qemu_pid(s)
    if pid is None:
        s.qemu_pidfile.unlink(missing_ok=True)
        close_ssh_master(s)
        return
    with stage("stop VM"):

        def wait(secs: float) -> bool:
            try:
                wait_until(lambda: not pid_alive(pid), secs, 0.5, "qemu still running")
            except TimeoutError:
                return False
            return True

        try:
            ssh_run("systemctl poweroff", s, check=False, timeout=20)
        except subprocess.TimeoutExpired:
            pass
        close_ssh_master(s)
        if not wait(timeout * 0.75):
            detail("guest did not power off; sending ACPI power button")
            try:
                _qmp(s, "system_powerdown")
            except (OSError, QMPError) as e:
                detail(f"QMP failed: {e}")
            if not wait(timeout * 0.25):
                detail("guest still running; terminating qemu")
                terminate(pid, name="qemu")
        s.qemu_pidfile.unlink(missing_ok=True)
        s.qmp_socket.unlink(missing_ok=True)


def recreate(s: TestHostConfig | None = None, *, image: Image | None = None, timeout: float = 900) -> float:
    """Replace the VM by a new one from the base image with the SAME data disk; wait for SSH.

    This is what ``scripts/rebuild-host local`` does. Returns seconds from stop to SSH ready."""
    s = s or _config()
    t0 = time.monotonic()
    stop(s)
    boot(s, image=image, fresh=True)
    wait_for_ssh(s, timeout=timeout)
    return time.monotonic() - t0
