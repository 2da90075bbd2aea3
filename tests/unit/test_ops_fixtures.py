"""The custom pyinfra operations and facts, in pyinfra's own test style: facts in → commands out.

Each JSON file under ``fixtures/ops/<operation>/`` gives the operation's arguments, the facts the host
reports (keyed by the fact class's name; a fact asked with arguments by ``Name:arg=value``) and the
commands the operation must yield, or the reason it gives for doing nothing (``noop``), or the error it
stops with (``error``). Fact
fixtures under ``fixtures/facts/<Fact>/`` give a command's output lines and the value it parses to.
No host, no SSH: the operation's generator runs against these facts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hosts import facts as host_facts
from hosts import file_ops, ops

FIXTURES = Path(__file__).parent / "fixtures"


class FakeHost:
    """What an operation asks of pyinfra's ``host``: facts, a temp file name, ``noop``."""

    def __init__(self, facts: dict):
        self.facts, self.noops, self.asked = facts, [], []

    def get_fact(self, fact, **kwargs):
        key = fact.__name__ + "".join(f":{k}={v}" for k, v in sorted(kwargs.items()))
        self.asked.append(key)
        for k in (key, fact.__name__):
            if k in self.facts:
                return self.facts[k]
        return fact().default() if hasattr(fact, "default") else None

    def get_temp_filename(self, *args, temp_directory=None, **kwargs):
        return f"{temp_directory or '/tmp'}/pyinfra-temp"

    def noop(self, message: str) -> None:
        self.noops.append(message)


def run(op_name: str, args: dict, facts: dict) -> tuple[list[str], list[str]]:
    """``{"text": ...}`` as an argument stands for a file-like source (``io.StringIO``)."""
    import io

    args = {k: io.StringIO(v["text"]) if isinstance(v, dict) and set(v) == {"text"} else v for k, v in args.items()}
    fake = FakeHost(facts)
    module = next(m for m in (ops, file_ops) if hasattr(m, op_name))
    op = getattr(module, op_name)
    original = module.host
    module.host = fake
    try:
        commands = []
        for c in op._inner(**args):
            if hasattr(c, "get_raw_value"):
                commands.append(str(c.get_raw_value()))
            elif hasattr(c, "dest"):  # FileUploadCommand
                commands.append(f"upload {c.dest}")
            else:
                commands.append(str(c))
    finally:
        module.host = original
    return commands, fake.noops


def cases(kind: str):
    for path in sorted((FIXTURES / kind).glob("*/*.json")):
        yield pytest.param(path.parent.name, json.loads(path.read_text()), id=f"{path.parent.name}/{path.stem}")


@pytest.mark.parametrize(("op_name", "case"), list(cases("ops")))
def test_operation(op_name, case):
    if "error" in case:
        with pytest.raises(Exception) as e:
            run(op_name, case.get("args", {}), case.get("facts", {}))
        assert str(e.value) == case["error"]
        return
    commands, noops = run(op_name, case.get("args", {}), case.get("facts", {}))
    assert commands == case.get("commands", []), json.dumps(commands, indent=1)
    if "noop" in case:
        assert noops == [case["noop"]]
    else:
        assert noops == [], noops


@pytest.mark.parametrize(("fact_name", "case"), list(cases("facts")))
def test_fact(fact_name, case):
    fact = getattr(host_facts, fact_name)()
    if "args" in case:
        assert fact.command(**case["args"]) == case["command"]
    assert fact.process(case["output"]) == case["value"]


def test_a_unit_outside_the_roles_registry_is_refused():
    """service_running asks about the roles' units at once (components/roles.py): a unit a role
    forgot to list there would be asked about alone, so it is refused."""
    with pytest.raises(ValueError, match="components/roles.py"):
        run("service_running", {"unit": "stray", "units": ["nginx.service"]}, {})


def test_every_role_unit_is_in_the_registry():
    import re

    from components import roles

    here = Path(ops.__file__).parent
    sources = "".join(p.read_text() for d in ("roles", "hardening") for p in (here / d).glob("*.py"))
    sources += (here / "container.py").read_text()
    named = set(re.findall(r'service_running\(name=[^\n]*?unit="([^"]+)"', sources))
    assert named and {u if "." in u else f"{u}.service" for u in named} <= set(roles.units(list(roles.NAMES)))
