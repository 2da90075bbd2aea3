import json

from components.catalogue import DATA_DIRS, service
from tests.hosts.helpers import assert_loopback_only, units


def test_ollama_service(root):
    assert units(root, "ollama")["ollama"] == {"active": True, "enabled": True}


def test_ollama_listens_on_loopback_only(root):
    assert_loopback_only(root, service("ollama").port)


def test_ollama_models_under_data_and_pulled(root, data):
    env = root.check_output("systemctl show ollama -p Environment")
    assert f"OLLAMA_MODELS={DATA_DIRS['ollama']}/models" in env
    assert f"OLLAMA_KEEP_ALIVE={data.ollama.keep_alive}" in env
    assert f"OLLAMA_NUM_PARALLEL={data.ollama.num_parallel}" in env
    tags = json.loads(root.check_output(f"curl -fsS {service('ollama').url}/api/tags"))
    names = {m["name"] for m in tags["models"]} | {m["name"].removesuffix(":latest") for m in tags["models"]}
    for model in data.ollama.models:
        assert model in names, model
    assert root.file(f"{DATA_DIRS['ollama']}/models").user == "ollama"
