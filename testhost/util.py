"""Small helpers shared by the local test host modules: logging, stage timing (with a heartbeat for
the long ones), commands, pidfiles (psutil), locks (filelock), port checks, host packages. Nothing
here knows about the VM itself."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import filelock
import psutil

from operate.wait import wait_until


class LocalHostError(RuntimeError):
    """A failure with a message meant for the person at the terminal (printed without traceback)."""


def log(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


def detail(msg: str) -> None:
    print(f"    {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def stage(name: str, *, expect: str = "", tick: float = 0) -> Iterator[None]:
    """Print ``name`` (and ``expect``, roughly how long it takes), run the block, print its duration
    (also when it fails). ``tick`` > 0: a "still running" line every ``tick`` seconds meanwhile."""
    log(f"{name} ..." + (f" ({expect})" if expect else ""))
    t0 = time.monotonic()
    ok = False
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(tick):
            detail(f"{name}: still running, {time.monotonic() - t0:.0f}s so far")

    if tick > 0:
        threading.Thread(target=heartbeat, daemon=True).start()
    try:
        yield
        ok = True
    finally:
        done.set()
        dt = time.monotonic() - t0
        print(f"    {name}: {'done' if ok else 'FAILED'} in {dt:.1f}s", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str | os.PathLike],
    *,
    check: bool = True,
    capture: bool = False,
    quiet: bool = False,
    env: dict | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run a command. ``quiet`` captures output and shows it only if the command fails."""
    argv = [str(a) for a in argv]
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    grab = capture or quiet
    proc = subprocess.run(
        argv,
        stdout=subprocess.PIPE if grab else None,
        stderr=subprocess.PIPE if grab else None,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        input=input,
    )
    if check and proc.returncode != 0:
        msg = f"command failed (exit {proc.returncode}): {' '.join(argv)}"
        if grab:
            tail = ((proc.stdout or "") + (proc.stderr or "")).strip().splitlines()[-25:]
            msg += "\n" + "\n".join("    | " + line for line in tail)
        raise LocalHostError(msg)
    return proc


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock on ``path`` (created if needed), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        detail(f"waiting for lock {path} (another build/run holds it)")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def atomic_write(path: Path, content: str | bytes, mode: int = 0o644) -> bool:
    """Write ``content`` (text or bytes) to ``path`` via a temp file + rename, so a reader sees the
    old file or the new one, never a part. Returns True if the file changed."""
    path = Path(path)
    data = content.encode() if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_bytes() == data:
            os.chmod(path, mode)
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


# --- processes -----------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie counts as dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def read_pidfile(pidfile: Path, expect: str | None = None) -> int | None:
    """The pid in ``pidfile`` if that process is alive (and its command line contains ``expect``)."""
    try:
        proc = psutil.Process(int(pidfile.read_text().strip()))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if expect and not any(expect in part for part in proc.cmdline()):
            return None  # pid reused by something else
        return proc.pid
    except (FileNotFoundError, ValueError, psutil.Error):
        return None


def terminate(pid: int, *, timeout: float = 10.0, name: str = "process") -> None:
    """SIGTERM ``pid`` (one process, by id), escalate to SIGKILL after ``timeout`` seconds."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return
        proc.terminate()
        try:
            proc.wait(timeout)  # also reaps it if it is our child
        except psutil.TimeoutExpired:
            detail(f"{name} (pid {pid}) ignored SIGTERM for {timeout:.0f}s; sending SIGKILL")
            proc.kill()
            with contextlib.suppress(psutil.TimeoutExpired):
                proc.wait(5)
    except psutil.NoSuchProcess:
        pass


def start_daemon(
    argv: Sequence[str | os.PathLike],
    *,
    pidfile: Path,
    logfile: Path,
    env: dict | None = None,
    cwd: str | os.PathLike | None = None,
) -> int:
    """Start ``argv`` detached (own session, stdin from /dev/null, output to ``logfile``)."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with open(logfile, "ab") as out, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            [str(a) for a in argv],
            stdin=devnull,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    atomic_write(pidfile, f"{proc.pid}\n")
    return proc.pid


def tail(path: Path, lines: int = 30) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no {path})"
    return "\n".join(data[-lines:])


# --- ports ---------------------------------------------------------------------------------------


def free_port() -> int:
    """A free loopback port below 32768 (apt-cacher-ng refuses higher ones: "Error resolving address
    for binding"). Starts at a random point so concurrent sessions rarely race for the same one."""
    import random

    start = random.randrange(20000, 32000)
    for port in list(range(start, 32700)) + list(range(20000, start)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below 32768")


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((host, port))
            return True
        except OSError:
            return False


def port_holder(port: int) -> str:
    """Who listens on TCP ``port``: ``name (pid N)``, or '' if unknown."""
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            with contextlib.suppress(psutil.Error):
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
            return f"pid {conn.pid}"
    return ""


def require_port_free(port: int, what: str, env_var: str | None = None) -> None:
    if port_open(port):
        who = port_holder(port)
        hint = f"; choose another with {env_var}=<port>" if env_var else ""
        raise LocalHostError(
            f"port {port} on 127.0.0.1 (needed for {what}) is already in use" + (f" by {who}" if who else "") + hint
        )


def wait_port(
    port: int, *, timeout: float, pid: int | None = None, log_file: Path | None = None, what: str = ""
) -> None:
    def failure() -> str:
        msg = f"{what or 'service'} did not start listening on 127.0.0.1:{port}"
        return msg + (f"; last lines of {log_file}:\n{tail(log_file, 20)}" if log_file is not None else "")

    def listening() -> bool:
        if port_open(port):
            return True
        if pid is not None and not pid_alive(pid):
            raise LocalHostError(failure())  # the process died: no use waiting
        return False

    wait_until(listening, timeout, 0.2, failure, error=LocalHostError)


# --- host packages -------------------------------------------------------------------------------

# executable -> Debian package providing it
HOST_TOOLS: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "mmdebstrap": "mmdebstrap",
    "cloud-localds": "cloud-image-utils",
    "apt-cacher-ng": "apt-cacher-ng",
    "pebble": "pebble",
    "nmap": "nmap",
    "openssl": "openssl",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ip": "iproute2",
    "mkfs.ext4": "e2fsprogs",
}
EXTRA_PATH = ("/usr/sbin", "/sbin")


def which(tool: str) -> str | None:
    found = shutil.which(tool)
    if found:
        return found
    for d in EXTRA_PATH:
        cand = Path(d) / tool
        if cand.exists() and os.access(cand, os.X_OK):
            return str(cand)
    return None


def missing_packages(tools: dict[str, str] = HOST_TOOLS) -> list[str]:
    return sorted({pkg for exe, pkg in tools.items() if which(exe) is None})


def ensure_host_packages(tools: dict[str, str] = HOST_TOOLS) -> None:
    """Install the Debian packages the tooling needs, if any is missing (needs root + apt)."""
    missing = missing_packages(tools)
    if not missing:
        return
    cmd = "apt-get install -y --no-install-recommends " + " ".join(missing)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise LocalHostError(f"missing host packages: {', '.join(missing)}. Install them as root with:\n    {cmd}")
    with stage(f"installing host packages with apt-get: {' '.join(missing)}", expect="about 1-3 min", tick=20):
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        # Keep package postinst scripts from starting system-wide daemons (apt-cacher-ng would take
        # port 3142 on every interface); the tool runs its own instances on 127.0.0.1.
        policy = Path("/usr/sbin/policy-rc.d")
        own_policy = not policy.exists()
        if own_policy:
            policy.write_text("#!/bin/sh\n# written by scripts/local-host during apt-get install\nexit 101\n")
            policy.chmod(0o755)
        try:
            lists = Path("/var/lib/apt/lists")
            if not any(lists.glob("*_Packages")):
                run(["apt-get", "update", "-q"], quiet=True, env=env)
            proc = run(
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                check=False,
                quiet=True,
                env=env,
            )
            if proc.returncode != 0:
                detail("apt-get install failed; refreshing package lists and retrying")
                run(["apt-get", "update", "-q"], quiet=True, env=env)
                run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], quiet=True, env=env)
        finally:
            if own_policy:
                policy.unlink(missing_ok=True)
    still = missing_packages(tools)
    if still:
        raise LocalHostError(f"packages still missing after apt-get install: {', '.join(still)}")
