"""The Docker daemon's settings (``/etc/docker/daemon.json``; the keys other tools write there, such as
the nvidia role's runtime, are kept). Applied by the docker role, which restarts Docker when they
change.

- ``icc: false``: no traffic between containers on the default bridge. Without it any container
  started there reaches the platform's containers at their bridge addresses, among them
  LLaMA-Factory's web UI, which has no authentication of its own (nginx adds it in front of the
  UI's loopback port). The host's own addresses and the bridge's gateway are closed by ufw's default
  deny. ``tests/hosts/test_docker.py`` checks it from a container.

CIS Docker Benchmark 2.1 (Lynis has no control for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.hostdata import HostData
from hosts.file_ops import json_settings
from hosts.ops import Restart

DAEMON_JSON = "/etc/docker/daemon.json"


@dataclass(frozen=True)
class Tunables:
    daemon: dict = field(default_factory=lambda: {"icc": False})


DEFAULTS = Tunables()


def apply(data: HostData, t: Tunables = DEFAULTS) -> Restart:
    """Write the settings; the returned ``Restart`` (of docker) is applied by the caller."""
    restart = Restart("docker", name="docker: restart on daemon settings change")
    restart.watch(
        json_settings(
            name="docker: daemon settings (no inter-container traffic on the default bridge)",
            path=DAEMON_JSON,
            settings=dict(t.daemon),
        )
    )
    return restart
