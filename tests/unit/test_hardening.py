"""hosts/hardening/: one module per concern, each with its tunables' defaults; what each renders is
what the Lynis control it answers reads (the control's own parsing, from Debian 12's lynis 3.0.8)."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
from pathlib import Path

import pytest

from hosts import hardening
from hosts.hardening import banner, coredump, docker, fail2ban, login, pam, sshd, sysctl

# lynis 3.0.8 include/tests_banners
LEGAL_BANNER_STRINGS = (
    "audit access authori condition connect consent continu criminal enforce evidence forbidden "
    "intrusion law legal legislat log monitor owner penal policy policies privacy private prohibited "
    "record restricted secure subject system terms warning"
).split()


def test_one_module_per_concern_each_with_an_apply():
    here = Path(hardening.__file__).parent
    modules = {p.stem for p in here.glob("*.py")} - {"__init__"}
    assert set(hardening.CONCERNS) | {"docker"} == modules  # docker: applied by the docker role
    for name in modules:
        mod = importlib.import_module(f"hosts.hardening.{name}")
        assert callable(mod.apply), name
        assert "Lynis" in mod.__doc__ or "CIS" in mod.__doc__, f"{name}: name the control it answers"


def test_every_tunable_has_a_default():
    for name in (*hardening.CONCERNS, "docker"):
        mod = importlib.import_module(f"hosts.hardening.{name}")
        if hasattr(mod, "Tunables"):
            assert mod.DEFAULTS == mod.Tunables(), name  # constructible with no argument: every field has a default


def test_banner_has_the_legal_words_lynis_counts():
    """BANN-7126/7130: more than 4 of Lynis' keywords (case-blind substrings), else 0 of 1 point."""
    found = [w for w in LEGAL_BANNER_STRINGS if w in banner.DEFAULTS.text.lower()]
    assert len(found) > 4, found


def test_sysctl_takes_the_follow_ups_and_keeps_forwarding():
    values = sysctl.DEFAULTS.values
    assert values["net.ipv4.conf.default.accept_source_route"] == "0"
    assert values["kernel.core_uses_pid"] == "1"
    assert not any(k.endswith("forwarding") or k == "kernel.modules_disabled" for k in values)  # Docker
    assert sysctl.sysctl_conf().splitlines()[1:] == [f"{k} = {v}" for k, v in values.items()]


def test_ulimit_line_as_lynis_reads_it():
    """KRNL-5820 takes the third space-separated word of the last ``ulimit -c`` line of profile.d/*.sh."""
    line = [ln for ln in coredump.PROFILE.splitlines() if ln.startswith("ulimit -c ")][-1]
    assert line.split(" ")[2] == "0"
    assert coredump.PROFILE_FILE.endswith(".sh") and coredump.PROFILE_FILE.startswith("/etc/profile.d/")


def test_profile_snippet_is_valid_sh():
    assert subprocess.run(["sh", "-n", "-c", coredump.PROFILE]).returncode == 0


def test_fail2ban_jail_is_jail_local():
    """DEB-0880 looks for /etc/fail2ban/**/jail.local; the old jail.d file is removed."""
    assert fail2ban.JAIL == "/etc/fail2ban/jail.local" and fail2ban.OLD_JAIL != fail2ban.JAIL
    text = fail2ban.jail(["203.0.113.0/24"])
    assert "ignoreip = 127.0.0.1/8 ::1 203.0.113.0/24\n" in text and "[sshd]\nenabled = true\n" in text


def test_tunables_reach_the_rendered_files():
    t = dataclasses.replace(sshd.DEFAULTS, max_sessions=2, max_auth_tries=2)
    conf = sshd.sshd_config("ops", t)
    assert "MaxSessions 2\n" in conf and "MaxAuthTries 2\n" in conf and "AllowUsers ops\n" in conf
    assert "MaxSessions 4\n" in sshd.sshd_config("ops")
    assert login.login_defs(dataclasses.replace(login.DEFAULTS, umask="077"))["UMASK"] == "077"
    assert "minlen = 20\n" in pam.pwquality_conf(dataclasses.replace(pam.DEFAULTS, minlen=20))
    assert "enforce_for_root" not in pam.pwquality_conf(dataclasses.replace(pam.DEFAULTS, enforce_for_root=False))


def test_docker_daemon_closes_inter_container_traffic():
    assert docker.DEFAULTS.daemon == {"icc": False}
    assert docker.DAEMON_JSON == "/etc/docker/daemon.json"


@pytest.mark.parametrize(
    "current, changed",
    [
        (None, True),
        ("", True),
        ('{"icc": true}', True),
        ('{"icc": false}', False),
        ('{"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}, "icc": false}', False),
    ],
)
def test_daemon_json_merged_not_replaced(current, changed):
    from hosts.file_ops import merged_json

    want, did = merged_json(current, {"icc": False}, "/etc/docker/daemon.json")
    assert did is changed and want["icc"] is False
    if current and "runtimes" in current:
        assert "nvidia" in want["runtimes"]
