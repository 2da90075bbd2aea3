from components.catalogue import SECRETS_DIR, service
from tests.hosts.helpers import assert_loopback_only


def test_vllm_service(root, data):
    svc = root.service("llm-vllm")
    assert svc.is_running and svc.is_enabled
    assert data.vllm.ref in root.check_output("docker ps --format '{{.Image}}'")


def test_vllm_on_loopback_only(root):
    assert_loopback_only(root, service("vllm").port)


def test_vllm_key_file_is_private_and_matches(root, api_key_sha256):
    env = root.file(f"{SECRETS_DIR}/vllm.env")
    assert env.mode == 0o600 and env.user == "root"
    key_sha = root.check_output(f"sed -n 's/^VLLM_API_KEY=//p' {SECRETS_DIR}/vllm.env | tr -d '\\n' | sha256sum | cut -d' ' -f1")
    assert key_sha == api_key_sha256


def test_vllm_health_and_key_check(root):
    assert root.check_output("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health") == "200"
    assert root.check_output("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/v1/models") == "401"
