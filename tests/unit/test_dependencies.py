"""What gets installed where: the runtime dependencies (requirements.txt, which Pulumi's pip
toolchain installs on every `pulumi up`) hold no test tool, every third-party module the product
code imports is declared, and requirements.lock pins each declared package at its declared version."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("components", "hosts", "operate")  # the installed packages (pyproject packages.find)
LOCAL = {*PRODUCT, "testhost", "tests"}
TEST_TOOLS = {"pytest", "pytest-testinfra", "check-jsonschema", "jsonschema", "filelock", "psutil", "qemu.qmp", "ruff"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _names(reqs: list[str]) -> dict[str, str]:
    out = {}
    for line in reqs:
        req = Requirement(line)
        out[_norm(req.name)] = str(req.specifier).removeprefix("==")
    return out


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _imports(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - LOCAL - {"__future__"}


def test_the_runtime_dependencies_hold_no_test_tool():
    project = _pyproject()["project"]
    runtime = _names(project["dependencies"])
    assert not {_norm(t) for t in TEST_TOOLS} & set(runtime)
    extras = {_norm(n) for reqs in project["optional-dependencies"].values() for n in _names(reqs)}
    assert {_norm(t) for t in TEST_TOOLS} <= extras
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines() if not ln.startswith("#")]
    assert [ln for ln in lines if ln] == ["-c requirements.lock", "-e ."]  # the project, nothing else
    assert _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"] == [f"{p}*" for p in PRODUCT]


def test_every_module_the_product_imports_is_declared():
    declared = set(_names(_pyproject()["project"]["dependencies"]))
    dists = packages_distributions()
    undeclared = {}
    for folder in PRODUCT:
        for module in _imports(ROOT / folder):
            owners = {_norm(d) for d in dists.get(module, [module])}
            if not owners & declared:
                undeclared[module] = sorted(owners)
    assert not undeclared, f"imported by components/hosts/operate but not in [project] dependencies: {undeclared}"


def test_the_lock_pins_every_declared_package_at_its_declared_version():
    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            lock[_norm(name)] = version
    project = _pyproject()["project"]
    for reqs in [project["dependencies"], *project["optional-dependencies"].values()]:
        for name, version in _names(reqs).items():
            assert lock.get(name) == version, f"{name}: pyproject {version}, requirements.lock {lock.get(name)}"
