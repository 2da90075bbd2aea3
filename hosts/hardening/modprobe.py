"""Kernel modules a model host never needs: USB storage, FireWire, rare network protocols.

Lynis: USB-1000 (USB storage), STRG-1846 (FireWire). NETW-3200 still lists dccp/sctp/rds/tipc: it
does not read ``install ... /bin/false`` as disabled.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from components.hostdata import HostData
from hosts.file_ops import put_file

FILE = "/etc/modprobe.d/60-llm-platform.conf"


@dataclass(frozen=True)
class Tunables:
    disabled: tuple[str, ...] = ("usb-storage", "firewire-core", "firewire-ohci", "dccp", "sctp", "rds", "tipc")
    blacklisted: tuple[str, ...] = ("usb-storage", "firewire-core", "dccp", "sctp", "rds", "tipc")


DEFAULTS = Tunables()


def modprobe_conf(t: Tunables = DEFAULTS) -> str:
    return (
        "# Managed by llm-platform: drivers and protocols a model host never needs\n"
        + "".join(f"install {m} /bin/false\n" for m in t.disabled)
        + "".join(f"blacklist {m}\n" for m in t.blacklisted)
    )


def apply(data: HostData, t: Tunables = DEFAULTS) -> None:
    put_file(
        name="modprobe: no USB storage, firewire, rare protocols",
        src=io.StringIO(modprobe_conf(t)),
        dest=FILE,
        mode="644",
    )
