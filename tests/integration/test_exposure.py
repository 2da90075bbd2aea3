"""What the rebuilt host exposes (host B, after test_rebuild.py): a TCP scan of every port from outside
the guest (the scan namespace, an admin network) finds only 22/80/443, and a port opened on purpose
is found (the scan can fail).

These ran on host A before; on the rebuilt host they also check that a host made again from the base
image by ``rebuild-host`` is closed as tightly as the first one, and they even out the two chains'
durations (tests/conftest.py CHAINS).
"""

from __future__ import annotations

import pytest

from testhost import netns
from tests.integration.conftest import sh

pytestmark = pytest.mark.vm

EXPECTED_OPEN = [22, 80, 443]


@pytest.fixture(scope="module")
def s(converged_b):
    return converged_b[0]


def test_scan_from_outside_finds_only_ssh_http_https(s, timed):
    with timed("scan (all TCP ports from the namespace)"):
        assert netns.scan("1-65535", s) == EXPECTED_OPEN


def test_scan_sees_a_port_that_is_opened(s, timed):
    with timed("scan (a port opened on purpose)"):
        sh(s, "systemd-run --unit=llm-scan-probe python3 -m http.server 9999 && ufw allow 9999/tcp")
        try:
            assert netns.scan("9990-10000,22,80,443", s) == [22, 80, 443, 9999]
        finally:
            sh(s, "ufw delete allow 9999/tcp; systemctl stop llm-scan-probe")
        assert netns.scan("9990-10000,22,80,443", s) == EXPECTED_OPEN
