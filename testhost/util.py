"""Small helpers shared by the local test host modules: logging, stage timing, commands, pidfiles,
port checks, host packages. Nothing here knows about the VM itself."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence


class LocalHostError(RuntimeError):
    """A failure with a message meant for the person at the terminal (printed without traceback)."""


def log(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


def detail(msg: str) -> None:
    print(f"    {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Print ``name``, run the block, print its duration (also when it fails)."""
    log(f"{name} ...")
    t0 = time.monotonic()
    ok = False
    try:
        yield
        ok = True
    finally:
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
    """Exclusive ``flock`` on ``path`` (created if needed), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            detail(f"waiting for lock {path} (another build/run holds it)")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def atomic_write(path: Path, content: str, mode: int = 0o644) -> bool:
    """Write ``content`` to ``path`` via a temp file + rename. Returns True if the file changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_text() == content:
            os.chmod(path, mode)
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


# --- processes -----------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, IndexError):
        return False


def pid_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


def read_pidfile(pidfile: Path, expect: str | None = None) -> int | None:
    """The pid in ``pidfile`` if that process is alive (and its command line contains ``expect``)."""
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    if expect and not any(expect in part for part in pid_cmdline(pid)):
        return None  # pid reused by something else
    return pid


def terminate(pid: int, *, timeout: float = 10.0, name: str = "process") -> None:
    """SIGTERM ``pid`` (one process, by id), escalate to SIGKILL after ``timeout`` seconds."""
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            _reap(pid)
            return
        time.sleep(0.2)
    detail(f"{name} (pid {pid}) ignored SIGTERM for {timeout:.0f}s; sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not pid_alive(pid):
            break
        time.sleep(0.1)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


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
    """A short description of who listens on TCP ``port`` (from ``ss``), or '' if unknown."""
    if not shutil.which("ss"):
        return ""
    proc = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    return " ".join(proc.stdout.split()[3:]) if proc.stdout.strip() else ""


def require_port_free(port: int, what: str, env_var: str | None = None) -> None:
    if port_open(port):
        who = port_holder(port)
        hint = f"; choose another with {env_var}=<port>" if env_var else ""
        raise LocalHostError(
            f"port {port} on 127.0.0.1 (needed for {what}) is already in use"
            + (f" by {who}" if who else "")
            + hint
        )


def wait_port(port: int, *, timeout: float, pid: int | None = None, log_file: Path | None = None, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if pid is not None and not pid_alive(pid):
            break
        time.sleep(0.2)
    msg = f"{what or 'service'} did not start listening on 127.0.0.1:{port}"
    if log_file is not None:
        msg += f"; last lines of {log_file}:\n{tail(log_file, 20)}"
    raise LocalHostError(msg)


# --- host packages -------------------------------------------------------------------------------

# executable -> Debian package providing it
HOST_TOOLS: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "debootstrap": "debootstrap",
    "genisoimage": "genisoimage",
    "apt-cacher-ng": "apt-cacher-ng",
    "pebble": "pebble",
    "nmap": "nmap",
    "openssl": "openssl",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ip": "iproute2",
    "ss": "iproute2",
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
        raise LocalHostError(
            f"missing host packages: {', '.join(missing)}. Install them as root with:\n    {cmd}"
        )
    with stage(f"installing host packages: {' '.join(missing)}"):
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
            proc = run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], check=False, quiet=True, env=env)
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
