"""``scripts/local-host audit``: Lynis on the converged local test host.

Installs Debian's ``lynis`` on the guest (an audit tool, not part of the deploy), runs
``lynis audit system --quick`` and prints the hardening index, the warnings and the suggestions,
each suggestion the deploy does not take with the reason (``NOT_TAKEN``). Exit 0 only when the index
is at least ``TARGET`` and there is no warning.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from . import vm
from .config import TestHostConfig

TARGET = 80
REPORT = "/var/log/lynis-report.dat"
PROFILE = "ssl-certificate-paths=/etc/letsencrypt:/etc/nginx:/usr/local/share/ca-certificates"

NOT_TAKEN: dict[str, str] = {
    # Lynis test id → why the deploy leaves it. Reviewed against the report of 2026-12-02 (index 82,
    # 0 warnings, 30 suggestions): every id here appeared in it.
    "LYNIS": "the audit uses Debian 12's lynis package, older than upstream's latest release",
    "DEB-0280": "libpam-tmpdir: under sudo it points $TMPDIR at /tmp/user/0 (root-only), where pyinfra "
                "then uploads as the SSH user, and every upload fails (see hosts/packages.py)",
    "DEB-0810": "apt-listbugs: interactive, it would stop unattended upgrades",
    "DEB-0811": "apt-listchanges: mails changelogs; no mail on the host",
    "DEB-0880": "fail2ban jail.local: the deploy's settings live in jail.d/60-llm-platform.local, which "
                "package updates never touch",
    "BOOT-5264": "systemd-analyze security per unit: the services that matter run as containers or as a "
                 "dedicated user; the remaining units are Debian's defaults",
    "AUTH-9262": "password strength (pam_passwdqc): no account has a password (SSH keys only)",
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
    "BANN-7126": "the legal banner is set (base.py BANNER); Lynis wants more legal keywords in it",
    "BANN-7130": "the legal banner is set (base.py BANNER); Lynis wants more legal keywords in it",
    "FINT-4350": "file integrity tool (AIDE): its baseline rescans the whole disk, minutes on every converge; "
                 "debsums checks the packages' files instead",
    "TOOL-5002": "configuration management: pyinfra runs from the operator's machine, not on the host",
    "KRNL-6000": "sysctl: forwarding stays on for Docker's bridges, modules_disabled would stop Docker and ufw "
                 "loading theirs, core_uses_pid is moot without core dumps; default.accept_source_route=0 "
                 "is still to add (all.accept_source_route is 0)",
    "HRDN-7222": "compilers: the deploy installs none; what Debian's packages bring is left as is",
    "HRDN-7230": "malware scanner (rkhunter/chkrootkit): pulls compilers and false positives on a container host",
}


@dataclass
class Audit:
    index: int | None
    warnings: list[tuple[str, str]] = field(default_factory=list)
    suggestions: list[tuple[str, str, str]] = field(default_factory=list)  # id, text, details

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


def render(a: Audit) -> str:
    lines = [f"Lynis hardening index: {a.index if a.index is not None else '?'} (target {TARGET})",
             f"warnings: {len(a.warnings)}"]
    lines += [f"  {wid}: {text}" for wid, text in a.warnings]
    lines.append(f"suggestions: {len(a.suggestions)}")
    for sid, text, details in a.suggestions:
        why = NOT_TAKEN.get(sid)
        lines.append(f"  {sid}: {text}" + (f" [{details}]" if details else ""))
        lines.append(f"      not taken: {why}" if why else "      (no reason recorded: take it or add one to NOT_TAKEN)")
    lines.append("result: " + ("ok" if a.ok else "below target or with warnings"))
    return "\n".join(lines)


def run(s: TestHostConfig) -> int:
    install = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q lynis >/dev/null"
    vm.ssh_run(f"command -v lynis >/dev/null || {install} 2>/dev/null || {{ apt-get update -q >/dev/null && {install}; }}",
               s, timeout=900)
    # Certificate expiry (CRYP-7902) for the certificates the platform manages, not the ~150 CA
    # certificates of ca-certificates: one openssl per file costs ~20 minutes under emulation.
    vm.ssh_run(f"printf '%s\\n' {shlex.quote(PROFILE)} > /etc/lynis/custom.prf", s)
    vm.ssh_run("lynis audit system --quick --no-colors >/var/log/lynis-run.log 2>&1", s, timeout=3600)
    a = parse_report(vm.ssh_run(f"cat {REPORT}", s).stdout)
    print(render(a))
    return 0 if a.ok else 1
