from components import catalogue


def test_only_ssh_http_https_are_reachable_from_outside():
    assert catalogue.public_ports() == [80, 443]
    assert catalogue.admin_ports() == [22]
    exposed = {s.port for s in catalogue.HOST_SERVICES.values() if s.exposure != "local"}
    assert exposed == {22, 80, 443}


def test_every_local_service_binds_loopback_and_ports_are_unique():
    for s in catalogue.local_services():
        assert s.bind == "127.0.0.1", s
    ports = [s.port for s in catalogue.HOST_SERVICES.values()]
    assert len(ports) == len(set(ports))


def test_inbound_rules_restrict_ssh_to_admin_cidrs():
    rules = {r.port: r.sources for r in catalogue.inbound_rules(["198.51.100.0/24"])}
    assert rules == {22: ("198.51.100.0/24",), 80: ("0.0.0.0/0", "::/0"), 443: ("0.0.0.0/0", "::/0")}
