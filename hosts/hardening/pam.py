"""Password quality (PAM): pam_pwquality for any password set on the host. No account has one today
(SSH keys only); this holds for one set later, e.g. a console password in an emergency.

Lynis: AUTH-9262.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from pyinfra.operations import files

from components.hostdata import HostData
from hosts.file_ops import put_file

CONFIG = "/etc/security/pwquality.conf.d/60-llm-platform.conf"
# libpam-pwquality (hosts/packages.py) adds pam_pwquality to /etc/pam.d/common-password (pam-auth-update)


@dataclass(frozen=True)
class Tunables:
    minlen: int = 14
    minclass: int = 3  # of digits, upper, lower, other
    maxrepeat: int = 3
    enforce_for_root: bool = True


DEFAULTS = Tunables()


def pwquality_conf(t: Tunables = DEFAULTS) -> str:
    return (
        "# Managed by llm-platform (hosts/hardening/pam.py)\n"
        f"minlen = {t.minlen}\nminclass = {t.minclass}\nmaxrepeat = {t.maxrepeat}\n"
        + ("enforce_for_root\n" if t.enforce_for_root else "")
    )


def apply(data: HostData, t: Tunables = DEFAULTS) -> None:
    files.directory(name="pwquality: drop-in directory", path="/etc/security/pwquality.conf.d", mode="755")
    put_file(name="pwquality: password strength", src=io.StringIO(pwquality_conf(t)), dest=CONFIG, mode="644")
