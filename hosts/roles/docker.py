"""docker: the Docker engine from the distribution. Containers publish on 127.0.0.1 only (see the
container roles), so Docker's own iptables rules never open a port past ufw.

127.0.0.1 alone is not enough with Debian 12's Docker 20.10: its DNAT rule for a port published on
127.0.0.1 also matches a packet that arrives from the network addressed to 127.0.0.1, and forwards
it to the container (moby#45610, fixed in Docker 28 with a raw-table rule). The loopback guard below
is that rule: before Docker starts, the raw table drops every packet addressed to 127.0.0.0/8 (or
::1) that did not come from the loopback interface. The integration suite sends such a packet from
the scan namespace (``testhost.netns.loopback_probe``).

The daemon's own settings (no traffic between containers on the default bridge) are
``hosts/hardening/docker.py``.
"""

from __future__ import annotations

import io

from pyinfra.api import deploy

from components import roles
from components.hostdata import HostData
from hosts.file_ops import put_file
from hosts.hardening import docker as daemon_settings
from hosts.ops import Restart, apt_install, service_running
from hosts.packages import packages

GUARD_UNIT = "llm-loopback-guard"
GUARD_RULES = (("iptables", "127.0.0.0/8"), ("ip6tables", "::1/128"))


def guard_unit() -> str:
    start, stop = [], []
    for tool, dst in GUARD_RULES:
        rule = f"PREROUTING ! -i lo -d {dst} -j DROP"
        start.append(f"ExecStart=/bin/sh -c '{tool} -t raw -C {rule} 2>/dev/null || {tool} -t raw -I {rule}'")
        stop.append(f"ExecStop=-/usr/sbin/{tool} -t raw -D {rule}")
    return "\n".join(
        [
            "# Managed by llm-platform (hosts/roles/docker.py): packets for 127.0.0.0/8 or ::1 only from lo",
            "[Unit]",
            "Description=Drop loopback-addressed packets from the network (moby#45610)",
            "DefaultDependencies=no",
            "Before=docker.service network-pre.target",
            "Wants=network-pre.target",
            "[Service]",
            "Type=oneshot",
            "RemainAfterExit=yes",
            *start,
            *stop,
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


@deploy("docker")
def apply(data: HostData) -> None:
    # (docker.io brings iptables, which the guard below uses)
    apt_install("docker engine (docker.io)", packages("docker"))
    guard = Restart(GUARD_UNIT, daemon_reload=True, name="loopback guard: restart on change")
    guard.watch(
        put_file(
            name="loopback guard unit",
            src=io.StringIO(guard_unit()),
            dest=f"/etc/systemd/system/{GUARD_UNIT}.service",
            mode="644",
        )
    )
    guard.apply()
    service_running(name="loopback guard active and enabled", unit=GUARD_UNIT, units=roles.units(data.roles))
    daemon_settings.apply(data).apply()
    service_running(name="docker running", unit="docker", units=roles.units(data.roles))
