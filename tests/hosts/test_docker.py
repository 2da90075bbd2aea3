def test_docker_running(root):
    svc = root.service("docker")
    assert svc.is_running and svc.is_enabled


def test_no_container_publishes_past_loopback(root):
    ports = root.check_output("docker ps --format '{{.Ports}}'").split()
    published = [p for p in " ".join(ports).replace(",", " ").split() if "->" in p]
    assert published, "expected the platform's containers to publish ports"
    for p in published:
        assert p.startswith("127.0.0.1:"), p
