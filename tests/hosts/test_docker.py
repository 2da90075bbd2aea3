from components.catalogue import HOST_SERVICES, service
from hosts.roles.docker import GUARD_UNIT
from tests.hosts.helpers import bridge_probe_command, parse_probe, units


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


def test_a_container_on_the_default_bridge_reaches_no_local_service(root, data):
    """Any container on Docker's default bridge (here one started from the vLLM image, already on the
    host, so no registry is needed) reaches none of the loopback-only services (LLaMA-Factory's web
    UI, which has no authentication of its own, the published APIs, Ollama, the node exporter): not
    through the bridge's gateway, not through the host's own addresses, and not at the platform
    containers' own bridge addresses (Docker's ``icc: false``, hosts/hardening/docker.py). nginx's 443
    on the gateway must answer: a probe that reaches nothing at all proves nothing."""
    control = service("https").port
    local = [s.port for s in HOST_SERVICES.values() if s.exposure == "local"]
    out = root.check_output(bridge_probe_command(data.vllm.ref, local, control))
    result = parse_probe(out.strip().splitlines()[-1])
    assert result.pop(f"gateway:{control}") == "open", (
        f"the probe reached nothing, not even nginx on the gateway's {control}"
    )
    reached = sorted(t for t, state in result.items() if state == "open")
    assert not reached, f"a container on the default bridge reaches {reached}"
    assert any(t.endswith(f":{service('llamafactory-webui').port}") for t in result)
