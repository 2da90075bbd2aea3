"""What every settings model is built on, and how a rule names what it refuses: the pydantic base
(unknown keys refused, snake_case here and camelCase in the file, frozen), ``KeyedError`` for a rule
that names a key other than the one pydantic is looking at, and the "must be one of" check in both
forms. ``components.settings`` and ``components.host_settings`` declare the models on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class SettingsModel(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class KeyedError(ValueError):
    """Raised inside validators to name a key other than the one pydantic is looking at."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}: {allowed}")


def _must_be_one_of(allowed: tuple | list | Mapping) -> str:
    return "must be one of " + ", ".join(repr(a) for a in allowed)


def check_one_of(value: str, allowed: tuple, key: str, why: str = "") -> None:
    """A model rule's check: KeyedError naming ``key`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise KeyedError(key, value, _must_be_one_of(allowed) + (f" {why}" if why else ""))


def one_of(value: Any, allowed: tuple | list | Mapping) -> Any:
    """A field validator's check: ``value`` if it is one of ``allowed``, else ValueError."""
    if value not in allowed:
        raise ValueError(_must_be_one_of(allowed))
    return value
