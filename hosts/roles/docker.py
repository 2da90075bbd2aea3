"""docker: the Docker engine from the distribution. Containers publish on 127.0.0.1 only (see the
container roles), so Docker's own iptables rules never open a port past ufw."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import systemd

from hosts.hostdata import HostData
from hosts.ops import apt_install
from hosts.packages import packages


@deploy("docker")
def apply(data: HostData) -> None:
    apt_install("docker engine (docker.io)", packages("docker"))
    systemd.service(name="docker running", service="docker", running=True, enabled=True)
