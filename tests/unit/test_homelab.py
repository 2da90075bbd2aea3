"""The homelab: compose file validity and the pulumi-docker stack that reads it, under mocks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components import offline, stackfile, yamlio
from components.config import SettingsError
from components.homelab import ComposeError, load_compose
from tests.unit.conftest import by_type, plan_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "homelab" / "compose.yml"


def test_compose_file_is_valid():
    """Against the Compose specification's schema (offline), and by `docker compose config` too
    where a Docker CLI with the compose plugin exists (not on this project's CI machine)."""
    exe = Path(sys.executable).with_name("check-jsonschema")
    res = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        res = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


def test_the_schema_check_catches_a_broken_compose_file(tmp_path):
    doc = yamlio.load(COMPOSE.read_text())
    doc["services"]["ollama"]["imagee"] = doc["services"]["ollama"].pop("image")  # a typo
    bad = tmp_path / "compose.yml"
    bad.write_text(yamlio.dump(doc))
    exe = Path(sys.executable).with_name("check-jsonschema")
    res = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.compose-spec", str(bad)], capture_output=True, text=True
    )
    assert res.returncode != 0


def test_ollama_on_loopback_and_n8n_reaches_it_by_name():
    doc = yamlio.load(COMPOSE.read_text())
    ollama, n8n = doc["services"]["ollama"], doc["services"]["n8n"]
    assert ollama["ports"] == ["127.0.0.1:11434:11434"]
    assert all(p.startswith("127.0.0.1:") for p in n8n["ports"])
    assert n8n["environment"]["OLLAMA_BASE_URL"] == "http://ollama:11434"
    assert "ollama-models:/root/.ollama" in ollama["volumes"] and "n8n-data" in doc["volumes"]
    assert "# deploy:" in COMPOSE.read_text(), "the GPU section is there, ready to uncomment"


def test_example_workflow_is_webhook_to_ollama_to_response():
    wf = json.loads((ROOT / "docker" / "homelab" / "workflows" / "ollama-chat.json").read_text())
    types = [n["type"] for n in wf["nodes"]]
    assert types == ["n8n-nodes-base.webhook", "n8n-nodes-base.httpRequest", "n8n-nodes-base.respondToWebhook"]
    assert wf["nodes"][1]["parameters"]["url"] == "http://ollama:11434/api/chat"
    assert wf["connections"]["Webhook"]["main"][0][0]["node"] == "Ollama chat"
    assert wf["connections"]["Ollama chat"]["main"][0][0]["node"] == "Respond to Webhook"


def containers(plan):
    return {r.name: r.plain_inputs for r in by_type(plan, "docker:index/container:Container")}


def test_stack_runs_the_compose_services_on_the_configured_docker_host():
    plan = plan_for("homelab")
    [provider] = by_type(plan, "pulumi:providers:docker")
    assert provider.plain_inputs["host"] == plan.settings.homelab.docker_host
    c = containers(plan)
    assert c["homelab-ollama"]["ports"] == [
        {"ip": "127.0.0.1", "external": 11434, "internal": 11434, "protocol": "tcp"}
    ] or [(p["ip"], int(p["external"]), int(p["internal"])) for p in c["homelab-ollama"]["ports"]] == [
        ("127.0.0.1", 11434, 11434)
    ]
    assert "OLLAMA_BASE_URL=http://ollama:11434" in c["homelab-n8n"]["envs"]
    assert c["homelab-ollama"]["networksAdvanced"][0]["aliases"] == ["ollama"]
    uploads = {u["file"] for u in c["homelab-n8n"]["uploads"]}
    assert "/workflows/ollama-chat.json" in uploads
    for vol in by_type(plan, "docker:index/volume:Volume"):
        assert vol.protect and vol.retain_on_delete


def test_models_are_pulled_through_ollama():
    plan = plan_for("homelab")
    c = containers(plan)
    for model in plan.settings.homelab.models:
        pull = next(v for k, v in c.items() if v.get("command") == ["pull", model])
        assert pull["entrypoints"] == ["ollama"] and "OLLAMA_HOST=http://ollama:11434" in pull["envs"]
        assert pull["mustRun"] is False and pull["attach"] is True


def test_gpu_switch_gives_ollama_the_gpus():
    base = json.loads(stackfile.read_stack_file("homelab")[0]["llm-platform:homelab"])
    plan = plan_for("homelab", (("homelab", json.dumps({**base, "gpu": True})),))
    assert containers(plan)["homelab-ollama"]["gpus"] == "all"
    assert "gpus" not in containers(plan)["homelab-n8n"]


def test_cost_is_zero():
    plan = plan_for("homelab")
    assert plan.outputs["monthly_cost"] == 0 and plan.outputs["inventory"] == {"hosts": []}


def test_bad_docker_host_and_platform_keys_are_refused():
    base = json.loads(stackfile.read_stack_file("homelab")[0]["llm-platform:homelab"])
    with pytest.raises(SettingsError, match=r"homelab.dockerHost = 'docker.lan': must be unix://"):
        offline.run("homelab", {"homelab": {**base, "dockerHost": "docker.lan"}})
    with pytest.raises(SettingsError, match="not a homelab key"):
        offline.run("homelab", {"phase": 1})


def test_compose_publishing_past_loopback_is_refused(tmp_path):
    doc = yamlio.load(COMPOSE.read_text())
    doc["services"]["ollama"]["ports"] = ["11434:11434"]
    bad = tmp_path / "compose.yml"
    bad.write_text(yamlio.dump(doc))
    with pytest.raises(ComposeError, match="publish on 127.0.0.1 only"):
        load_compose(bad)
