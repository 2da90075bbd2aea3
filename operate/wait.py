"""One way to wait for something: ``wait_until`` asks a predicate at an interval until it holds or
a timeout passes (the operator commands and the local test host; no dependency)."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float,
    what: str | Callable[[], str],
    *,
    error: Callable[[str], BaseException] = TimeoutError,
    on_wait: Callable[[], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Call ``predicate`` until it returns something true, and return that.

    Once more than ``timeout`` seconds have passed without, raise ``error(message)``: ``what`` is the
    message, or a function called then for it (to say what was seen last, or a log's tail). Before
    each pause of ``interval`` seconds ``on_wait`` runs (a progress line or dot). An exception from
    ``predicate`` goes to the caller: a wait that must stop early (the process it waits for died)
    raises there. ``clock`` and ``sleep`` are for tests."""
    start = clock()
    while True:
        result = predicate()
        if result:
            return result
        if clock() - start > timeout:
            raise error(what() if callable(what) else what)
        if on_wait is not None:
            on_wait()
        sleep(interval)
