"""The Pulumi SDK internals this project relies on, in one place: the offline plan's
(``components/offline.py``) and the program's read of its own config (``stack_config``).

Pulumi's documented unit-test path (``pulumi.runtime.set_mocks`` + ``Mocks``) answers resources but
does not expose what was registered with which options, nor a way to run a program synchronously
outside the engine. For that the offline plan subclasses ``MockMonitor``, reads ``rpc``'s property
helpers, runs the program with ``run_pulumi_func`` and waits with ``_sync_await``; none of them is
public API; nor is ``pulumi.runtime.config.CONFIG``, where ``set_all_config`` (inline programs, mock
tests) leaves the config. They are imported here and nowhere else, and ``tests/unit/test_pulumi_sdk.py`` checks
each name and signature at the pinned SDK version (``pyproject.toml``), so an SDK upgrade that moves
one fails that test with the name, not the plan with a traceback.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import pulumi
from pulumi.runtime import config as _config
from pulumi.runtime import mocks as _mocks
from pulumi.runtime import rpc as _rpc
from pulumi.runtime import stack as _stack
from pulumi.runtime.sync_await import _sync_await

MockMonitor = _mocks.MockMonitor
is_rpc_secret = _rpc.is_rpc_secret
unwrap_rpc_secret = _rpc.unwrap_rpc_secret
deserialize_properties = _rpc.deserialize_properties


def sync_await(awaitable: Any) -> Any:
    """Run an awaitable to completion on Pulumi's event loop."""
    return _sync_await(awaitable)


def forget_root_stack() -> None:
    """Before ``set_mocks``: the next program gets its own root stack resource (several plans in
    one process)."""
    pulumi.runtime.settings.ROOT.set(None)


def run_program(program: Callable[[], Any]) -> None:
    """Run ``program`` as the stack's program under the mocks set with ``set_mocks``."""
    sync_await(_stack.run_pulumi_func(program))


def stack_config() -> tuple[dict[str, str], set[str] | None]:
    """The running program's config (``namespace:key`` → string): the CLI's ``PULUMI_CONFIG``
    environment, overlaid with what ``set_all_config`` set (an Automation API inline program, Pulumi's
    mock tests); and the keys that are secrets, likewise, or None where the runtime marks none at all
    (an engine that does not say)."""
    raw = {**_config.get_config_env(), **_config.CONFIG.get()}
    marked = "PULUMI_CONFIG_SECRET_KEYS" in os.environ or any(_config.is_config_secret(k) for k in raw)
    secure = set(_config.get_config_secret_keys_env()) | {k for k in raw if _config.is_config_secret(k)}
    return raw, (secure if marked else None)


# What the test checks: each internal and the parameters the offline plan passes it.
USED = {
    "pulumi.runtime.mocks.MockMonitor": (MockMonitor.__init__, ["self", "mocks"]),
    "pulumi.runtime.mocks.MockMonitor.RegisterResource": (MockMonitor.RegisterResource, ["self", "request"]),
    "pulumi.runtime.rpc.deserialize_properties": (deserialize_properties, ["props_struct", "keep_unknowns"]),
    "pulumi.runtime.rpc.is_rpc_secret": (is_rpc_secret, ["value"]),
    "pulumi.runtime.rpc.unwrap_rpc_secret": (unwrap_rpc_secret, ["value"]),
    "pulumi.runtime.stack.run_pulumi_func": (_stack.run_pulumi_func, ["func"]),
    "pulumi.runtime.sync_await._sync_await": (_sync_await, ["awaitable"]),
}
