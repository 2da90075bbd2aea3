"""Issue 22 §3: one command line for the operator commands (operate/cli.py): one entry point with
subcommands, one STACK argument, one exit-code table in every --help, a usage error that is exit 3 in
one line (never argparse's 2, which means "could not check"), and scripts/* as thin entry points."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from operate import cli

ROOT = Path(__file__).resolve().parents[2]
# The commands whose STACK may be `local` (the local test host); the others take a stack of stacks/.
LOCAL_FORMS = {"converge", "drift", "smoke", "rebuild-host", "rotate-key", "finetune"}
# A command line each command accepts up to its STACK (finetune's stack comes after its verb).
STACK_ARGV = {"pin": ["pin", "ollama"], "finetune": ["finetune", "status"]}
STACK_TAIL = {
    "pin": ["0.13.5"],
    "reach": ["--runner-ip", "198.51.100.7"],
    "rotate-key": ["vllm"],
    "finetune": ["--name", "bot"],
}


def test_the_table_is_one_set_of_distinct_codes_with_the_ones_ci_relies_on():
    codes = [int(c) for c, _, _ in cli.EXIT_CODES]
    assert codes == sorted(set(codes)) == [0, 1, 2, 3, 4, 130]
    names = {int(c): n for c, n, _ in cli.EXIT_CODES}
    # .github/workflows/drift.yml: 0 clean, 1 drift, 2 incomplete; reach: 0 inside, 1 outside, else undecided
    assert (names[0], names[1], names[2]) == ("ok", "failed", "not checked")
    assert names[3] == "usage" and int(cli.Exit.USAGE) != 2


def test_every_script_is_a_thin_entry_point_to_one_command():
    scripts = {p.name for p in (ROOT / "scripts").iterdir() if p.is_file()} - {"test"}
    assert scripts == set(cli.COMMANDS)
    for name in scripts:
        text = (ROOT / "scripts" / name).read_text()
        code = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        assert code == ['. "$(dirname "$0")/lib/venv.sh"', f'exec python -m operate {name} "$@"'], name


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_each_command_module_has_its_arguments_and_codes_from_the_table(name):
    module = importlib.import_module(cli.COMMANDS[name][0])
    assert callable(module.add_arguments) and callable(module.run_command)
    assert not hasattr(module, "main") and not hasattr(module, "EXIT_HELP"), "one entry point: operate/cli.py"
    table = {int(c) for c, _, _ in cli.EXIT_CODES}
    assert set(module.EXITS) <= table - {cli.Exit.INTERNAL, cli.Exit.INTERRUPTED}, module.EXITS
    assert 0 in module.EXITS


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_help_shows_the_one_table_and_what_each_code_means_here(name, capsys):
    assert cli.main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: scripts/{name} ")
    table = out[out.index("exit codes (one table for every scripts/ command):") :]
    for code, label, _ in cli.EXIT_CODES:
        assert re.search(rf"^  {int(code):<3}  {label} ", table, re.M), (code, table)
    module = importlib.import_module(cli.COMMANDS[name][0])
    assert table.count("here: ") == len(module.EXITS)
    for code, meaning in module.EXITS.items():
        row = table[table.index(f"\n  {code} ") :]
        assert row.split("here: ", 1)[1].split()[:3] == meaning.split()[:3], (code, row)


@pytest.mark.parametrize(
    "argv", [["finetune", "run"], ["finetune", "validate"], ["local-host", "up"], ["local-host", "status"]]
)
def test_a_commands_own_verbs_show_its_table_too(argv, capsys):
    assert cli.main([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: scripts/{argv[0]} {argv[1]} ") and "\n  3    usage " in out and "here: " in out


def test_top_level_help_lists_every_command_and_the_table(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert re.search(rf"^    {re.escape(name)}\b", out, re.M), name
    assert "exit codes (one table" in out and "here:" not in out


@pytest.mark.parametrize(
    "argv",
    [
        ["plan"],  # no STACK
        ["plan", "dev", "--bogus"],
        ["bench", "--bogus"],
        ["finetune", "validate", "f.jsonl", "--bogus"],
        ["drift", "dev", "--no-such-option"],
        ["smoke", "dev", "--prompts", "x"],
        ["smoke", "dev", "--prompts", "0"],  # checked past argparse: the same code and form
        ["rotate-key", "dev", "other-key"],
        ["rebuild-host", "prod"],  # a cloud stack needs HOST
        ["pin", "ollama", "prod", "not-a-version"],
        ["finetune"],
        ["finetune", "status", "dev"],  # --name is required
        ["local-host", "fly"],
        ["no-such-command"],
        [],
    ],
)
def test_a_usage_error_is_exit_3_in_one_line(argv, capsys):
    assert cli.main(argv) == cli.Exit.USAGE == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith(" --help`)"), captured.err
    if argv and argv[0] in cli.COMMANDS:  # the help it points to is the command's own
        assert f"(see `scripts/{argv[0]}" in lines[0], lines[0]


@pytest.mark.parametrize("name", sorted(set(cli.COMMANDS) - {"bench", "local-host"}))
def test_stack_is_one_argument_checked_by_one_function(name, capsys):
    head = STACK_ARGV.get(name, [name])
    parser, _ = cli.build_parser(name)
    tail = STACK_TAIL.get(name, [])
    assert parser.parse_args([*head, "prod", *tail]).stack == "prod"
    if name in LOCAL_FORMS:
        assert parser.parse_args([*head, "local", *tail]).stack == "local"
    else:
        assert cli.main([*head, "local", *tail]) == 3 and "has no local test host form" in capsys.readouterr().err
    assert cli.main([*head, "nope", *tail]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: argument STACK: no stack file stacks/Pulumi.nope.yaml (stacks: cpu, dev, "), err
    assert err.rstrip().endswith(f"(see `scripts/{name}{' status' if name == 'finetune' else ''} --help`)"), err


def test_resolve_stack_reads_the_stacks_folder_of_the_moment(tmp_path, monkeypatch):
    from components import stackfile

    (tmp_path / "Pulumi.lab.yaml").write_text("config: {}\n")
    monkeypatch.setattr(stackfile, "STACKS_DIR", tmp_path)
    assert cli.resolve_stack("lab", local=False) == "lab"
    with pytest.raises(cli.UsageError, match=r"\(stacks: lab, local\)$"):
        cli.resolve_stack("../lab", local=True)


def test_a_bug_is_exit_4_never_1_and_ctrl_c_is_130(monkeypatch, capsys):
    from operate import reach

    def boom(args):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(reach, "run_command", boom)
    assert cli.main(["reach", "prod", "--runner-ip", "198.51.100.7"]) == cli.Exit.INTERNAL == 4
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: unexpected" in err
    assert err.splitlines()[-1] == "error: scripts/reach: internal error (a bug; the traceback above says where)"

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(reach, "run_command", interrupted)
    assert cli.main(["reach", "prod", "--runner-ip", "198.51.100.7"]) == 130
    assert capsys.readouterr().err == "scripts/reach: interrupted\n"


def test_through_the_script_as_an_operator_runs_it(tmp_path):
    """The bash entry point, the module and the exit code as CI sees them (one subprocess each)."""
    env = dict(os.environ)
    if (Path(sys.prefix) / ".llm-platform-stamp").is_file():  # the venv scripts/lib/venv.sh prepared
        env.setdefault("LLM_PLATFORM_VENV", sys.prefix)
    res = subprocess.run(
        [str(ROOT / "scripts" / "reach"), "prod", "--runner-ip"], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 3 and res.stdout == "", res.stderr
    assert res.stderr == "error: argument --runner-ip: expected one argument (see `scripts/reach --help`)\n"
    res = subprocess.run(
        [sys.executable, "-m", "operate", "reach", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert res.returncode == 0 and res.stdout.startswith("usage: scripts/reach ") and "  3    usage " in res.stdout


def test_the_readme_shows_the_same_table():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Exit codes") :]
    section = section[: section.index("\n#")]
    for code, name, _ in cli.EXIT_CODES:
        assert re.search(rf"^\| `{int(code)}` \| {name} \|", section, re.M), (code, name)
