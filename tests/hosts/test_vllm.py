import json

from components.catalogue import SECRETS_DIR, service
from tests.hosts.helpers import assert_loopback_only, stats, units

VLLM = service("vllm").url


def test_vllm_service(root, data):
    assert units(root, "llm-vllm")["llm-vllm"] == {"active": True, "enabled": True}
    assert data.vllm.ref in root.check_output("docker ps --format '{{.Image}}'")


def test_vllm_on_loopback_only(root):
    assert_loopback_only(root, service("vllm").port)


def test_vllm_key_file_is_private_and_holds_the_host_local_key(root, local_key_sha256, api_key_sha256):
    env = stats(root, f"{SECRETS_DIR}/vllm.env")[f"{SECRETS_DIR}/vllm.env"]
    assert env["mode"] == 0o600 and env["user"] == "root"
    key_sha = root.check_output(
        f"sed -n 's/^VLLM_API_KEY=//p' {SECRETS_DIR}/vllm.env | tr -d '\\n' | sha256sum | cut -d' ' -f1"
    )
    assert key_sha == local_key_sha256 and key_sha != api_key_sha256  # a public key rotation never restarts vLLM


def test_vllm_health_and_key_check(root):
    assert root.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {VLLM}/health") == "200"
    assert root.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {VLLM}/v1/models") == "401"


def test_vllm_serves_the_configured_model(root, data):
    """/v1/models names the served model and, as `root`, the model actually loaded: an image whose
    entrypoint ignores a positional model (the API server module, vllm-project/vllm#32292) would load
    its default model under the configured name."""
    key = f"$(sed -n 's/^VLLM_API_KEY=//p' {SECRETS_DIR}/vllm.env)"
    out = root.check_output(f'curl -s --max-time 20 -H "Authorization: Bearer {key}" {VLLM}/v1/models')
    models = {m["id"]: m.get("root") for m in json.loads(out)["data"]}
    assert models == {data.vllm.served_model_name: data.vllm.model}, models
