"""Why a host was not checked, in one line naming the host, never a traceback fragment: pyinfra's
connect errors ("llm-prod: SSH to 203.0.113.10:22 timed out after 10 s") and testinfra losing SSH
mid-run (a check that did not run is "not checked", not a failed check)."""

from __future__ import annotations

import re

from operate.oneline import ANSI, clip
from operate.targets import Files

# pyinfra's per-host connect errors (pyinfra/connectors/ssh.py: raise_connect_error), e.g.
# "    [llm-prod] Could not connect (timed out)"
_CONNECT = re.compile(
    r"^\s*\[(?P<host>[^\]\s]+)\]\s+(?P<what>Could not connect|SSH error|SSH host key error|Authentication error"
    r"|Could not resolve hostname|EOF error)\b\s*(?:\((?P<detail>.*)\))?\s*$"
)
_ERRNO = re.compile(r"^\[Errno [^\]]*\]\s*")


def _connect_timeout() -> int:
    try:
        from pyinfra.api.config import ConfigDefaults

        return int(ConfigDefaults.CONNECT_TIMEOUT)
    except (ImportError, AttributeError, TypeError, ValueError):  # pragma: no cover - pyinfra moved it
        return 10


def ssh_reason(host: str, address: str, what: str, detail: str) -> str:
    """pyinfra's connect error for a host → one line saying what to look at."""
    where = f"SSH to {address}" if address else "SSH"
    d = _ERRNO.sub("", (detail or "").strip()).strip()
    if what == "SSH host key error":
        return (
            f"{host}: host key mismatch for {address or host}: known_hosts holds another key "
            "(the host was rebuilt, or someone is in between)"
        )
    if what == "Authentication error":
        m = re.search(r"username=([^,\s)]+)", d)
        return f"{host}: {where}: authentication failed" + (f" as {m.group(1)}" if m else "") + " (key not accepted)"
    if what == "Could not resolve hostname":
        return f"{host}: {where}: cannot resolve the host name"
    if what == "EOF error":
        return f"{host}: {where}: the connection closed during the SSH handshake"
    if "banner" in d.lower():
        inner = _ERRNO.sub("", d[d.lower().index("banner") + len("banner") :].strip()).strip()
        said = f"the connection closed before the SSH banner ({inner})" if inner else "no SSH banner in time"
        return f"{host}: {where}: {said}: a firewall in the way, or sshd not up yet"
    if "known_hosts" in d:
        m = re.search(r"'([^']*known_hosts[^']*)'", d)
        return f"{host}: no known_hosts file ({m.group(1) if m else 'known_hosts'}): the host key cannot be checked"
    if "timed out" in d.lower() or d.lower() == "timeout":
        return f"{host}: {where} timed out after {_connect_timeout()} s"
    if d.startswith("Unable to connect to port") or "refused" in d.lower():
        return f"{host}: {where} refused (nothing listening, or a firewall rejecting)"
    return clip(f"{host}: {where}: {d[:1].lower() + d[1:]}" if d else f"{host}: {where}: {what.lower()}")


def connect_failures(stderr: str, target: Files) -> dict[str, str]:
    """{host: one-line reason} for every host pyinfra could not connect to."""
    addresses = {h.name: h.address for h in target.hosts}
    found: dict[str, str] = {}
    for line in ANSI.sub("", stderr).splitlines():
        m = _CONNECT.match(line)
        if m and m["host"] not in found:
            found[m["host"]] = ssh_reason(m["host"], addresses.get(m["host"], ""), m["what"], m["detail"] or "")
    return found


_SSH_LOST = re.compile(r"exit_status=255\b")
_SSH_STDERR = re.compile(r"_stderr=b(['\"])(?P<err>.*?)\1")


def lost_ssh(host: str, message: str) -> str | None:
    """testinfra's ssh backend raises RuntimeError(CommandResult(exit_status=255, ...)) when ssh
    itself failed: the check did not run, so the host was not checked (not a failed check)."""
    if not _SSH_LOST.search(message):
        return None
    m = _SSH_STDERR.search(message)
    err = m["err"].replace("\\r", " ").replace("\\n", " ") if m else ""
    err = err.strip()
    return clip(f"{host}: checks lost SSH: {err}" if err else f"{host}: checks lost SSH (ssh exited 255)")
