"""Host hardening, one module per concern, as dev-sec's hardening collection splits its ``os_hardening``
role: each module holds its concern's tunables with their defaults at the top (a frozen dataclass
``Tunables`` and its ``DEFAULTS``; another value is ``dataclasses.replace(DEFAULTS, ...)``), renders its
files from them and applies them in ``apply(data)``. The base role applies them in ``CONCERNS``'
order; the docker concern is applied by the docker role, once Docker is installed.

Each module's docstring names the Lynis controls it answers (``scripts/local-host audit``); what the
deploy leaves, and why, is ``testhost/audit.py``'s ``NOT_TAKEN``.
"""

from __future__ import annotations

import importlib

from components.hostdata import HostData

CONCERNS: tuple[str, ...] = (
    "sshd",
    "sysctl",
    "coredump",
    "login",
    "pam",
    "modprobe",
    "banner",
    "accounting",
    "fail2ban",
    "apparmor",
    "malware",
    "compilers",
)
"""The concerns the base role applies, in this order (``hosts/hardening/<name>.py``)."""


def apply(data: HostData) -> None:
    for name in CONCERNS:
        importlib.import_module(f"hosts.hardening.{name}").apply(data)
