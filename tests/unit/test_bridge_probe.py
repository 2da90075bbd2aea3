"""The default-bridge probe of tests/hosts/test_docker.py, run here on loopback sockets."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.hosts.helpers import CONNECT_PROBE, bridge_probe_command, parse_probe


def test_probe_tells_open_from_closed():
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: refused
    try:
        targets = [f"127.0.0.1:{listening.getsockname()[1]}", f"127.0.0.1:{closed.getsockname()[1]}"]
        out = subprocess.run(
            [sys.executable, "-c", CONNECT_PROBE, *targets], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    finally:
        listening.close()
        closed.close()
    assert parse_probe(out) == {targets[0]: "open", targets[1]: "closed"}


def test_probe_command_is_one_shell_command_with_the_ports():
    cmd = bridge_probe_command("vllm/vllm-openai:v0.11.0", [7860, 8000], 443)
    assert subprocess.run(["sh", "-n", "-c", cmd]).returncode == 0
    assert "docker run --rm --network bridge --entrypoint python3 vllm/vllm-openai:v0.11.0 " in cmd
    assert 't="gateway:443"' in cmd and "for p in 7860 8000;" in cmd


def test_parse_probe():
    assert parse_probe("gateway:443=open 172.17.0.3:7860=timeout\n") == {
        "gateway:443": "open",
        "172.17.0.3:7860": "timeout",
    }
