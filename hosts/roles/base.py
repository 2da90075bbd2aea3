"""base: admin user, SSH keys only, unattended security upgrades, time sync, the tools roles rely
on, and the host's hardening (``hosts/hardening/``, one module per concern).

Hardening follows what Lynis (``scripts/local-host audit``) suggests where it fits a single-purpose
server; the suggestions not taken, and why, are listed in ``testhost/audit.py``.
"""

from __future__ import annotations

import io

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import files, server

from components import roles
from components.hostdata import HostData
from hosts import hardening
from hosts.file_ops import UPLOAD_DIR, put_file
from hosts.ops import account, apt_install, service_running
from hosts.packages import packages

AUTO_UPGRADES = """\
// Managed by llm-platform: daily package lists and unattended security upgrades
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
"""

PENDING_SECURITY = "apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep -c '^Inst .*-security' || true"


@deploy("base")
def apply(data: HostData) -> None:

    if data.apt_proxy:
        put_file(
            name="apt: use the caching proxy",
            src=io.StringIO(f'Acquire::http::Proxy "{data.apt_proxy}";\n'),
            dest="/etc/apt/apt.conf.d/01llm-platform-proxy",
        )
    else:
        files.file(name="apt: no proxy", path="/etc/apt/apt.conf.d/01llm-platform-proxy", present=False)
    apt_install("base packages", packages("base"))

    # Security updates the host is missing now (unattended-upgrades applies later ones daily).
    # Counted from a simulation, so an up-to-date host reports no change.
    pending = host.get_fact(Command, command=PENDING_SECURITY)
    if pending and pending != "0":
        server.shell(
            name=f"apply {pending} pending security upgrades", commands=["apt-get update -q", "unattended-upgrade"]
        )

    account(
        name=f"admin user {data.admin_user}",
        user=data.admin_user,
        groups=["sudo"],
        shell="/bin/bash",
        home=f"/home/{data.admin_user}",
    )
    server.user_authorized_keys(
        name=f"admin user {data.admin_user}: SSH keys", user=data.admin_user, public_keys=data.ssh_public_keys
    )
    # the private directory secret uploads go through (see hosts.file_ops.secret_file)
    files.directory(
        name="private upload directory", path=UPLOAD_DIR, user=data.admin_user, group=data.admin_user, mode="700"
    )
    put_file(
        name="admin user: passwordless sudo",
        src=io.StringIO(f"{data.admin_user} ALL=(ALL) NOPASSWD:ALL\n"),
        dest=f"/etc/sudoers.d/90-llm-platform-{data.admin_user}",
        mode="440",
    )

    # sshd, kernel, core dumps, logins, drivers, banner, audit trail, brute force: one module per concern
    hardening.apply(data)

    put_file(
        name="unattended security upgrades",
        src=io.StringIO(AUTO_UPGRADES),
        dest="/etc/apt/apt.conf.d/20auto-upgrades",
        mode="644",
    )
    service_running(name="unattended-upgrades enabled", unit="unattended-upgrades", units=roles.units(data.roles))
    service_running(name="time sync", unit="systemd-timesyncd", units=roles.units(data.roles))
