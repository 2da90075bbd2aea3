"""Logins: login.defs' umask, password aging and hashing rounds (no account has a password today:
SSH keys only; these hold for any password set later).

Lynis: AUTH-9328 (umask), AUTH-9286 (password aging), AUTH-9230 (hashing rounds).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra.operations import files

from components.hostdata import HostData


@dataclass(frozen=True)
class Tunables:
    umask: str = "027"
    pass_max_days: int = 365
    pass_min_days: int = 1
    sha_crypt_rounds: int = 65536


DEFAULTS = Tunables()


def login_defs(t: Tunables = DEFAULTS) -> dict[str, str]:
    """/etc/login.defs key → value."""
    return {
        "UMASK": t.umask,
        "PASS_MAX_DAYS": str(t.pass_max_days),
        "PASS_MIN_DAYS": str(t.pass_min_days),
        "SHA_CRYPT_MIN_ROUNDS": str(t.sha_crypt_rounds),
        "SHA_CRYPT_MAX_ROUNDS": str(t.sha_crypt_rounds),
    }


LOGIN_DEFS = login_defs()


def apply(data: HostData, t: Tunables = DEFAULTS) -> None:
    for key, value in login_defs(t).items():
        files.line(
            name=f"login.defs: {key} {value}",
            path="/etc/login.defs",
            extended_regex=True,
            line=f"^#?[[:space:]]*{key}[[:space:]]+[0-9]+[[:space:]]*$",
            replace=f"{key}\t{value}",
        )
