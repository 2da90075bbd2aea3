def test_admin_user_with_keys_and_sudo(root, data):
    user = root.user(data.admin_user)
    assert user.exists and "sudo" in user.groups
    keys = root.file(f"/home/{data.admin_user}/.ssh/authorized_keys").content_string
    for key in data.ssh_public_keys:
        assert key.split()[1] in keys


def test_sshd_refuses_passwords_and_root(root):
    effective = root.check_output("sshd -T")
    assert "passwordauthentication no" in effective
    assert "kbdinteractiveauthentication no" in effective
    assert "permitrootlogin no" in effective


def test_ssh_password_login_is_refused_on_the_wire(root):
    # Ask the server itself which methods it offers: publickey only.
    # (wrapped: testinfra's SSH backend would take ssh's own exit code 255 for a lost connection)
    out = root.check_output(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o PreferredAuthentications=password -o PubkeyAuthentication=no nobody@127.0.0.1 true 2>&1; echo exit=$?"
    )
    assert "Permission denied (publickey)" in out and out.endswith("exit=255")


def test_unattended_security_upgrades(root):
    assert root.package("unattended-upgrades").is_installed
    conf = root.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    assert 'APT::Periodic::Unattended-Upgrade "1";' in conf


def test_time_sync(root):
    svc = root.service("systemd-timesyncd")
    assert svc.is_enabled and svc.is_running
