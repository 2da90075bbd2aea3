"""Secret values for the host layer: from the operator's environment, never from inventory data.

Looked up, in order:
1. ``LLM_SECRET_<NAME>`` environment variables, NAME in upper snake case (``vllmApiKey`` →
   ``LLM_SECRET_VLLM_API_KEY``);
2. a JSON file ``{"vllmApiKey": "..."}`` named by ``LLM_PLATFORM_SECRETS_FILE`` (must not be readable
   by group/others). ``scripts/converge STACK`` writes one from the stack's Pulumi secrets; the local
   test host keeps its own generated one.
Values are only ever written to the host as files of mode 0600 (``hosts.file_ops.secret_file``).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from components.secrets import HOST_SECRET, HOST_SECRET_RULE


class MissingSecret(RuntimeError):
    pass


def check(key: str, value: str) -> str:
    """``value`` if it can be written safely into the host's files; else MissingSecret (the message
    never shows the value)."""
    if not HOST_SECRET.fullmatch(value):
        raise MissingSecret(f"secret {key!r} ({len(value)} characters) {HOST_SECRET_RULE}")
    return value


def env_name(key: str) -> str:
    return "LLM_SECRET_" + re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper()


FILE_ENV = "LLM_PLATFORM_SECRETS_FILE"
MAX_FILE_BYTES = 64 << 10


def read_file(path: str | Path, private: bool = True) -> dict[str, str]:
    """The secrets file's ``{"key": "value"}``; every way it can be malformed is one MissingSecret line
    naming the file (never a value). A UTF-8 byte-order mark is read past (Windows editors write one).
    ``private``: refuse a file group/others can read (``known_values`` reads it regardless, to scrub)."""
    from components.files import Unreadable, read_bounded

    p = Path(path)
    why = f"{p} ({FILE_ENV})"
    try:
        raw = read_bounded(p, MAX_FILE_BYTES)
    except Unreadable as exc:
        raise MissingSecret(f"{why}: {exc}") from None
    mode = p.stat().st_mode
    if private and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MissingSecret(f"{why} is readable by group/others (mode {oct(mode & 0o777)}); chmod 600 it")
    try:
        values = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise MissingSecret(f"{why}: not UTF-8 text") from None
    except ValueError as exc:  # the message and position only: JSONDecodeError's doc holds the secrets
        where = (
            f" ({exc.msg} at line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        )
        raise MissingSecret(f"{why}: not valid JSON{where}") from None
    if not isinstance(values, dict):
        raise MissingSecret(f'{why}: must hold a JSON object like {{"vllmApiKey": "..."}}, not {type(values).__name__}')
    for key, value in values.items():
        if not isinstance(value, str):
            raise MissingSecret(f"{why}: the value of {key[:64]!r} must be a string, not {type(value).__name__}")
    return values


@lru_cache(maxsize=1)
def _file_values() -> dict[str, str]:
    path = os.environ.get(FILE_ENV)
    return read_file(path) if path else {}


def get(key: str) -> str:
    value = os.environ.get(env_name(key)) or _file_values().get(key)
    if not value:
        raise MissingSecret(
            f"secret {key!r} is not set: export {env_name(key)}=... or point LLM_PLATFORM_SECRETS_FILE at a "
            f"0600 JSON file holding it (scripts/converge STACK writes one from the stack's secrets)"
        )
    return check(key, value)


def get_optional(key: str) -> str | None:
    value = os.environ.get(env_name(key)) or _file_values().get(key) or None
    return None if value is None else check(key, value)


def known_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret value ``env`` (default: this process's environment) holds, in ``LLM_SECRET_*``
    variables or the ``LLM_PLATFORM_SECRETS_FILE`` file, longest first: what ``scrub`` hides."""
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if k.startswith("LLM_SECRET_") and v}
    path = env.get(FILE_ENV)
    if path:
        try:
            values |= {v for v in read_file(path, private=False).values() if v}
        except MissingSecret:
            pass  # the deploy that reads it refuses it with the reason
    return sorted(values, key=len, reverse=True)


def scrub(text: str, values: list[str]) -> str:
    """``text`` with each of ``values`` replaced by ``***`` (reports, never files on the host)."""
    for v in values:
        text = text.replace(v, "***")
    return text
