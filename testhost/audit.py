"""``scripts/local-host audit [--profile platform|stock]``: Lynis on the converged local test host.

Installs Debian's ``lynis`` on the guest (an audit tool, not part of the deploy), runs
``lynis audit system --quick`` and prints the hardening index, the warnings, the controls that did
not get all their points and the suggestions, each suggestion the deploy does not take with the
reason (``NOT_TAKEN``). Exit 0 only when the index is at least ``TARGET`` and there is no warning.

Profiles: ``platform`` (the default) is Debian's stock profile plus ``PROFILE`` as
``/etc/lynis/custom.prf``: certificate expiry (CRYP-7902) for the platform's certificates only;
``stock`` is Debian's profile alone (no custom.prf), which also walks the ~150 CA certificates
(under 2 minutes on an idle machine under emulation, 2026-12-05; more when the cores are busy).
CRYP-7902 gives no points, so both give the same index (86 on 2026-12-05). The
report and the log are copied into the state dir (``lynis-<profile>-report.dat``, ``lynis-<profile>.log``).
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass, field

from . import vm
from .config import TestHostConfig
from .util import stage

TARGET = 85
REPORT = "/var/log/lynis-report.dat"
LOG = "/var/log/lynis.log"
CUSTOM_PROFILE = "/etc/lynis/custom.prf"
PROFILE = "ssl-certificate-paths=/etc/letsencrypt:/etc/nginx:/usr/local/share/ca-certificates"
PROFILES = ("platform", "stock")

NOT_TAKEN: dict[str, str] = {
    # Lynis test id → why the deploy leaves it. Reviewed against the report of 2026-12-05 (index 86,
    # 0 warnings, 24 suggestions, profile platform): every id here appeared in it. The controls the
    # hardening takes are named in hosts/hardening/*.py.
    "LYNIS": "the audit uses Debian 12's lynis package, older than upstream's latest release",
    "DEB-0280": "libpam-tmpdir: under sudo it points $TMPDIR at /tmp/user/0 (root-only), where pyinfra "
    "then uploads as the SSH user, and every upload fails (see hosts/packages.py)",
    "DEB-0810": "apt-listbugs: interactive, it would stop unattended upgrades",
    "DEB-0811": "apt-listchanges: mails changelogs; no mail on the host",
    "BOOT-5264": "systemd-analyze security per unit: the services that matter run as containers or as a "
    "dedicated user; the remaining units are Debian's defaults",
    "AUTH-9284": "locked accounts: Debian's system accounts, locked by design",
    "FILE-6310": "separate /home, /tmp, /var partitions: cloud images come as one root filesystem; "
    "the data that matters is on its own volume (/data)",
    "FILE-7524": "file permissions of Debian's cron directories: left at the distribution's defaults",
    "HOME-9304": "home directories: only the admin's, holding its authorized_keys",
    "NAME-4028": "DNS domain name: the host is addressed by IP and its public name in DNS",
    "NETW-3200": "dccp/sctp/rds/tipc: disabled by modprobe (install /bin/false), which Lynis does not read as disabled",
    "FIRE-4513": "unused iptables rules: Docker's and ufw's chains, idle on a quiet host",
    "HTTP-6710": "weak nginx protocol: Lynis reads Debian's nginx.conf default; the platform's server "
    "allows TLS 1.2/1.3 only (tests/hosts/test_proxy.py refuses TLS 1.1)",
    "SSH-7408": "SSH port 22: the catalogue, the cloud firewall and ufw allow 22 from the admin CIDRs only; "
    "MaxSessions 4: the operator's multiplexed connection (pyinfra, testinfra, scripts/finetune)",
    "LOGG-2154": "remote logging: one host per environment; the journal stays on the host",
    "FINT-4350": "file integrity tool (AIDE): its baseline rescans the whole disk, minutes on every converge; "
    "debsums checks the packages' files instead",
    "TOOL-5002": "configuration management: pyinfra runs from the operator's machine, not on the host",
    "KRNL-6000": "sysctl: forwarding stays on for Docker's bridges; modules_disabled would stop Docker and ufw "
    "loading theirs",
}


@dataclass
class Audit:
    index: int | None
    warnings: list[tuple[str, str]] = field(default_factory=list)
    suggestions: list[tuple[str, str, str]] = field(default_factory=list)  # id, text, details
    points: tuple[int, int] | None = None  # hardening points scored, out of (from the report or log)
    lost: dict[str, int] = field(default_factory=dict)  # test id -> points it did not score (from the log)
    profile: str = ""
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.index is not None and self.index >= TARGET and not self.warnings


def parse_report(text: str) -> Audit:
    """Lynis' report file (``key=value`` lines; ``warning[]``/``suggestion[]`` are ``ID|text|details|...``)."""
    index, warnings, suggestions = None, [], []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "hardening_index" and value.strip().isdigit():
            index = int(value.strip())
        elif key in ("warning[]", "suggestion[]"):
            parts = value.split("|") + ["", "", ""]
            if key == "warning[]":
                warnings.append((parts[0], parts[1]))
            else:
                details = parts[2] if parts[2] not in ("-", "") else ""
                suggestions.append((parts[0], parts[1], details))
    return Audit(index, warnings, suggestions)


_TEST = re.compile(r"Performing test ID (\S+)")
_HP = re.compile(
    r"Hardening: assigned (?:maximum|partial) number of hardening points.*?(?:\((\d+) of (\d+)\)|\((\d+)\))"
    r"\. Currently having (\d+) points \(out of (\d+)\)"
)


def parse_log(text: str) -> tuple[tuple[int, int] | None, dict[str, int]]:
    """Lynis' log: the points scored out of the total, and the points each test did not score
    (``Hardening: assigned partial number of hardening points (X of Y)``, under the last
    ``Performing test ID``)."""
    test, lost, points = "?", {}, None
    for line in text.splitlines():
        m = _TEST.search(line)
        if m:
            test = m.group(1)
            continue
        m = _HP.search(line)
        if m:
            got, of = (int(m.group(1)), int(m.group(2))) if m.group(1) else (int(m.group(3)), int(m.group(3)))
            if got < of:
                lost[test] = lost.get(test, 0) + of - got
            points = (int(m.group(4)), int(m.group(5)))
    return points, lost


def render(a: Audit) -> str:
    head = f"Lynis hardening index: {a.index if a.index is not None else '?'} (target {TARGET})"
    if a.points:
        head += f", {a.points[0]} of {a.points[1]} points"
    if a.profile:
        head += f", profile {a.profile}"
    if a.seconds is not None:
        head += f", {a.seconds / 60:.0f} min"
    lines = [head, f"warnings: {len(a.warnings)}"]
    lines += [f"  {wid}: {text}" for wid, text in a.warnings]
    if a.lost:
        lines.append("points not scored: " + ", ".join(f"{t} -{n}" for t, n in sorted(a.lost.items())))
    lines.append(f"suggestions: {len(a.suggestions)}")
    for sid, text, details in a.suggestions:
        why = NOT_TAKEN.get(sid)
        lines.append(f"  {sid}: {text}" + (f" [{details}]" if details else ""))
        lines.append(
            f"      not taken: {why}" if why else "      (no reason recorded: take it or add one to NOT_TAKEN)"
        )
    lines.append("result: " + ("ok" if a.ok else "below target or with warnings"))
    return "\n".join(lines)


def run(s: TestHostConfig, profile: str = "platform") -> int:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
    install = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q lynis >/dev/null"
    vm.ssh_run(
        f"command -v lynis >/dev/null || {install} 2>/dev/null || {{ apt-get update -q >/dev/null && {install}; }}",
        s,
        timeout=900,
    )
    if profile == "platform":
        # Certificate expiry (CRYP-7902) for the certificates the platform manages, not the ~150 CA
        # certificates of ca-certificates (a dpkg query and openssl per file under emulation).
        vm.ssh_run(f"printf '%s\\n' {shlex.quote(PROFILE)} > {CUSTOM_PROFILE}", s)
    else:
        vm.ssh_run(f"rm -f {CUSTOM_PROFILE}", s)
    t0 = time.monotonic()
    expect = "13-40 min under emulation, longer when the cores are busy"
    with stage(f"lynis audit system (profile {profile})", expect=expect, tick=300):
        vm.ssh_run("lynis audit system --quick --no-colors >/var/log/lynis-run.log 2>&1", s, timeout=3 * 3600)
    a = parse_report(vm.ssh_run(f"cat {REPORT}", s).stdout)
    log = vm.ssh_run(f"cat {LOG}", s).stdout
    a.points, a.lost = parse_log(log)
    a.profile, a.seconds = profile, time.monotonic() - t0
    s.state_dir.mkdir(parents=True, exist_ok=True)
    (s.state_dir / f"lynis-{profile}-report.dat").write_text(vm.ssh_run(f"cat {REPORT}", s).stdout)
    (s.state_dir / f"lynis-{profile}.log").write_text(log)
    print(render(a))
    return 0 if a.ok else 1
