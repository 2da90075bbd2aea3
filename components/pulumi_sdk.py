"""The Pulumi SDK internals the offline plan (``components/offline.py``) relies on, in one place.

Pulumi's documented unit-test path (``pulumi.runtime.set_mocks`` + ``Mocks``) answers resources but
does not expose what was registered with which options, nor a way to run a program synchronously
outside the engine. For that the offline plan subclasses ``MockMonitor``, reads ``rpc``'s property
helpers, runs the program with ``run_pulumi_func`` and waits with ``_sync_await``; none of them is
public API. They are imported here and nowhere else, and ``tests/unit/test_pulumi_sdk.py`` checks
each name and signature at the pinned SDK version (``pyproject.toml``), so an SDK upgrade that moves
one fails that test with the name, not the plan with a traceback.
"""

from __future__ import annotations

from typing import Any, Callable

import pulumi
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
