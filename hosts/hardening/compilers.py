"""Compilers usable by root only. The deploy installs none, but needrestart brings binutils and with
it the assembler; a ``dpkg-statoverride`` keeps it at 0750 root:root across upgrades.

Lynis: HRDN-7222.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.hostdata import HostData
from hosts.file_ops import stat_override


@dataclass(frozen=True)
class Tunables:
    # real files (not their /usr/bin/as-style symlinks); absent ones are skipped
    binaries: tuple[str, ...] = ("/usr/bin/x86_64-linux-gnu-as", "/usr/bin/aarch64-linux-gnu-as")
    mode: str = "0750"


DEFAULTS = Tunables()


def apply(data: HostData, t: Tunables = DEFAULTS) -> None:
    for path in t.binaries:
        stat_override(name=f"compilers: {path} for root only", path=path, user="root", group="root", mode=t.mode)
