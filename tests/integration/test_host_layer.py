"""The host layer end to end on the local Debian 12 test host (Molecule's cycle, in pytest):

cached image → boot → a first converge killed midway and rerun to completion → a converge with zero
changes (the rerun finished clean) → the testinfra suite → a TCP scan from outside the guest
finding only 22/80/443 (and proving it can fail) → drift detection (three changes behind the
project's back, then clean after a converge) → the VM deleted outright and rebuilt from the base
image keeping /data, its host key and its certificate (an uninterrupted fresh converge on a new root) → a converge with zero changes → down.

Each stage prints its duration. The tests run in file order on the session's shared VM
(tests/integration/conftest.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from components.catalogue import SECRETS_DIR, service
from components.settings import OllamaSettings
from hosts.ops import APT_LISTS_MAX_AGE
from hosts.roles.docker import GUARD_UNIT
from operate import rebuild, smoke
from operate.drift import render
from operate.drift.cli import run_drift
from testhost import access as li
from testhost import netns, runner, vm
from testhost.config import DOMAIN, HOSTNAME
from tests.integration.conftest import COMMANDS, sh

pytestmark = pytest.mark.vm

EXPECTED_OPEN = [22, 80, 443]
LLAMAFACTORY_UI = service("llamafactory-webui").port


@pytest.fixture(scope="module")
def s(converged):
    return converged[0]


def converge(s) -> tuple[int, list[str]]:
    return runner.converge(json=True, s=s)


def test_first_converge_interrupted_then_completed(converged):
    _, started, changed, names = converged
    assert any("certificate for" in op for op in started), f"not interrupted at the certificate step: {started[-3:]}"
    # the rerun did what the killed run had not: the certificate and the HTTPS server
    assert changed > 0 and len(names) == changed
    assert any("certificate for" in n for n in names), names
    assert any("HTTPS server" in n for n in names), names


def test_second_converge_changes_nothing(s, timed):
    # A real host is converged hours after its lists were refreshed: make this one look so (lists
    # and apt's stamps two hours older than the refresh age) instead of waiting.
    aged = int(time.time()) - 2 * APT_LISTS_MAX_AGE
    sh(s, f"find /var/lib/apt/lists /var/lib/apt/periodic /var/cache/apt -maxdepth 1 -type f "
          f"-exec touch -d @{aged} {{}} +")
    stats: dict = {}
    stage = "converge (no-op, package lists aged past the refresh age)"
    with timed(stage, guest=s):
        changed, names = runner.converge(json=True, s=s, stats=stats)
    assert changed == 0, f"{changed} operations changed on the converge after the rerun: {names}"
    # facts read once, the last run's in one command (hosts/factcache.py): at most one remote
    # command per operation on a host that needs nothing
    assert 0 < COMMANDS[stage] <= stats["operations"], (COMMANDS[stage], stats)


def test_testinfra_suite_passes(s, timed):
    with timed("verify (testinfra)", guest=s):
        assert runner.verify(s) == 0


def test_https_endpoint_chat_completion_and_smoke_latency(s, timed, say):
    """What `scripts/local-host up` promises: a chat completion through nginx with the key, 401 without."""
    ep = smoke.local_endpoint(s)
    with timed(f"smoke ({smoke.SAMPLE_SIZE} prompts through nginx → vLLM)"):
        results = smoke.run(ep)
    text, good = smoke.report(results)
    say(text)
    assert good, text
    anonymous = smoke.Endpoint(ep.base_url, "not-the-key-0123456789", ep.model, ep.ca_file, ep.connect_host, ep.connect_port)
    assert "HTTP 401" in smoke.run(anonymous)[0].detail


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


def test_ui_login_only_from_admin_networks_and_not_via_loopback_packets(s, timed):
    """The scan namespace is an admin network: the UI's password prompt (401). A packet addressed to
    the guest's 127.0.0.1:7860 (the UI, no auth of its own) from that network is dropped; without
    the loopback guard Docker 20.10 forwards it to the container (moby#45610)."""
    code = netns.ns_run(s, ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
                            "--resolve", f"{DOMAIN}:443:{s.ns_guest_addr}", f"https://{DOMAIN}/llamafactory/"],
                        capture=True).stdout
    assert code == "401"
    with timed("loopback probe (guard on, then off)"):
        assert netns.loopback_probe(LLAMAFACTORY_UI, s) == "none"
        sh(s, f"systemctl stop {GUARD_UNIT}")
        try:
            assert netns.loopback_probe(LLAMAFACTORY_UI, s) == "open", "the probe should see the unguarded UI"
        finally:
            sh(s, f"systemctl start {GUARD_UNIT}")
        assert netns.loopback_probe(LLAMAFACTORY_UI, s) == "none"


def test_drift_names_what_changed_then_clean_after_converge(s, timed):
    """What the on-call reads at 3 a.m.: each change behind the project's back named in the report
    (text and JSON) by what would undo it, secret files by name only; clean after a converge."""
    # (a clean host's dry run proposing nothing is what the no-op converge above already showed)
    model = OllamaSettings().models[0]
    planted = "planted-secret-value-5c1f0e9d"
    sh(s, f"ufw allow {service('ollama').port}/tcp")
    sh(s, "systemctl stop nginx")
    sh(s, "echo '# tampered by hand' >> /etc/nginx/conf.d/llm-platform-auth.conf")
    sh(s, f"ollama rm {model}")
    sh(s, f"echo 'EXTRA_TOKEN={planted}' >> {SECRETS_DIR}/vllm.env")
    with timed("drift check (five changes behind our back; dry run + testinfra)", guest=s):
        report = run_drift("local", local_settings=s)
    text, doc = render.text(report), json.dumps(report.to_dict())
    assert report.exit_code == 1, text
    for out in (text, doc):
        assert f"ufw delete allow {service('ollama').port}/tcp" in out
        assert "systemctl start nginx.service" in out
        assert "llm-platform-auth.conf" in out and "-# tampered by hand" in out
        assert "/api/pull" in out and model in out
        assert f"{SECRETS_DIR}/vllm.env: content differs (secret: not shown)" in out
        assert planted not in out
        for secret in json.loads(li.secrets_file(s).read_text()).values():
            assert secret not in out
    # grouped: the failed checks of a role beneath its operations, with what they saw
    checks = [f for f in report.layers[1].findings if f.kind == "check"]
    assert checks and all(f.message for f in checks), text
    assert any(f.role == "proxy" for f in checks), text

    with timed("converge (repair)", guest=s):
        changed, names = converge(s)
    assert changed > 0, names
    # the dry run proposing nothing is the repair; the checks' pass is shown by the rebuild's verify
    with timed("drift check (after converge: dry run)", guest=s):
        report = run_drift("local", local_settings=s, checks=False)
    assert report.exit_code == 0, render.text(report)


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
    strict = subprocess.run(["ssh", "-F", str(s.ssh_config), "-o", f"UserKnownHostsFile={old_known}",
                             "-o", "StrictHostKeyChecking=yes", "-o", "ControlPath=none", HOSTNAME, "true"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
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
    from qemu.qmp.legacy import QEMUMonitorProtocol

    from testhost import vm

    def hmp(line: str) -> str:
        q = QEMUMonitorProtocol(str(s.qmp_socket))
        try:
            q.connect()
            q.settimeout(10)
            return str(q.cmd("human-monitor-command", **{"command-line": line}) or "")
        finally:
            q.close()

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
