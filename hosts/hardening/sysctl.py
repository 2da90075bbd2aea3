"""sysctl: the kernel's network and process hardening, in one file that ufw applies too (the
firewall role points ``IPT_SYSCTL`` at it: ufw's own file would turn ``log_martians`` off again).

Lynis: KRNL-6000 (its profile's sysctl keys). Forwarding stays on: Docker's bridge networks need it.
``kernel.modules_disabled`` stays 0: Docker and ufw load modules after boot.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from components.hostdata import HostData
from hosts.file_ops import put_file
from hosts.ops import Restart

FILE = "/etc/sysctl.d/60-llm-platform.conf"

SYSCTL: dict[str, str] = {
    # Docker needs forwarding (bridge networks); everything else is the usual server set.
    "kernel.kptr_restrict": "2",
    "kernel.dmesg_restrict": "1",
    "kernel.sysrq": "0",
    "kernel.yama.ptrace_scope": "1",
    "kernel.unprivileged_bpf_disabled": "1",
    "net.core.bpf_jit_harden": "2",
    "fs.protected_fifos": "2",
    "fs.protected_regular": "2",
    "fs.suid_dumpable": "0",
    "kernel.core_uses_pid": "1",  # a core dump, if ever allowed again, never overwrites another
    "dev.tty.ldisc_autoload": "0",
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.default.accept_redirects": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv4.conf.all.log_martians": "1",
    "net.ipv4.conf.default.log_martians": "1",
    "net.ipv4.conf.all.rp_filter": "1",
    "net.ipv4.conf.all.accept_source_route": "0",
    "net.ipv4.conf.default.accept_source_route": "0",  # interfaces made later (Docker's bridges)
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv4.icmp_echo_ignore_broadcasts": "1",
    "net.ipv4.icmp_ignore_bogus_error_responses": "1",
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
}


@dataclass(frozen=True)
class Tunables:
    values: dict[str, str] = field(default_factory=lambda: dict(SYSCTL))  # key → value


DEFAULTS = Tunables()


def sysctl_conf(t: Tunables = DEFAULTS) -> str:
    return "# Managed by llm-platform (hosts/hardening/sysctl.py)\n" + "".join(
        f"{k} = {v}\n" for k, v in t.values.items()
    )


def apply_sysctl(name: str) -> Restart:
    """``sysctl -p`` of the platform's sysctl file, run when a watched operation changed (the
    file itself; ufw's pointer to it in the firewall role)."""
    return Restart("sysctl", name=name, command=[f"sysctl -q -p {FILE}"])


def apply(data: HostData, t: Tunables = DEFAULTS) -> None:
    sysctl = apply_sysctl("sysctl: apply on change")
    sysctl.watch(put_file(name="sysctl hardening", src=io.StringIO(sysctl_conf(t)), dest=FILE, mode="644"))
    sysctl.apply()
