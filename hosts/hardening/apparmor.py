"""AppArmor, the kernel's mandatory access control (on in Debian's and Ubuntu's kernels): its tools
and the service that loads the profiles at boot. With it, Docker confines every container with its
``docker-default`` profile.

Lynis: MACF-6204, MACF-6208, MACF-6290.
"""

from __future__ import annotations

from components import roles
from components.hostdata import HostData
from hosts.ops import service_running

# the apparmor package: hosts/packages.py (base)


def apply(data: HostData) -> None:
    service_running(name="apparmor: profiles loaded at boot", unit="apparmor", units=roles.units(data.roles))
