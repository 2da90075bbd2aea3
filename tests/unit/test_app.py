"""LlmApp over every stack file, under Pulumi's mock engine."""

from __future__ import annotations

import json

import pytest

from components import offline, stackfile
from components.app import APPLY_SECRETS_ENV
from components.secrets import SECRET_SPECS
from tests.unit.conftest import one, pin_overrides, plan_for

APP = "digitalocean:index/app:App"
SECRET_ENV_NAMES = {s.env for s in SECRET_SPECS if s.env}


def spec(plan) -> dict:
    return one(plan, APP).plain_inputs["spec"]


def service(plan, name) -> dict:
    return next(s for s in spec(plan)["services"] if s["name"] == name)


def envs(plan, name) -> dict[str, dict]:
    return {e["key"]: e for e in service(plan, name)["envs"]}


def test_ports_and_sources(plan):
    ai, llm = service(plan, "ai-service"), service(plan, "llm")
    assert ai["httpPort"] == 8080 and "internalPorts" not in ai
    # llm is internal only: internal_ports, no http_port (DigitalOcean's internal-service shape)
    assert llm["internalPorts"] == [8081] and "httpPort" not in llm
    assert llm["github"]["repo"].endswith("/intelia-expert")
    assert llm["github"]["branch"] == "main" and llm["sourceDir"] == "/llm"


def test_llm_health_check(plan):
    hc = service(plan, "llm")["healthCheck"]
    # without http_port the check must name the port, else it has none to go to
    assert hc == {
        "httpPath": "/health",
        "initialDelaySeconds": 30,
        "periodSeconds": 10,
        "timeoutSeconds": 5,
        "port": 8081,
    }


def test_ai_service_reaches_llm_internally(plan):
    e = envs(plan, "ai-service")
    assert e["LLM_SERVICE_URL"]["value"] == "http://llm:8081"
    assert 0 <= int(e["LLM_TRAFFIC_SHARE"]["value"]) <= 100
    rules = spec(plan)["ingress"]["rules"]
    assert [r["component"]["name"] for r in rules] == ["ai-service"], "llm must not be routed publicly"
    assert plan.outputs["llm_internal_url"] == "http://llm:8081"


def test_llm_plain_envs(plan):
    e = envs(plan, "llm")
    assert e["PORT"]["value"] == "8081"
    assert e["LLM_PROVIDER"]["value"] == plan.settings.app.llm.provider
    assert e["LOG_LEVEL"]["value"] in ("DEBUG", "INFO", "WARNING", "ERROR")
    assert e["ENABLE_METRICS"]["value"] in ("true", "false")
    assert "HUGGINGFACE_MODEL" in e


def test_secret_envs_are_secret_typed_run_time_and_encrypted(plan):
    expected = {"HUGGINGFACE_API_KEY", "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"}
    if plan.settings.host_enabled:
        expected.add("VLLM_API_KEY")
    for name, want in (("llm", expected), ("ai-service", {"OPENAI_API_KEY"})):
        e = envs(plan, name)
        secret = {k for k, v in e.items() if v["type"] == "SECRET"}
        assert secret == want
        for k in secret:
            assert e[k]["scope"] == "RUN_TIME"
            assert e[k]["value"].startswith("offline-placeholder-")
        for k, v in e.items():
            if k not in secret:
                assert v["type"] == "GENERAL"
                assert k not in SECRET_ENV_NAMES
    # The engine got the spec as a Pulumi secret: encrypted in state, masked in previews.
    assert "spec" in offline.secret_paths(one(plan, APP).inputs)


def test_no_secret_in_any_output(plan):
    text = json.dumps(plan.outputs)
    assert "offline-placeholder" not in text
    assert plan.secret_outputs == []


def test_ignore_changes_cover_exactly_the_secret_env_values(plan):
    app = one(plan, APP)
    services = spec(plan)["services"]
    expected = [
        f"spec.services[{i}].envs[{j}].value"
        for i, svc in enumerate(services)
        for j, env in enumerate(svc["envs"])
        if env["type"] == "SECRET"
    ]
    assert sorted(app.ignore_changes) == sorted(expected) and expected


def test_secret_envs_come_first_so_plain_envs_never_shift_them(plan):
    for svc in spec(plan)["services"]:
        types = [e["type"] for e in svc["envs"]]
        assert types == sorted(types, key=lambda t: t != "SECRET"), svc["name"]


def test_apply_secrets_run_drops_the_ignore_list(monkeypatch):
    monkeypatch.setenv(APPLY_SECRETS_ENV, "1")
    assert one(offline.run("dev", pin_overrides("dev")), APP).ignore_changes == []  # phase 1 or 2, as committed


def test_alerts_on_restarts_and_cpu(plan):
    for svc in spec(plan)["services"]:
        rules = {a["rule"]: a for a in svc["alerts"]}
        assert set(rules) == {"RESTART_COUNT", "CPU_UTILIZATION"}
        assert rules["CPU_UTILIZATION"]["value"] == plan.settings.app.alerts.cpu_percent


def test_component_children_are_parented(plan):
    app = one(plan, APP)
    assert app.parent == "llm"
    llm_app = one(plan, "llm-platform:app:LlmApp")
    assert llm_app.parent == f"llm-platform-{plan.stack}"


def test_self_hosted_gateway_points_at_the_host_over_https(host_plan):
    e = envs(host_plan, "llm")
    provider = host_plan.settings.app.llm.provider
    key = "VLLM_BASE_URL" if provider == "vllm" else "OLLAMA_BASE_URL"
    assert e[key]["value"] == f"https://{host_plan.settings.host.domain}/v1"


def test_custom_env_cannot_override_platform_envs():
    stack = "prod"
    app = json.loads(stackfile.read_stack_file(stack)[0]["llm-platform:app"])
    app["aiService"]["envs"] = {"LLM_SERVICE_URL": "http://elsewhere"}
    from components.config import SettingsError

    with pytest.raises(SettingsError, match="LLM_SERVICE_URL are set by the platform"):
        offline.run(stack, {"app": app})


def test_extra_envs_are_added_after_the_secrets():
    app = json.loads(stackfile.read_stack_file("dev")[0]["llm-platform:app"])
    app["aiService"]["envs"] = {"FEATURE_X": "on"}
    plan = plan_for("dev", (("app", json.dumps(app)),))
    names = [e["key"] for e in service(plan, "ai-service")["envs"]]
    assert names[0] == "OPENAI_API_KEY" and names[-1] == "FEATURE_X"
