"""firewall: ufw, default deny incoming; exactly the inbound rules of components.catalogue
(22 from the admin CIDRs, 80/443 from anywhere) — the same rules the cloud firewall applies."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files

from components import catalogue
from components.hostdata import HostData
from hosts.hardening.sysctl import FILE as SYSCTL_FILE
from hosts.hardening.sysctl import apply_sysctl
from hosts.ops import apt_install, ufw_policy, ufw_rule
from hosts.packages import packages


def wanted_rules(admin_cidrs: list[str]) -> list[str]:
    rules: list[str] = []
    for r in catalogue.inbound_rules(admin_cidrs):
        for source in r.sources:
            rule = ufw_rule(r.port, source)
            if rule not in rules:
                rules.append(rule)
    return rules


@deploy("firewall")
def apply(data: HostData) -> None:
    apt_install("ufw", packages("firewall"))
    # ufw applies a sysctl file whenever it starts or reloads; its own turns log_martians off again,
    # so it applies the platform's instead (hosts/hardening/sysctl.py)
    sysctl = apply_sysctl("ufw: sysctl applied on change")
    sysctl.watch(
        files.line(
            name="ufw: apply the base role's sysctl file",
            path="/etc/default/ufw",
            line=r"^IPT_SYSCTL=.*$",
            replace=f"IPT_SYSCTL={SYSCTL_FILE}",
        )
    )
    sysctl.apply()
    ufw_policy(name="ufw: default deny, only the catalogue's inbound rules", rules=wanted_rules(data.admin_cidrs))
