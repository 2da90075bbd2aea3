from components import catalogue


def test_only_ssh_http_https_are_reachable_from_outside():
    rules = catalogue.inbound_rules(["198.51.100.0/24"])
    assert [r.port for r in rules if r.sources == (catalogue.ANYWHERE_V4, catalogue.ANYWHERE_V6)] == [80, 443]
    assert [r.port for r in rules if r.sources == ("198.51.100.0/24",)] == [22]
    exposed = {s.port for s in catalogue.HOST_SERVICES.values() if s.exposure != "local"}
    assert exposed == {22, 80, 443}


def test_every_local_service_binds_loopback_and_ports_are_unique():
    for s in catalogue.HOST_SERVICES.values():
        assert s.exposure != "local" or s.bind == catalogue.LOOPBACK, s
    ports = [s.port for s in catalogue.HOST_SERVICES.values() if s.exposure == "local"]
    assert len(ports) == len(set(ports))


def test_inbound_rules_restrict_ssh_to_admin_cidrs():
    rules = {r.port: r.sources for r in catalogue.inbound_rules(["198.51.100.0/24"])}
    assert rules == {22: ("198.51.100.0/24",), 80: ("0.0.0.0/0", "::/0"), 443: ("0.0.0.0/0", "::/0")}


def test_service_ports_and_addresses_are_written_only_in_the_catalogue():
    """One fact, one place: no port of a host service or app component, no "anywhere" CIDR and no
    data-volume mount option is spelled out in the product code or the host checks; they import
    it from components/catalogue.py. (components/upstream.py quotes upstream files at their
    versions, so it may name the ports those files name; docs and stand-ins are not product code.)"""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    # the platform's own ports (22, 80 and 443 are also widths, percentages and URL defaults: the
    # firewall, nginx and check code reads them from the catalogue all the same)
    ports = {s.port for s in catalogue.HOST_SERVICES.values() if s.exposure == "local"}
    ports |= set(catalogue.APP_PORTS.values()) | set(catalogue.CONTAINER_PORTS.values())
    port = re.compile(r"(?<![\d.\-/x])(" + "|".join(map(str, sorted(ports))) + r")(?![\d.%])")
    literal = [catalogue.ANYWHERE_V4, catalogue.ANYWHERE_V6, catalogue.DATA_MOUNT_OPTIONS]
    allowed = {root / "components" / "catalogue.py", root / "components" / "upstream.py"}
    found = []
    for top in ("components", "hosts", "operate", "stacks", "tests/hosts"):
        for path in sorted((root / top).rglob("*")):
            if path.suffix not in (".py", ".j2", ".yaml") or path in allowed:
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                hits = [m.group(1) for m in port.finditer(line)] + [x for x in literal if x in line]
                found += [f"{path.relative_to(root)}:{n}: {h}: {line.strip()}" for h in hits]
    assert not found, "\n".join(found)


def test_the_test_above_finds_a_planted_literal(tmp_path):
    """The scan's pattern matches a port as the code would write it, and not a longer number."""
    import re

    ports = [s.port for s in catalogue.HOST_SERVICES.values() if s.exposure == "local"]
    pattern = re.compile(r"(?<![\d.\-/x])(" + "|".join(map(str, ports)) + r")(?![\d.%])")
    assert pattern.search('url = "http://127.0.0.1:11434/api"')
    assert pattern.search("publish 127.0.0.1:7860:7860")
    assert not pattern.search("size = 80000")
    assert not pattern.search("gpu-h100x1-80gb 3.8000")
