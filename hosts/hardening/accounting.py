"""Accounting and audit trail: auditd watching accounts, sudo, sshd and the platform's secrets;
process accounting (acct); sysstat.

Lynis: ACCT-9628/9630/9632/9634 (auditd and its rules), ACCT-9622 (process accounting), ACCT-9626
(sysstat).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from pyinfra.operations import files

from components import roles
from components.hostdata import HostData
from hosts.file_ops import put_file
from hosts.ops import Restart, service_running

RULES_FILE = "/etc/audit/rules.d/60-llm-platform.rules"


@dataclass(frozen=True)
class Tunables:
    # path → key of the audit rule that watches writes and attribute changes to it
    watches: tuple[tuple[str, str], ...] = (
        ("/etc/passwd", "identity"),
        ("/etc/group", "identity"),
        ("/etc/shadow", "identity"),
        ("/etc/sudoers", "sudo"),
        ("/etc/sudoers.d/", "sudo"),
        ("/etc/ssh/sshd_config", "sshd"),
        ("/etc/ssh/sshd_config.d/", "sshd"),
        ("/etc/llm-platform/", "llm-secrets"),  # the secrets and the ACME CA bundle
    )


DEFAULTS = Tunables()


def audit_rules(t: Tunables = DEFAULTS) -> str:
    return "# Managed by llm-platform: who changed accounts, sudo, SSH or the platform's secrets\n" + "".join(
        f"-w {path} -p wa -k {key}\n" for path, key in t.watches
    )


def apply(data: HostData, t: Tunables = DEFAULTS) -> None:
    units = roles.units(data.roles)
    auditd = Restart("auditd", name="auditd: load rules on change", command=["augenrules --load"])
    auditd.watch(put_file(name="auditd rules", src=io.StringIO(audit_rules(t)), dest=RULES_FILE, mode="640"))
    service_running(name="auditd running and enabled", unit="auditd", units=units)
    auditd.apply()
    sysstat = Restart("sysstat")
    sysstat.watch(
        files.line(name="sysstat: collect", path="/etc/default/sysstat", line=r"^ENABLED=.*$", replace='ENABLED="true"')
    )
    sysstat.apply()
    service_running(name="sysstat running and enabled", unit="sysstat", units=units)
    service_running(name="process accounting", unit="acct", units=units)
