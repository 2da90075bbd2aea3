"""The operator commands' one command line: ``python -m operate COMMAND ...``, each ``scripts/COMMAND``
a thin entry point to it.

One job: the parser (each command's own arguments come from its module's ``add_arguments``), the
shared ``STACK`` argument (``resolve_stack``: a stack of stacks/, or ``local`` where the command
supports the local test host), and the one exit-code table (``EXIT_CODES``), printed in every
``--help`` with what each code means for that command (its module's ``EXITS``). A usage error is one
line and exit 3, never argparse's 2 (which means "could not check" here); an exception nobody
expected is exit 4, never Python's 1 (which means "drift" to the drift workflow).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap
import traceback
from enum import IntEnum
from types import ModuleType


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    NOT_CHECKED = 2
    USAGE = 3
    INTERNAL = 4
    INTERRUPTED = 130


# The one table: code, name, meaning. README.md ("Exit codes") shows the same rows.
EXIT_CODES: tuple[tuple[Exit, str, str], ...] = (
    (Exit.OK, "ok", "done; the check found nothing wrong"),
    (
        Exit.FAILED,
        "failed",
        "it ran and the answer is no: drift found, a check or a step failed, the change "
        "was refused (bad config, over budget, outside adminCidrs, over the latency goal)",
    ),
    (
        Exit.NOT_CHECKED,
        "not checked",
        "it could not start or finish: no credentials or Pulumi CLI, a host or "
        "endpoint unreachable, unreadable input; nothing is claimed about what "
        "was not checked",
    ),
    (
        Exit.USAGE,
        "usage",
        "the command line is wrong: unknown command, option or stack, a missing or bad argument; nothing was run",
    ),
    (Exit.INTERNAL, "internal error", "a bug: the traceback above says where; what was done is unknown"),
    (Exit.INTERRUPTED, "interrupted", "Ctrl-C"),
)

# name → (module with add_arguments/run_command/EXITS, one line for the list). scripts/NAME runs each.
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("operate.plan", "offline plan of a stack: resources, outputs, monthly cost (--json, --diff)"),
    "pin": ("operate.pin", "pin an upstream release (Ollama) in a stack file from its own checksums"),
    "host-keys": ("operate.host_keys", "the stack's SSH host key, made once (Pulumi secret hostSshKey)"),
    "reach": ("operate.reach", "is this machine's address inside the stack's host.adminCidrs?"),
    "converge": ("operate.converge", "run the host layer's deploy on the stack's hosts (--dry, --verify)"),
    "drift": ("operate.drift.cli", "drift report, cloud + hosts: clean, drift or incomplete"),
    "smoke": ("operate.smoke", "latency smoke test of the stack's OpenAI-compatible endpoint"),
    "rebuild-host": ("operate.rebuild", "new server for a host, same volume, IP, host key; converge, verify"),
    "rotate-key": ("operate.rotate_key", "rotate the public /v1 key without a failed request"),
    "finetune": ("operate.finetune.cli", "dataset → fine-tuning in LLaMA-Factory → merged model → Ollama"),
    "bench": ("operate.bench", "time the host layer's stages on a local test host of its own"),
    "local-host": ("testhost.cli", "the local Debian 12 test host (qemu): up, converge, verify, ssh, down, ..."),
}

LOCAL = "local"


class UsageError(Exception):
    """The command line is wrong: one line, exit 3. Raised by the parser and by a command that checks
    its arguments past argparse."""


def exit_help(exits: dict[int, str] | None = None, width: int = 100) -> str:
    """The table, and under each code what it means for this command (``exits``), for an epilog."""
    indent = " " * 23
    lines = ["exit codes (one table for every scripts/ command):"]
    for code, name, meaning in EXIT_CODES:
        lines += textwrap.wrap(meaning, width, initial_indent=f"  {int(code):<3}  {name:<16}", subsequent_indent=indent)
        if exits and int(code) in exits:
            lines += textwrap.wrap(
                f"here: {exits[int(code)]}", width, initial_indent=indent, subsequent_indent=indent + "  "
            )
    return "\n".join(lines)


class Parser(argparse.ArgumentParser):
    """argparse, with its usage error as ``UsageError`` (exit 3, one line) instead of exit 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # argparse: "must not return"
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def resolve_stack(name: str, *, local: bool) -> str:
    """``name`` if it is a stack of stacks/ (``$LLM_PLATFORM_STACKS_DIR``), or ``local`` where the command
    supports the local test host; else ``UsageError`` with the names there are."""
    from components import stackfile

    names = stackfile.stack_names()
    if name in names or (local and name == LOCAL):
        return name
    known = ", ".join(names + ([LOCAL] if local else [])) or "none"
    if name == LOCAL:
        raise UsageError(f"this command has no local test host form; give a stack ({known})")
    raise UsageError(f"no stack file {_shown(stackfile.STACKS_DIR / f'Pulumi.{name[:80]}.yaml')} (stacks: {known})")


def _shown(path) -> str:
    from components import ROOT

    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def add_stack(parser: argparse.ArgumentParser, *, local: bool, help: str | None = None) -> None:
    """The shared positional ``STACK``: checked by ``resolve_stack`` while parsing (a bad one is exit 3)."""

    def stack(text: str) -> str:
        try:
            return resolve_stack(text, local=local)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    what = "a stack of stacks/ (stacks/Pulumi.STACK.yaml)" + (", or 'local' for the local test host" if local else "")
    parser.add_argument("stack", metavar="STACK", type=stack, help=f"{what}{'; ' + help if help else ''}")


def _module(command: str) -> ModuleType:
    return importlib.import_module(COMMANDS[command][0])


def build_parser(command: str | None = None) -> tuple[Parser, ModuleType | None]:
    """The parser; only ``command``'s own arguments are built (importing one command's module, not all)."""
    top = Parser(prog="python -m operate", description=__doc__.split("\n\n")[0], epilog=exit_help())
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    module = None
    for name, (_, summary) in COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=summary, add_help=False)
            continue
        module = _module(name)
        p = sub.add_parser(
            name,
            help=summary,
            prog=f"scripts/{name}",
            description=(module.__doc__ or summary).split("\n\n")[0].strip(),
            epilog=exit_help(getattr(module, "EXITS", None)),
        )
        module.add_arguments(p)
        _share_epilog(p)
    return top, module


def _share_epilog(parser: argparse.ArgumentParser) -> None:
    """A command's own verbs (``finetune run``, ``local-host up``) show its exit codes too."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb in action.choices.values():
                verb.epilog = verb.epilog or parser.epilog
                _share_epilog(verb)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    prog = f"scripts/{command}" if command else "python -m operate"
    try:
        try:
            parser, module = build_parser(command)
            args, extra = parser.parse_known_args(argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        if extra:  # what parse_args would refuse at the top, named after the command's own help
            raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see `{prog} --help`)")
        return int(module.run_command(args))
    except UsageError as exc:
        text = " ".join(str(exc).split())
        hint = "" if "--help`)" in text else f" (see `{prog} --help`)"
        print(f"error: {text}{hint}", file=sys.stderr)
        return Exit.USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except BrokenPipeError:  # e.g. `scripts/plan prod | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Exit.OK
    except Exception:  # noqa: BLE001 (a bug: say so with its own code, never 1 = "drift"/"failed")
        traceback.print_exc()
        print(f"error: {prog}: internal error (a bug; the traceback above says where)", file=sys.stderr)
        return Exit.INTERNAL
