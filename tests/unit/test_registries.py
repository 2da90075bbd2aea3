"""The one-place tables (roles, secrets, catalogue, packages) name only things that exist."""

from pathlib import Path

from components import catalogue, roles
from components.secrets import SECRET_SPECS
from hosts.packages import ROLE_PACKAGES

ROOT = Path(__file__).resolve().parents[2]


def test_every_role_has_its_deploy_module_and_nothing_else_does():
    modules = {p.stem for p in (ROOT / "hosts" / "roles").glob("*.py") if p.stem != "__init__"}
    assert modules == set(roles.NAMES)
    for name in roles.NAMES:
        assert "def apply(data: HostData)" in (ROOT / "hosts" / "roles" / f"{name}.py").read_text(), name


def test_role_selection_follows_the_host():
    assert "nvidia" in roles.select(gpu=True, llamafactory=False)
    assert "nvidia" not in roles.select(gpu=False, llamafactory=True)
    assert "llamafactory" not in roles.select(gpu=True, llamafactory=False)
    every = roles.select(gpu=True, llamafactory=True)
    assert every == list(roles.NAMES) and every[0] == "base" and every[-1] == "proxy"


def test_tables_name_only_known_roles_and_services():
    assert set(ROLE_PACKAGES) <= set(roles.NAMES)
    assert {s.role for s in catalogue.HOST_SERVICES.values()} <= set(roles.NAMES)
    for spec in SECRET_SPECS:
        assert set(spec.roles) <= set(roles.NAMES), spec
        assert set(spec.services) <= set(catalogue.APP_PORTS), spec
        assert bool(spec.env) == bool(spec.services), spec
