"""The host layer end to end on the local Debian 12 test host (Molecule's cycle, in pytest):

cached image → boot → a first converge killed midway and rerun to completion → a converge with zero
changes (the rerun finished clean) → the testinfra suite → the loopback guard → drift detection
(five changes behind the project's back, then clean after a converge). The rebuild from scratch runs
on the second host, side by side (test_rebuild.py), and the TCP scans run on that rebuilt host
(test_exposure.py).

Each stage prints its duration. The tests run in file order on host A
(tests/integration/conftest.py).
"""

from __future__ import annotations

import json
import time

import pytest

from components.catalogue import SECRETS_DIR, service
from components.host_settings import OllamaSettings
from hosts.ops import APT_LISTS_MAX_AGE
from hosts.roles.docker import GUARD_UNIT
from operate import smoke, targets
from operate.drift import render
from operate.drift.cli import run_drift
from testhost import netns, runner
from testhost.config import DOMAIN
from tests.integration.conftest import COMMANDS, sh

pytestmark = pytest.mark.vm

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
    sh(
        s,
        f"find /var/lib/apt/lists /var/lib/apt/periodic /var/cache/apt -maxdepth 1 -type f "
        f"-exec touch -d @{aged} {{}} +",
    )
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
    ep = smoke.endpoint(targets.local(s))
    with timed(f"smoke ({smoke.SAMPLE_SIZE} prompts through nginx → vLLM)"):
        results = smoke.run(ep)
    text, good = smoke.report(results)
    say(text)
    assert good, text
    anonymous = smoke.Endpoint(
        ep.base_url, "not-the-key-0123456789", ep.model, ep.ca_file, ep.connect_host, ep.connect_port
    )
    assert "HTTP 401" in smoke.run(anonymous)[0].detail


def test_ui_login_only_from_admin_networks_and_not_via_loopback_packets(s, timed):
    """The scan namespace is an admin network: the UI's password prompt (401). A packet addressed to
    the guest's 127.0.0.1:7860 (the UI, no auth of its own) from that network is dropped; without
    the loopback guard Docker 20.10 forwards it to the container (moby#45610)."""
    code = netns.ns_run(
        s,
        [
            "curl",
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
            "--resolve",
            f"{DOMAIN}:443:{s.ns_guest_addr}",
            f"https://{DOMAIN}/llamafactory/",
        ],
        capture=True,
    ).stdout
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
        for secret in targets.local(s).secrets.values():
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
