"""Secret values for the host layer: from the operator's environment, never from inventory data.

Looked up, in order:
1. ``LLM_SECRET_<NAME>`` environment variables, NAME in upper snake case (``vllmApiKey`` →
   ``LLM_SECRET_VLLM_API_KEY``);
2. a JSON file ``{"vllmApiKey": "..."}`` named by ``LLM_PLATFORM_SECRETS_FILE`` (must not be readable
   by group/others). ``scripts/converge STACK`` writes one from the stack's Pulumi secrets; the local
   test host keeps its own generated one.
Values are only ever written to the host as files of mode 0600 (``hosts.ops.secret_file``).
"""

from __future__ import annotations

import json
import os
import re
import stat
from functools import lru_cache
from pathlib import Path


class MissingSecret(RuntimeError):
    pass


def env_name(key: str) -> str:
    return "LLM_SECRET_" + re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper()


@lru_cache(maxsize=1)
def _file_values() -> dict[str, str]:
    path = os.environ.get("LLM_PLATFORM_SECRETS_FILE")
    if not path:
        return {}
    p = Path(path)
    mode = p.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MissingSecret(f"{p} is readable by group/others (mode {oct(mode & 0o777)}); chmod 600 it")
    return json.loads(p.read_text())


def get(key: str) -> str:
    value = os.environ.get(env_name(key)) or _file_values().get(key)
    if not value:
        raise MissingSecret(
            f"secret {key!r} is not set: export {env_name(key)}=... or point LLM_PLATFORM_SECRETS_FILE at a "
            f"0600 JSON file holding it (scripts/converge STACK writes one from the stack's secrets)"
        )
    return value


def get_optional(key: str) -> str | None:
    return os.environ.get(env_name(key)) or _file_values().get(key) or None
