"""firewall: ufw, default deny incoming; exactly the inbound rules of components.catalogue
(22 from the admin CIDRs, 80/443 from anywhere) — the same rules the cloud firewall applies."""

from __future__ import annotations

from pyinfra.api import deploy

from components import catalogue
from hosts.hostdata import HostData
from hosts.packages import packages
from hosts.ops import apt_install, ufw_policy, ufw_rule


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
    ufw_policy(name="ufw: default deny, only 22 (admins), 80, 443", rules=wanted_rules(data.admin_cidrs))
