from hosts.file_ops import UPLOAD_DIR
from hosts.hardening.login import LOGIN_DEFS
from hosts.hardening.sysctl import SYSCTL
from tests.hosts.helpers import stats, sysctls, units


def test_admin_user_with_keys_and_sudo(root, data):
    groups, _, keys = root.check_output(
        f"id -nG {data.admin_user}; echo ---; cat /home/{data.admin_user}/.ssh/authorized_keys"
    ).partition("---")
    assert "sudo" in groups.split()
    for key in data.ssh_public_keys:
        assert key.split()[1] in keys


def test_sshd_refuses_passwords_and_root(root):
    effective = root.check_output("sshd -T")
    assert "passwordauthentication no" in effective
    assert "kbdinteractiveauthentication no" in effective
    assert "permitrootlogin no" in effective


def test_sshd_admin_only_without_forwarding(root, data):
    effective = root.check_output("sshd -T").splitlines()
    for line in (
        f"allowusers {data.admin_user}",
        "x11forwarding no",
        "allowtcpforwarding no",
        "allowagentforwarding no",
        "maxauthtries 3",
        "loglevel VERBOSE",
    ):
        assert line in effective, line


def test_ssh_password_login_is_refused_on_the_wire(root):
    # Ask the server itself which methods it offers: publickey only.
    # (wrapped: testinfra's SSH backend would take ssh's own exit code 255 for a lost connection)
    out = root.check_output(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o PreferredAuthentications=password -o PubkeyAuthentication=no nobody@127.0.0.1 true 2>&1; echo exit=$?"
    )
    assert "Permission denied (publickey)" in out and out.endswith("exit=255")


def test_unattended_security_upgrades(root):
    status, _, conf = root.check_output(
        "dpkg-query -W -f='${Status}' unattended-upgrades; echo; cat /etc/apt/apt.conf.d/20auto-upgrades"
    ).partition("\n")
    assert status == "install ok installed", status
    assert 'APT::Periodic::Unattended-Upgrade "1";' in conf


def test_time_sync(root):
    assert units(root, "systemd-timesyncd")["systemd-timesyncd"] == {"active": True, "enabled": True}


def test_kernel_hardening_applied(root, data):
    have = sysctls(root, *SYSCTL, "net.ipv4.ip_forward")
    for key, want in SYSCTL.items():
        assert have[key] == want, key
    if "docker" in data.roles:
        assert have["net.ipv4.ip_forward"] == "1", "Docker's bridge networks need forwarding"


def test_no_core_dumps_and_strict_logins(root):
    limits = root.check_output("cat /etc/security/limits.d/*.conf").split("\n")
    assert "* hard core 0" in limits
    assert "Storage=none" in root.check_output("systemd-analyze cat-config systemd/coredump.conf").split("\n")
    defs = dict(
        line.split(None, 1)
        for line in root.file("/etc/login.defs").content_string.splitlines()
        if line.strip() and not line.startswith("#") and len(line.split()) == 2
    )
    for key, want in LOGIN_DEFS.items():
        assert defs.get(key) == want, key


def test_uploads_pass_through_a_private_empty_directory(root, data):
    d = stats(root, UPLOAD_DIR)[UPLOAD_DIR]
    assert d and d["type"] == "directory" and d["mode"] == 0o700 and d["user"] == data.admin_user
    assert root.check_output(f"ls -A {UPLOAD_DIR}") == "", "an upload was left behind"


def test_brute_force_bans_and_audit_trail(root):
    assert "sshd" in root.check_output("fail2ban-client status")
    for svc, state in units(root, "fail2ban", "auditd", "acct", "sysstat").items():
        assert state["active"], svc
    assert "-k llm-secrets" in root.check_output("auditctl -l")
