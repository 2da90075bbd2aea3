"""testinfra checks for a model host, runnable against any host:

    LLM_PLATFORM_HOST_DATA=host.json pytest tests/hosts --hosts=ssh://llmadmin@203.0.113.10 --sudo

``host.json`` is the host's entry of the stack's ``inventory`` output (``pulumi stack output
inventory --json``; ``scripts/local-host`` writes one for the local test host). The checks read
their expectations from it and from ``components.catalogue``, so they stay in step with the deploy.
Secrets are compared by sha256 only (``hosts.secret_values`` on this side, the host's files on the other).
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from components.hostdata import HostData
from hosts import secret_values


def _load_host_data() -> HostData:
    path = os.environ.get("LLM_PLATFORM_HOST_DATA")
    if not path:
        raise pytest.UsageError("set LLM_PLATFORM_HOST_DATA to the host's inventory JSON (see tests/hosts/conftest.py)")
    doc = json.loads(open(path).read())
    if "hosts" in doc:
        doc = doc["hosts"][0]
    if "data" in doc:
        doc = doc["data"]
    return HostData.model_validate({k: v for k, v in doc.items() if k in HostData.model_fields})


@pytest.fixture(scope="session")
def data() -> HostData:
    return _load_host_data()


@pytest.fixture(scope="module")
def root(host):
    """All checks run as root (pass --sudo, or connect as root)."""
    assert host.check_output("id -u") == "0", "run the host checks with --sudo"
    return host


@pytest.fixture(scope="session")
def api_key_sha256() -> str:
    return hashlib.sha256(secret_values.get("vllmApiKey").encode()).hexdigest()


@pytest.fixture(scope="session")
def local_key_sha256() -> str:
    """vLLM's own key: host-local, never the public /v1 key."""
    return hashlib.sha256(secret_values.get("vllmLocalKey").encode()).hexdigest()
