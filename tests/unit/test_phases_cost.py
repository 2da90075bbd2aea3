"""Phase presets, overrides, cost figures and the budget guard."""

from __future__ import annotations

import json

import pytest

from components import offline, prices, stackfile
from components.config import parse_settings
from components.cost import BudgetExceeded, estimate
from components.secrets import SECRET_KEYS
from tests.unit.conftest import STACKS, one, pin_overrides, plan_for

# The plan the platform came from prices phase 1 at $21-36: `llm` Basic $12 + Hugging Face PRO $9
# (optional) + about $0.05 of dev calls (250 requests × 500 tokens a month) + $15 one-off fine-tuning.
# It puts `llm` in the region of the existing ai-service, "US East or Frankfurt".
SEED_RANGE_USD = (21, 36)
SEED_REGIONS = ("nyc", "fra")


def fixture_settings(huggingface: dict | None = None, **top):
    """A phase 1 stack as the seed describes it (a fixture, not a committed stack file)."""
    values = {
        "phase": 1,
        "region": "nyc",
        "budget": 150,
        "app": {
            "aiService": {"repo": "org/app", "sourceDir": "/backend", "instanceSize": "apps-s-1vcpu-1gb"},
            "llm": {"repo": "org/app"},
        },
        "huggingface": {"requestsPerMonth": 250, **(huggingface or {})},
        **top,
    }
    raw = {
        f"llm-platform:{k}": json.dumps(v)
        if isinstance(v, (dict, list))
        else str(v).lower()
        if isinstance(v, bool)
        else str(v)
        for k, v in values.items()
    }
    raw.update({f"llm-platform:{k}": stackfile.placeholder(k) for k in SECRET_KEYS})
    return parse_settings(raw, "fixture")


def llm_service(plan):
    spec = one(plan, "digitalocean:index/app:App").plain_inputs["spec"]
    return next(s for s in spec["services"] if s["name"] == "llm")


def test_phase_one_preset():
    plan = plan_for("dev", (("phase", 1),))  # a fixture: dev's committed phase may change
    svc = llm_service(plan)
    env = {e["key"]: e["value"] for e in svc["envs"]}
    assert env["LLM_PROVIDER"] == "huggingface"
    assert env["HUGGINGFACE_MODEL"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert svc["instanceSizeSlug"] == "apps-s-1vcpu-1gb"
    assert "VLLM_API_KEY" not in env


def test_editing_phase_line_upgrades_dev_to_phase_two():
    before, after = plan_for("dev", (("phase", 1),)), plan_for("dev", (("phase", 2),))
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
    app = json.loads(stackfile.read_stack_file("dev")[0]["llm-platform:app"])
    app["llm"]["instanceSize"] = "apps-s-1vcpu-2gb"
    plan = plan_for("dev", (("app", json.dumps(app)), ("phase", 2)))
    assert llm_service(plan)["instanceSizeSlug"] == "apps-s-1vcpu-2gb"
    assert {e["key"]: e["value"] for e in llm_service(plan)["envs"]}["LLM_PROVIDER"] == "vllm"


def test_host_can_be_enabled_in_phase_one():
    plan = plan_for("dev", (("phase", 1), ("hostEnabled", True)))
    assert plan.outputs["inventory"]["hosts"] and plan.settings.app.llm.provider == "huggingface"


def test_cost_breakdown_matches_the_price_table(stack):
    plan = plan_for(stack)
    s = plan.settings
    want = prices.APP_INSTANCE_SIZES[s.app.llm.instance_size].usd_month * s.app.llm.instance_count  # not ai-service's
    if s.app.llm.provider == "huggingface":
        want += s.huggingface.requests_per_month / 1000 * s.huggingface.usd_per_1k_requests
        want += prices.HF_PRO_SUBSCRIPTION.usd_month if s.huggingface.pro_subscription else 0
    if s.host_enabled:
        if s.host.provider == "digitalocean":
            want += prices.DROPLET_SIZES[s.host.size].usd_month + 0.10 * s.host.volume_size_gb
        else:
            want += prices.HCLOUD_SERVER_TYPES[s.host.size].usd_month
            want += (
                prices.HCLOUD_VOLUME_USD_PER_GB.usd_month * s.host.volume_size_gb + prices.HCLOUD_PRIMARY_IPV4.usd_month
            )
    assert plan.outputs["monthly_cost"] == pytest.approx(want, abs=0.01)
    assert plan.outputs["monthly_cost"] <= s.budget
    items = plan.outputs["cost_breakdown"]["items"]
    assert all(i["source"] for i in items)


def test_gpu_prices_are_hourly_times_730():
    assert prices.DROPLET_SIZES["gpu-h100x1-80gb"].usd_month == pytest.approx(3.39 * 730)
    assert prices.APP_INSTANCE_SIZES["apps-s-2vcpu-4gb"].usd_month == 50


def test_phase_one_dev_stays_under_150():
    assert plan_for("dev", (("phase", 1),)).outputs["monthly_cost"] < 150


def test_over_budget_fails_with_the_breakdown_before_any_resource():
    with pytest.raises(BudgetExceeded) as info:
        offline.run("prod", {**pin_overrides("prod"), "budget": 100})
    text = str(info.value)
    assert "exceeds budget 100.00" in text and "gpu-h100x1-80gb" in text and "allowOverBudget" in text


def test_over_budget_allowed_explicitly():
    plan = plan_for("prod", (("budget", 100), ("allowOverBudget", True)))
    assert plan.outputs["monthly_cost"] > 100


def test_hf_usage_scales_with_requests():
    base, more = estimate(fixture_settings()), estimate(fixture_settings({"requestsPerMonth": 1250}))
    assert more.total - base.total == pytest.approx(1000 / 1000 * prices.HF_DEFAULT_USD_PER_1K_REQUESTS.usd_month)


def test_phase_one_cost_is_the_seed_plans_line_by_line():
    """Each line is one of the seed's assumptions; the existing ai-service and the one-off run apart."""
    report = estimate(fixture_settings())
    by_kind = {
        kind: {i.item: i.usd_month for i in report.items if i.kind == kind}
        for kind in ("monthly", "existing", "one-off")
    }
    assert by_kind == {
        "monthly": {"app: llm": 12.0, "huggingface: serverless usage": 0.05},  # 250 requests × 500 tokens
        "existing": {"app: ai-service": 12.0},
        "one-off": {"fine-tuning run": 15.0},
    }
    assert (report.total, report.first_month, report.with_existing) == (12.05, 27.05, 24.05)
    assert not report.over_budget
    table = report.table()
    assert "250 requests × 500 tokens" in table and "not added by this project" in table and "one-off" in table
    assert "PRO" in table  # the option, named with its price, though it is off
    doc = report.to_dict()
    assert doc["total_usd_month"] == 12.05 and doc["first_month_usd"] == 27.05 and doc["existing_usd_month"] == 12.0


def test_phase_one_with_pro_is_the_seed_range():
    report = estimate(fixture_settings({"proSubscription": True}))
    assert (report.total, report.first_month) == (21.05, 36.05) == tuple(x + 0.05 for x in SEED_RANGE_USD)


def test_hugging_face_pro_is_off_unless_asked():
    assert not fixture_settings().huggingface.pro_subscription


def test_dev_plan_first_month_is_within_the_seed_range():
    report = estimate(plan_for("dev", (("phase", 1),)).settings)
    assert SEED_RANGE_USD[0] <= report.first_month <= SEED_RANGE_USD[1]
    assert "app: ai-service" not in {i.item for i in report.items if i.kind == "monthly"}


def test_every_stack_uses_the_existing_apps_region():
    """`llm` runs in the app of the existing ai-service: one region for every stack, the seed's."""
    regions = {plan_for(s).settings.region for s in STACKS}
    assert len(regions) == 1 and regions <= set(SEED_REGIONS), regions
