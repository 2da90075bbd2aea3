"""The on-call's rebuild on the local test host (host B, tests/integration/conftest.py): the VM
deleted outright and rebuilt from the base image keeping its data volume, its host key and its
certificate (an uninterrupted fresh converge on a new root) → a converge with zero changes → drift
with the host's SSH closed to the operator ("not checked", never drift).

Host B's volume is the one that arrived after boot (``converged_b``): the rebuild attaches it to the
new VM, as the cloud's volume attachment is made again for a new server.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from operate import rebuild
from operate.drift import render
from operate.drift.cli import run_drift
from testhost import runner, vm
from testhost.config import DOMAIN, HOSTNAME
from tests.integration.conftest import qmp, sh

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def s(converged_b):
    return converged_b[0]


def converge(s) -> tuple[int, list[str]]:
    return runner.converge(json=True, s=s)


def pebble_issued(s) -> int:
    """Certificates the running pebble issued: its log's lines since its last start."""
    log = (s.state_dir / "pebble.log").read_text(errors="replace")
    return log.rsplit("Generated new root issuer", 1)[-1].count("Issued certificate serial")


def test_rebuild_keeps_data(s, timed, say, tmp_path):
    """The server deleted outright (stopped, its disk gone; the data disk stays, as a cloud volume
    does), then `rebuild-host local`: the same host key (a client with the old known_hosts connects
    with strict checking), no new certificate from pebble, /data's bytes kept."""
    sh(s, "head -c 16M /dev/urandom > /data/models/keep-me.bin && sync")
    before = sh(s, "sha256sum /data/models/keep-me.bin").split()[0]
    old_instance = sh(s, "cat /var/lib/cloud/data/instance-id")
    sh(s, "touch /root/only-on-the-old-root")
    cert = f"/etc/letsencrypt/live/{DOMAIN}/cert.pem"
    old_cert = sh(s, f"openssl x509 -in {cert} -noout -fingerprint -sha256")
    old_known = tmp_path / "known_hosts.before"
    shutil.copy(s.known_hosts, old_known)
    issued = pebble_issued(s)
    assert issued >= 1
    vm.stop(s)
    s.overlay.unlink()
    os.replace(s.state_dir / "late-volume.qcow2", s.data_disk)  # the volume with the data, attached to the new VM
    with timed("rebuild-host local (VM deleted outright)"):
        stages = rebuild.rebuild_local(s)
    say(stages.summary())
    notes = dict((name, note) for name, _, note in stages.timings)
    assert list(notes) == ["replace", "ssh", "converge", "verify"]
    assert notes["replace"].startswith("created VM"), notes
    assert sh(s, "cat /var/lib/cloud/data/instance-id") != old_instance  # really a new host
    assert sh(s, "test -e /root/only-on-the-old-root && echo yes || echo no") == "no"
    assert sh(s, "findmnt -n -o SOURCE,LABEL /data").split() == ["/dev/vdb", "llm-data"]
    assert sh(s, "sha256sum /data/models/keep-me.bin").split()[0] == before
    assert int(notes["converge"].split()[0]) > 0, notes  # a fresh converge on the new root
    strict = subprocess.run(
        [
            "ssh",
            "-F",
            str(s.ssh_config),
            "-o",
            f"UserKnownHostsFile={old_known}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ControlPath=none",
            HOSTNAME,
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert strict.returncode == 0, strict.stderr
    assert pebble_issued(s) == issued, "the rebuild asked pebble for a new certificate"
    assert sh(s, f"openssl x509 -in {cert} -noout -fingerprint -sha256") == old_cert


def test_converge_after_rebuild_changes_nothing(s, timed):
    with timed("converge (no-op, rebuilt host)", guest=s):
        changed, names = converge(s)
    assert changed == 0, f"{changed} operations changed on the second converge of the rebuilt host: {names}"


def test_drift_with_ssh_closed_to_the_operator_is_not_checked_never_drift(s, timed):
    """The on-call at 3 a.m. with the host unreachable: qemu's forward of the guest's SSH to this
    machine removed (QMP), so the operator's SSH is refused as a firewall in the way would. Drift
    exits 2 with the hosts "not checked" and one line why, never 1 (drift), in text and JSON."""

    def hmp(line: str) -> str:
        return str(qmp(s, "human-monitor-command", timeout=10, **{"command-line": line}) or "")

    vm.close_ssh_master(s)
    said = hmp(f"hostfwd_remove n0 tcp:127.0.0.1:{s.ssh_port}")
    assert "invalid" not in said.lower() and "could not" not in said.lower(), said
    try:
        with timed("drift check (SSH closed to the operator)"):
            report = run_drift("local", local_settings=s)
    finally:
        hmp(f"hostfwd_add n0 tcp:127.0.0.1:{s.ssh_port}-:22")
    text, doc = render.text(report), report.to_dict()
    assert report.exit_code == 2, text
    assert doc["not_checked"] and "llm-local" in doc["not_checked"][0]["reason"], doc["not_checked"]
    assert len(doc["not_checked"][0]["reason"].splitlines()) == 1 and "Traceback" not in text
    assert "DRIFT (exit 1)" not in text
    vm.wait_for_ssh(s, timeout=60)
