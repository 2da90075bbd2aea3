from hosts.roles.firewall import wanted_rules


def test_ufw_active_default_deny(root):
    status = root.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "deny (incoming)" in status


def test_ufw_rules_are_exactly_the_catalogue(root, data):
    added = [line[4:] for line in root.check_output("ufw show added").splitlines() if line.startswith("ufw ")]
    assert sorted(added) == sorted(wanted_rules(data.admin_cidrs))
