"""base: admin user, SSH keys only, unattended security upgrades, time sync, the tools roles rely on."""

from __future__ import annotations

import io

from pyinfra.api import deploy
from pyinfra.operations import files, server, systemd

from hosts.hostdata import HostData
from hosts.ops import account, apt_install
from hosts.packages import packages

SSHD_HARDENING = """\
# Managed by llm-platform (hosts/roles/base.py)
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
PubkeyAuthentication yes
PermitEmptyPasswords no
"""

AUTO_UPGRADES = """\
// Managed by llm-platform: daily package lists and unattended security upgrades
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
"""


@deploy("base")
def apply(data: HostData) -> None:
    if data.apt_proxy:
        files.put(
            name="apt: use the caching proxy",
            src=io.StringIO(f'Acquire::http::Proxy "{data.apt_proxy}";\n'),
            dest="/etc/apt/apt.conf.d/01llm-platform-proxy",
        )
    else:
        files.file(name="apt: no proxy", path="/etc/apt/apt.conf.d/01llm-platform-proxy", present=False)
    apt_install("base packages", packages("base"))

    account(name=f"admin user {data.admin_user}", user=data.admin_user, groups=["sudo"], shell="/bin/bash",
            home=f"/home/{data.admin_user}")
    server.user_authorized_keys(name=f"admin user {data.admin_user}: SSH keys", user=data.admin_user,
                                public_keys=data.ssh_public_keys)
    files.put(
        name="admin user: passwordless sudo",
        src=io.StringIO(f"{data.admin_user} ALL=(ALL) NOPASSWD:ALL\n"),
        dest=f"/etc/sudoers.d/90-llm-platform-{data.admin_user}",
        mode="440",
    )

    sshd = files.put(
        name="sshd: keys only, no root login",
        src=io.StringIO(SSHD_HARDENING),
        dest="/etc/ssh/sshd_config.d/50-llm-platform.conf",
        mode="644",
    )
    server.shell(name="sshd: validate configuration", commands=["sshd -t"], _if=sshd.did_change)
    systemd.service(name="sshd: reload on change", service="ssh", running=True, enabled=True, reloaded=True,
                    _if=sshd.did_change)

    files.put(name="unattended security upgrades", src=io.StringIO(AUTO_UPGRADES),
              dest="/etc/apt/apt.conf.d/20auto-upgrades", mode="644")
    systemd.service(name="unattended-upgrades enabled", service="unattended-upgrades", running=True, enabled=True)
    systemd.service(name="time sync", service="systemd-timesyncd", running=True, enabled=True)
