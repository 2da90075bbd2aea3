"""The legal banner shown before login (``/etc/issue``, ``/etc/issue.net``).

Lynis: BANN-7126, BANN-7130.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from components.hostdata import HostData
from hosts.file_ops import put_file

FILES = ("/etc/issue", "/etc/issue.net")


@dataclass(frozen=True)
class Tunables:
    text: str = (
        "Authorised access only. This system is private: unauthorised access is prohibited,\n"
        "activity on it is monitored and logged, and misuse may be reported to law enforcement.\n"
    )


DEFAULTS = Tunables()


def apply(data: HostData, t: Tunables = DEFAULTS) -> None:
    for path in FILES:
        put_file(name=f"legal banner {path}", src=io.StringIO(t.text), dest=path, mode="644")
