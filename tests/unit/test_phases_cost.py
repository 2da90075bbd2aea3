"""Phase presets, overrides, cost figures and the budget guard."""

from __future__ import annotations

import json

import pytest

from components import offline, prices
from components.cost import BudgetExceeded, estimate
from tests.unit.conftest import pin_overrides, plan_for


def llm_service(plan):
    spec = plan.one("digitalocean:index/app:App").plain_inputs["spec"]
    return next(s for s in spec["services"] if s["name"] == "llm")


def test_phase_one_preset():
    plan = plan_for("dev")
    svc = llm_service(plan)
    env = {e["key"]: e["value"] for e in svc["envs"]}
    assert env["LLM_PROVIDER"] == "huggingface"
    assert env["HUGGINGFACE_MODEL"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert svc["instanceSizeSlug"] == "apps-s-1vcpu-1gb"
    assert "VLLM_API_KEY" not in env


def test_editing_phase_line_upgrades_dev_to_phase_two():
    before, after = plan_for("dev"), plan_for("dev", (("phase", 2),))
    svc = llm_service(after)
    env = {e["key"]: e for e in svc["envs"]}
    assert env["LLM_PROVIDER"]["value"] == "vllm"
    assert env["VLLM_API_KEY"]["type"] == "SECRET"
    assert env["VLLM_BASE_URL"]["value"] == "https://llm-dev.intelia.example/v1"
    assert svc["instanceSizeSlug"] == "apps-s-2vcpu-4gb"
    assert after.outputs["host_ip"] and after.outputs["inventory"]["hosts"]
    new_types = {r.type for r in after.resources} - {r.type for r in before.resources}
    assert {"digitalocean:index/droplet:Droplet", "digitalocean:index/volume:Volume"} <= new_types
    assert after.outputs["monthly_cost"] <= after.settings.budget  # dev stays within budget in phase 2


def test_stack_file_overrides_a_preset_value():
    app = json.loads(offline.read_stack_config("dev")["llm-platform:app"])
    app["llm"]["instanceSize"] = "apps-s-1vcpu-2gb"
    plan = plan_for("dev", (("app", json.dumps(app)), ("phase", 2)))
    assert llm_service(plan)["instanceSizeSlug"] == "apps-s-1vcpu-2gb"
    assert {e["key"]: e["value"] for e in llm_service(plan)["envs"]}["LLM_PROVIDER"] == "vllm"


def test_host_can_be_enabled_in_phase_one():
    plan = plan_for("dev", (("hostEnabled", True),))
    assert plan.outputs["inventory"]["hosts"] and plan.settings.app.llm.provider == "huggingface"


def test_cost_breakdown_matches_the_price_table(stack):
    plan = plan_for(stack)
    s = plan.settings
    want = (
        prices.APP_INSTANCE_SIZES[s.app.ai_service.instance_size].usd_month * s.app.ai_service.instance_count
        + prices.APP_INSTANCE_SIZES[s.app.llm.instance_size].usd_month * s.app.llm.instance_count
    )
    if s.app.llm.provider == "huggingface":
        want += s.huggingface.requests_per_month / 1000 * s.huggingface.usd_per_1k_requests + 9
    if s.host_enabled:
        if s.host.provider == "digitalocean":
            want += prices.DROPLET_SIZES[s.host.size].usd_month + 0.10 * s.host.volume_size_gb
        else:
            want += prices.HCLOUD_SERVER_TYPES[s.host.size].usd_month
            want += prices.HCLOUD_VOLUME_USD_PER_GB.usd_month * s.host.volume_size_gb + prices.HCLOUD_PRIMARY_IPV4.usd_month
    assert plan.outputs["monthly_cost"] == pytest.approx(want, abs=0.01)
    assert plan.outputs["monthly_cost"] <= s.budget
    items = plan.outputs["cost_breakdown"]["items"]
    assert all(i["source"] for i in items)


def test_gpu_prices_are_hourly_times_730():
    assert prices.DROPLET_SIZES["gpu-h100x1-80gb"].usd_month == pytest.approx(3.39 * 730)
    assert prices.APP_INSTANCE_SIZES["apps-s-2vcpu-4gb"].usd_month == 50


def test_phase_one_dev_stays_under_150():
    assert plan_for("dev").outputs["monthly_cost"] < 150


def test_over_budget_fails_with_the_breakdown_before_any_resource():
    with pytest.raises(BudgetExceeded) as info:
        offline.run("prod", {**pin_overrides("prod"), "budget": 100})
    text = str(info.value)
    assert "exceeds budget 100.00" in text and "gpu-h100x1-80gb" in text and "allowOverBudget" in text


def test_over_budget_allowed_explicitly():
    plan = plan_for("prod", (("budget", 100), ("allowOverBudget", True)))
    assert plan.outputs["monthly_cost"] > 100


def test_hf_usage_scales_with_requests():
    base = plan_for("dev").settings
    more = plan_for("dev", (("huggingface", json.dumps({"requestsPerMonth": 200000})),)).settings
    assert estimate(more).total - estimate(base).total == pytest.approx(20.0)
