"""Every stack's rendered app spec validates against DigitalOcean's published (and tightened) schema."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from tests.unit import do_schema
from tests.unit.conftest import one

pytestmark = pytest.mark.skipif(
    not do_schema.SCHEMA_DIR.exists(), reason=f"DigitalOcean schema copy not found at {do_schema.SCHEMA_DIR}"
)


def api_spec(plan):
    return do_schema.to_api_spec(one(plan, "digitalocean:index/app:App").plain_inputs["spec"])


def test_rendered_spec_is_valid(plan):
    jsonschema.validate(api_spec(plan), do_schema.app_spec_schema())


def test_schema_check_catches_a_broken_spec(plan):
    spec = api_spec(plan)
    validator = jsonschema.Draft202012Validator(do_schema.app_spec_schema())
    bad_region = copy.deepcopy(spec) | {"region": "mars"}
    assert list(validator.iter_errors(bad_region))
    typo = copy.deepcopy(spec)
    typo["services"][1]["health_check"]["http_pth"] = "/health"
    assert list(validator.iter_errors(typo)), "unknown fields must be refused"
    bad_env = copy.deepcopy(spec)
    bad_env["services"][1]["envs"][0]["type"] = "PASSWORD"
    assert list(validator.iter_errors(bad_env))
    bad_size = copy.deepcopy(spec)
    bad_size["services"][0]["instance_size_slug"] = "apps-xxl"
    assert list(validator.iter_errors(bad_size))


def test_price_table_knows_exactly_the_published_instance_sizes():
    from components import prices

    one_of = do_schema.app_spec_schema()["properties"]["services"]["items"]["properties"]["instance_size_slug"]["oneOf"]
    current = next(o for o in one_of if o.get("title") == "Size slug")["enum"]
    assert sorted(current) == sorted(prices.APP_INSTANCE_SIZES)
    regions = do_schema.app_spec_schema()["properties"]["region"]["enum"]
    assert sorted(regions) == sorted(prices.APP_REGIONS)
