"""fail2ban: bans repeated SSH failures (the proxy role adds a jail for the UI's basic auth); the
admin CIDRs are never banned.

Lynis: DEB-0880, TOOL-5190.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from pyinfra.operations import files

from components import roles
from components.hostdata import HostData
from hosts.file_ops import put_file
from hosts.ops import Restart, service_running

JAIL = "/etc/fail2ban/jail.local"  # read after jail.conf and jail.d/*.conf; package updates never touch it
OLD_JAIL = "/etc/fail2ban/jail.d/60-llm-platform.local"  # where it was before


@dataclass(frozen=True)
class Tunables:
    bantime: str = "1h"
    findtime: str = "10m"
    maxretry: int = 5


DEFAULTS = Tunables()


def jail(admin_cidrs: list[str], t: Tunables = DEFAULTS) -> str:
    return (
        "# Managed by llm-platform: ban repeated SSH failures (the proxy role adds the UI's basic auth).\n"
        "# Debian 12 logs SSH to the journal only, hence the systemd backend for sshd.\n"
        "[DEFAULT]\n"
        f"bantime = {t.bantime}\n"
        f"findtime = {t.findtime}\n"
        f"maxretry = {t.maxretry}\n"
        f"ignoreip = 127.0.0.1/8 ::1 {' '.join(admin_cidrs)}\n"
        "\n"
        "[sshd]\n"
        "enabled = true\n"
        "backend = systemd\n"
    )


def apply(data: HostData, t: Tunables = DEFAULTS) -> None:
    fail2ban = Restart("fail2ban")
    fail2ban.watch(
        put_file(name="fail2ban: SSH jail", dest=JAIL, mode="644", src=io.StringIO(jail(data.admin_cidrs, t)))
    )
    fail2ban.watch(files.file(name="fail2ban: no SSH jail in jail.d", path=OLD_JAIL, present=False))
    fail2ban.apply()
    service_running(name="fail2ban running and enabled", unit="fail2ban", units=roles.units(data.roles))
