"""Core dumps: none (they may hold secrets or prompts), by limits and by systemd-coredump.

Lynis: KRNL-5820.
"""

from __future__ import annotations

import io

from pyinfra.operations import files

from components.hostdata import HostData

LIMITS_FILE = "/etc/security/limits.d/60-llm-platform.conf"
COREDUMP_FILE = "/etc/systemd/coredump.conf.d/60-llm-platform.conf"
LIMITS = "# Managed by llm-platform: no core dumps (they may hold secrets or prompts)\n* hard core 0\n"
COREDUMP = "# Managed by llm-platform\n[Coredump]\nStorage=none\nProcessSizeMax=0\n"


def apply(data: HostData) -> None:
    files.put(name="no core dumps (limits)", src=io.StringIO(LIMITS), dest=LIMITS_FILE, mode="644")
    files.put(name="no core dumps (systemd)", src=io.StringIO(COREDUMP), dest=COREDUMP_FILE, mode="644")
