"""scripts/reach: is the runner's egress address inside a stack's host.adminCidrs? One line, before
any host check (the workflows and scripts/drift --runner-ip)."""

from __future__ import annotations

import pytest

from components import stackfile
from operate import cli as operate_cli
from operate import reach
from operate.drift import cli, cloud, hosts
from operate.drift.report import LayerResult


@pytest.fixture
def stacks(tmp_path, monkeypatch):
    """A stacks/ directory of our own: the tests must not depend on the committed files' ranges."""
    monkeypatch.setattr(stackfile, "STACKS_DIR", tmp_path)

    def write(name: str, body: str) -> None:
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config:\n" + body)

    write("prod", "  llm-platform:phase: 2\n  llm-platform:host:\n    adminCidrs: [198.18.0.0/24, 2001:db8:42::/48]\n")
    write("dev", "  llm-platform:phase: 1\n  llm-platform:host:\n    adminCidrs: [198.18.0.0/24]\n")
    write("lab", "  llm-platform:homelab:\n    models: [llama3.2:3b]\n")
    write("odd", "  llm-platform:phase: 2\n  llm-platform:host:\n    adminCidrs: ['198.18.0.1/24']\n")
    return write


def test_a_runner_outside_admin_cidrs_is_told_so_in_one_line(stacks):
    v = reach.check("prod", "198.51.100.7")
    assert v.code == reach.OUTSIDE == 1
    assert v.line.startswith("runner 198.51.100.7 is outside adminCidrs of prod (198.18.0.0/24, 2001:db8:42::/48)")
    assert "HOSTS_RUNNER" in v.line and "\n" not in v.line


def test_a_runner_inside_passes(stacks):
    for ip in ("198.18.0.77", "2001:db8:42::1"):
        v = reach.check("prod", ip)
        assert v.code == reach.INSIDE and v.line.startswith(f"runner {ip} is inside adminCidrs of prod"), v.line
    assert reach.check("prod", "2001:db8:43::1").code == reach.OUTSIDE


def test_a_stack_without_a_model_host_has_nothing_to_reach(stacks):
    assert reach.check("dev", "198.51.100.7") == reach.Verdict(0, "dev: no model host in phase 1; nothing to reach")
    assert reach.check("lab", "198.51.100.7").code == reach.INSIDE


def test_undecided_is_exit_2_with_one_line(stacks):
    cases = {
        ("prod", ""): "could not tell the runner's egress address",
        ("prod", "not-an-ip"): "runner address 'not-an-ip' is not an IP address",
        ("nope", "198.51.100.7"): "no stack file stacks/Pulumi.nope.yaml (stacks: dev, lab, odd, prod)",
        ("odd", "198.51.100.7"): "odd: host.adminCidrs:",
    }
    for (stack, ip), line in cases.items():
        v = reach.check(stack, ip)
        assert v.code == reach.UNDECIDED and v.line.startswith(line), v.line


def test_cli_prints_the_line_and_exits_with_its_code(stacks, capsys):
    assert operate_cli.main(["reach", "prod", "--runner-ip", "198.51.100.7"]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("runner 198.51.100.7 is outside")
    assert operate_cli.main(["reach", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "exit codes (one table" in help_text and "here: the address is inside" in help_text
    assert "here: the address is outside" in help_text and "here: could not decide" in help_text
    # an unknown stack is a usage error now (3), which the workflows' `*)` branch reads as undecided
    assert operate_cli.main(["reach", "nope", "--runner-ip", "198.51.100.7"]) == 3
    assert capsys.readouterr().err.startswith("error: argument STACK: no stack file")


def test_drift_with_the_runner_outside_reports_hosts_not_checked_without_trying_ssh(stacks, monkeypatch, capsys):
    from operate import automation

    monkeypatch.setattr(cloud, "check_cloud", lambda stack: LayerResult("cloud", "clean"))

    def no_ssh(*a, **kw):
        raise AssertionError("a host check ran although the runner cannot reach the hosts")

    monkeypatch.setattr(hosts, "check_hosts", no_ssh)
    monkeypatch.setattr(automation, "select_stack", no_ssh)
    report = cli.run_drift("prod", runner_ip="198.51.100.7")
    assert report.exit_code == 2 and report.status == "incomplete"
    [nc] = report.not_checked
    assert nc["layer"] == "hosts" and nc["reason"].startswith("runner 198.51.100.7 is outside adminCidrs of prod")
    assert "runner 198.51.100.7 is outside adminCidrs of prod" in capsys.readouterr().err  # said before any check
