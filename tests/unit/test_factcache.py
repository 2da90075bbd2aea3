"""hosts/factcache.py against a host whose commands run here (sh -c, no sudo), on real files: a
fact is read once until something changes the host; the last run's questions come back in one
command, parsed by pyinfra's own fact classes; the keys file holds no values."""

from __future__ import annotations

import json
import subprocess

import pytest
from pyinfra.api.command import StringCommand
from pyinfra.connectors.util import CommandOutput, OutputLine
from pyinfra.facts.files import File, FileContents, Sha1File
from pyinfra.facts.server import Command

from hosts import factcache


class LocalHost:
    """The parts of pyinfra's Host the cache wraps; commands run in a local shell and are counted."""

    name = "unit-host"

    def __init__(self):
        self.commands: list[str] = []
        self.uploads = 0

    def run_shell_command(self, command, print_output=False, print_input=False, **kwargs):
        text = command.get_raw_value() if isinstance(command, StringCommand) else str(command)
        self.commands.append(text)
        proc = subprocess.run(["sh", "-c", text], capture_output=True, text=True)
        lines = [OutputLine("stdout", ln) for ln in proc.stdout.splitlines()]
        lines += [OutputLine("stderr", ln) for ln in proc.stderr.splitlines()]
        return proc.returncode == 0, CommandOutput(lines)

    def put_file(self, *args, **kwargs):
        self.uploads += 1
        return True

    def get_fact(self, cls, *args, **kwargs):
        """pyinfra's _get_fact, reduced: the command, then process() on exit 0, else default()."""
        fact = cls()
        ok, out = self.run_shell_command(StringCommand(str(fact.command(**kwargs))))
        lines = [ln.line for ln in out.combined_lines if ln.buffer_name == "stdout"]
        return fact.process(lines) if ok and lines else fact.default()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(factcache.KEYS_DIR_ENV, str(tmp_path / "keys"))
    monkeypatch.setattr(factcache.FactCache, "_split", lambda self, cls, kw: (dict(kw), {"_sudo": True}))

    def make():
        host = LocalHost()
        return host, factcache.FactCache(host, state=None)

    return make


def fact(c, cls, **kw):
    return c.get_fact(cls, **kw)


def test_a_fact_is_read_once_until_the_host_changes(cache, tmp_path):
    host, c = cache()
    f = tmp_path / "a.conf"
    f.write_text("one\n")
    first = fact(c, Sha1File, path=str(f))
    assert fact(c, Sha1File, path=str(f)) == first and len(host.commands) == 1
    f.write_text("two\n")
    c.run_shell_command(StringCommand("true"))  # an operation's command
    assert fact(c, Sha1File, path=str(f)) != first  # read again after a change
    c.put_file("x", "y")
    fact(c, Sha1File, path=str(f))
    assert len(host.commands) == 4 and host.uploads == 1


def test_last_runs_questions_come_back_in_one_command(cache, tmp_path):
    files = [tmp_path / f"f{i}" for i in range(5)]
    for i, f in enumerate(files):
        f.write_text(f"content {i}\n")
    (tmp_path / "no-newline").write_text("last line")
    host, c = cache()
    want = {str(f): fact(c, Sha1File, path=str(f)) for f in files}
    want_stat = fact(c, File, path=str(files[0]))
    assert fact(c, File, path=str(tmp_path / "missing")) is None
    assert fact(c, FileContents, path=str(tmp_path / "no-newline")) == ["last line"]
    c.save()
    keys = (tmp_path / "keys" / "unit-host.json").read_text()
    assert "content" not in keys and want[str(files[0])] not in keys  # names and paths, no values

    host, c = cache()  # the next run
    got = {str(f): fact(c, Sha1File, path=str(f)) for f in files}
    assert got == want and fact(c, File, path=str(files[0]))["size"] == want_stat["size"]
    assert fact(c, File, path=str(tmp_path / "missing")) is None
    assert fact(c, FileContents, path=str(tmp_path / "no-newline")) == ["last line"]
    assert len(host.commands) == 1, host.commands  # all eight in one
    assert c.stats["prefetched"] == 8 and c.stats["live"] == 0


def test_a_prefetched_question_that_fails_is_asked_live(cache, tmp_path):
    host, c = cache()
    fact(c, File, path=str(tmp_path))
    fact(c, Command, command="echo partial; exit 3")
    c.save()
    host, c = cache()
    fact(c, File, path=str(tmp_path))  # asks both ahead
    assert fact(c, Command, command="echo partial; exit 3") is None  # pyinfra's default on failure
    assert c.stats["prefetched"] == 1 and len(host.commands) == 2  # the batch, then the failed one live


def test_calls_with_secrets_or_positional_args_are_not_cached():
    assert factcache._key(File, {"path": "/x"}, {"_sudo_password": "hunter2"}) is None
    assert factcache._key(File, {"path": "/x"}, {"_env": {"TOKEN": "t"}}) is None
    assert factcache._key(File, {"_sudo": True}, {}) is None
    assert json.loads(factcache._key(File, {"path": "/x"}, {"_sudo": True}).split("|")[2])["_sudo"] is True


def _run_twice(cache, tmp_path, n: int, change_every: int | None) -> tuple[int, int]:
    """A first run asking n facts (recorded), then a second run asking the same, with an
    operation's command after every ``change_every`` facts. (commands of the second run, n)"""
    files = [tmp_path / f"g{i}" for i in range(n)]
    for f in files:
        f.write_text("x\n")
    host, c = cache()
    for f in files:
        fact(c, Sha1File, path=str(f))
    c.save()
    host, c = cache()
    for i, f in enumerate(files):
        fact(c, Sha1File, path=str(f))
        if change_every and i % change_every == change_every - 1:
            c.run_shell_command(StringCommand("true"))
    return len(host.commands) - (n // change_every if change_every else 0), n


def test_a_converged_host_is_read_in_a_handful_of_commands(cache, tmp_path):
    commands, n = _run_twice(cache, tmp_path, 150, None)
    assert commands <= 5, commands  # windows of 8, 16, 32, 64, 64


def test_a_host_that_changes_all_the_time_costs_about_one_command_per_fact(cache, tmp_path):
    """Answers asked ahead are thrown away at each change: the window shrinks to one (no batch)."""
    commands, n = _run_twice(cache, tmp_path, 60, 1)
    assert commands <= n + 4, (commands, n)


class AsksKernelFirst:  # noqa: D101
    """A fact whose command() asks another fact first, as some of pyinfra's do (the kernel, the OS)."""

    cache = None

    def requires_command(self, **kwargs):
        return None

    def command(self, path):
        type(self).cache.get_fact(Command, command="uname -s")
        return f"cat {path}"

    def process(self, output):
        return output

    def default(self):
        return None


def test_a_fact_asking_another_while_its_window_is_built_does_not_loop(cache, tmp_path):
    (tmp_path / "x").write_text("x\n")
    host, c = cache()
    AsksKernelFirst.cache = c
    fact(c, Command, command="uname -s")
    fact(c, AsksKernelFirst, path=str(tmp_path / "x"))
    c.save()
    host, c = cache()
    AsksKernelFirst.cache = c
    assert fact(c, AsksKernelFirst, path=str(tmp_path / "x")) == ["x"]
    assert fact(c, Command, command="uname -s") == "Linux"
    assert len(host.commands) <= 3, host.commands
