from hosts.roles.docker import GUARD_UNIT
from tests.hosts.helpers import units


def test_docker_running(root):
    assert units(root, "docker")["docker"] == {"active": True, "enabled": True}


def test_no_container_publishes_past_loopback(root):
    ports = root.check_output("docker ps --format '{{.Ports}}'").split()
    published = [p for p in " ".join(ports).replace(",", " ").split() if "->" in p]
    assert published, "expected the platform's containers to publish ports"
    for p in published:
        assert p.startswith("127.0.0.1:"), p


def test_loopback_guard_drops_loopback_addressed_packets_from_the_network(root):
    # the rule that keeps 127.0.0.1-published containers off the network (moby#45610); the
    # integration suite sends such a packet from outside the guest
    assert units(root, GUARD_UNIT)[GUARD_UNIT]["enabled"]
    assert "-A PREROUTING -d 127.0.0.0/8 ! -i lo -j DROP" in root.check_output("iptables -t raw -S PREROUTING")
