"""Rotating the public /v1 key under load on the local test host, through the same steps as
``scripts/rotate-key local vllm`` (operate.rotate_key.rotate with the local host's platform): a client
sends requests with the current key throughout and switches to the new key when told (the local
"App Platform" is whoever reads the state directory's api-key); not one request may fail, and
afterwards the old key gets 401. vLLM keeps its host-local key, so it is not restarted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from operate import rotate_key, smoke, targets
from testhost import runner
from tests.integration.conftest import sh

pytestmark = pytest.mark.vm

MAX_REQUESTS = 3000  # the client stops by itself: at most this many requests, or when told
PACE_S = 0.25  # ~4 requests/s: under nginx's per-client rate (10 r/s), so a refusal is a real failure


def status_with(ep: smoke.Endpoint, key: str) -> int:
    with smoke.client(ep) as conn:
        return conn.request("GET", "/models", headers={"Authorization": f"Bearer {key}"}).status_code


class LocalHosts(rotate_key.ConvergeHosts):
    """The session's host: converged with its own state dir and ports (scripts/converge local would
    use the default ones)."""

    def __init__(self, s, base: smoke.Endpoint):
        super().__init__("local", lambda key: replace(base, api_key=key))
        self.s = s

    def converge(self) -> None:
        runner.converge(json=True, s=self.s)


def test_rotation_under_load_drops_no_request(converged, timed, say):
    s = converged[0]
    base = smoke.endpoint(targets.local(s))
    old = base.api_key
    vllm_started = sh(s, "systemctl show -p ActiveEnterTimestampMonotonic --value llm-vllm")
    current = {"key": old}
    results: list[tuple[str, int | str]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set() and len(results) < MAX_REQUESTS:
            key = current["key"]
            try:
                results.append((key, status_with(base, key)))
            except Exception as exc:  # noqa: BLE001 (a refused or broken connection is a failed request too)
                results.append((key, type(exc).__name__))
            stop.wait(PACE_S)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    platform = rotate_key.LocalPlatform(s, on_switch=lambda new: current.update(key=new))
    try:
        with timed("rotate-key local under load", guest=s):
            rotate_key.rotate("vllm", platform, LocalHosts(s, base), rotate_key.Options(grace=3, poll=0.5), say=say)
        time.sleep(2)  # requests with the new key after the old one is gone
    finally:
        stop.set()
        thread.join(timeout=60)
    new = current["key"]
    failed = [(k == new and "new" or "old", code) for k, code in results if code != 200]
    say(f"rotation under load: {len(results)} requests, {len(failed)} failed")
    assert new != old and len(results) > 20
    assert not failed, failed[:10]
    assert {k for k, _ in results} == {old, new}  # the client really switched mid-rotation
    assert status_with(base, old) == 401 and status_with(base, new) == 200
    assert sh(s, "systemctl show -p ActiveEnterTimestampMonotonic --value llm-vllm") == vllm_started  # not restarted
