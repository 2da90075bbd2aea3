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
from .config import Settings

TARGET = 80
REPORT = "/var/log/lynis-report.dat"
PROFILE = "ssl-certificate-paths=/etc/letsencrypt:/etc/nginx:/usr/local/share/ca-certificates"

NOT_TAKEN: dict[str, str] = {
    # Lynis test id → why the deploy leaves it (reviewed against the measured report)
    "BOOT-5122": "GRUB password: cloud servers boot unattended; the console is the provider's, behind its account",
    "BOOT-5264": "systemd-analyze security per unit: the services that matter run as containers or as a "
                 "dedicated user; the remaining units are Debian's defaults",
    "FILE-6310": "separate /home, /tmp, /var partitions: cloud images come as one root filesystem; "
                 "the data that matters is on its own volume (/data)",
    "SSH-7408": "SSH port 22: the catalogue, the cloud firewall and ufw allow 22 from the admin CIDRs only; "
                "MaxSessions 4: the operator's multiplexed connection (pyinfra, testinfra, scripts/finetune)",
    "KRNL-5788": "kernel package check: cloud images ship their own kernel packages",
    "KRNL-5830": "reboot after a kernel upgrade: done by the operator in a maintenance window, not by a converge",
    "LOGG-2154": "remote logging: one host per environment; the journal stays on the host",
    "FINT-4350": "file integrity tool (AIDE): its baseline rescans the whole disk, minutes on every converge; "
                 "debsums checks the packages' files instead",
    "HRDN-7230": "malware scanner (rkhunter/chkrootkit): pulls compilers and false positives on a container host",
    "DEB-0810": "apt-listbugs: interactive, it would stop unattended upgrades",
    "DEB-0811": "apt-listchanges: mails changelogs; no mail on the host",
    "NAME-4028": "DNS domain name: the host is addressed by IP and its public name in DNS",
    "MAIL-8818": "no mail server runs on the host",
    "TOOL-5002": "configuration management: pyinfra runs from the operator's machine, not on the host",
    "USB-3000": "USBGuard: cloud servers have no USB devices; usb-storage is disabled",
    "PKGS-7346": "purge old removed packages: Debian's remnants, no effect on the running system",
    "HTTP-6640": "Apache module: no Apache",
    "HTTP-6643": "Apache module: no Apache",
    "STRG-1846": "firewire: disabled by modprobe (install /bin/false), which Lynis does not read as disabled",
    "NETW-3200": "dccp/sctp/rds/tipc: disabled by modprobe (install /bin/false), which Lynis does not read as disabled",
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


def run(s: Settings) -> int:
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
