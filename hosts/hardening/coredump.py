"""Core dumps: none (they may hold secrets or prompts): by limits, by systemd-coredump and in login
shells.

Lynis: KRNL-5820 (limits, systemd-coredump, ``ulimit -c 0`` in /etc/profile.d), KRNL-6000
(``fs.suid_dumpable``, ``kernel.core_uses_pid``: hosts/hardening/sysctl.py).
"""

from __future__ import annotations

import io

from components.hostdata import HostData
from hosts.file_ops import put_file

LIMITS_FILE = "/etc/security/limits.d/60-llm-platform.conf"
COREDUMP_FILE = "/etc/systemd/coredump.conf.d/60-llm-platform.conf"
LIMITS = "# Managed by llm-platform: no core dumps (they may hold secrets or prompts)\n* hard core 0\n"
COREDUMP = "# Managed by llm-platform\n[Coredump]\nStorage=none\nProcessSizeMax=0\n"
PROFILE_FILE = "/etc/profile.d/60-llm-platform-core.sh"
PROFILE = "# Managed by llm-platform: no core dumps from login shells\nulimit -c 0\n"


def apply(data: HostData) -> None:
    put_file(name="no core dumps (limits)", src=io.StringIO(LIMITS), dest=LIMITS_FILE, mode="644")
    put_file(name="no core dumps (systemd)", src=io.StringIO(COREDUMP), dest=COREDUMP_FILE, mode="644")
    put_file(name="no core dumps (login shells)", src=io.StringIO(PROFILE), dest=PROFILE_FILE, mode="644")
