"""Rebuild a model host without losing data: ``scripts/rebuild-host STACK HOST`` (or ``local``).

Stages, each timed and printed:
1. replace  — a new server, decided from what exists (``decide``):
   - the server exists: replace it (``pulumi up --replace <server> --target <server>
     --target-dependents``): the protected data volume and fixed IP are kept, their attachments
     follow the new server;
   - it was deleted in the cloud (a targeted refresh drops it from the state) or is missing from
     the state: create it (``pulumi up --target <server> --target-dependents``), same volume and IP;
   - an earlier run of this rebuild already made the server (the stack tag ``REBUILD_TAG``, kept by
     the Pulumi backend, names the server it replaced and the state holds another): keep it.
   ``local``: the same decisions on the local test host's VM (its disk and instance id; the
   instance id the rebuild replaced is kept in the VM's record, ``vm.json``), after starting the
   host services the guest uses (artifact mirror, pebble, apt proxy): operate/rebuild_local.py.
2. ssh      — wait until the server answers SSH **with the host's own key** (the public half of the
   stack's ``hostSshKey``, which every new server gets from its user-data): nothing is trusted on
   first use and known_hosts never changes (``operate.remote.wait_for_ssh``).
3. converge — the pyinfra deploy (host key pinned).
4. verify   — the testinfra suite.

Every exit prints one ``next:`` line. A rerun after any failure (from any machine: the record is
in the stack's backend, not in ``.state/``) resumes: the replacement is not repeated, the later stages
are idempotent; the record is removed when verify passes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from components import ROOT
from operate import cli
from operate.remote import HostKeyMismatch, wait_for_ssh


class Stop(Exception):
    """The rebuild stops: ``message`` says why, ``next`` what to do (one line each)."""

    def __init__(self, message: str, next_step: str, code: int = cli.Exit.FAILED):
        super().__init__(message)
        self.next_step, self.code = next_step, code


@dataclass
class Stages:
    timings: list[tuple[str, float, str]] = field(default_factory=list)

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        print(f"==> {name} ...", flush=True)
        t0 = time.monotonic()
        try:
            result = fn()
        except BaseException:
            self.timings.append((name, time.monotonic() - t0, "FAILED"))
            print(self.summary(), flush=True)
            raise
        note = result if isinstance(result, str) else "ok"
        self.timings.append((name, time.monotonic() - t0, note))
        print(f"==> {name}: {note} ({time.monotonic() - t0:.1f}s)", flush=True)
        return result

    def summary(self) -> str:
        lines = ["rebuild summary:"]
        for name, secs, note in self.timings:
            lines.append(f"  {name:<9} {secs:7.1f}s  {note}")
        lines.append(f"  {'total':<9} {sum(t for _, t, _ in self.timings):7.1f}s")
        return "\n".join(lines)


# --- the decision ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """What exists, as the cloud (or the local VM) says after a refresh."""

    server: str | None  # the server's id; None: deleted in the cloud, or missing from the state
    rebuild_of: str | None = None  # an unfinished rebuild's record: the server it replaces ("none")
    pending: int = 0  # operations an interrupted `pulumi up` left in the state


def decide(obs: Observed) -> str:
    """``replace``, ``create`` or ``resume`` (keep the server an earlier run of this rebuild made)."""
    if obs.server is None:
        return "create"  # gone, or the earlier run stopped before its server existed
    if obs.rebuild_of is not None and obs.server != obs.rebuild_of:
        return "resume"
    return "replace"  # no rebuild under way, or the earlier run stopped before replacing


class Platform:
    """Where the rebuild acts: a cloud stack (Pulumi) or the local test host (qemu)."""

    what = "server"
    rerun = ""  # the command that resumes
    gone = "there was none: deleted in the cloud or missing from the state"

    def observe(self) -> Observed: ...
    def begin(self, replaces: str | None) -> None: ...  # record the rebuild before acting
    def replace(self, old: str, replaces: str) -> str: ...  # -> the new server's id
    def create(self, replaces: str) -> str: ...
    def resume(self, server: str) -> str: ...  # make sure that server runs; a note
    def finish(self) -> None: ...  # the rebuild is complete: drop the record
    def wait_ssh(self) -> str: ...
    def converge(self) -> str: ...
    def verify(self) -> str: ...


def _next_for(stage: str, exc: BaseException, p: Platform) -> str:
    rerun = f"rerun `{p.rerun}`"
    if isinstance(exc, HostKeyMismatch):
        return (
            "do not trust it: compare the fingerprint above with the server's own on the provider's console "
            f"(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`); its user-data carries the key, so a mismatch "
            f"is someone in between or a console-made server; then {rerun}"
        )
    if stage == "replace":
        text = str(exc)
        if "currently in progress" in text or "conflict" in text.lower():
            return (
                f"if no other update of the stack runs (Pulumi Cloud: the stack's activity), `pulumi cancel -s "
                f"{p.stack} --yes`, then {rerun}"
            )
        return f"fix the cause above, then {rerun} (it looks at the cloud again: nothing is replaced twice)"
    if stage == "ssh":
        return (
            f"check the new {p.what} on the provider's console (running? its boot log), then {rerun} "
            f"(it keeps this {p.what})"
        )
    return f"fix the cause above, then {rerun} (it keeps this {p.what}: converge and verify only)"


def run_rebuild(p: Platform) -> Stages:
    """The four stages on ``p``; a failure raises ``Stop`` with the next step."""
    stages = Stages()
    stage = "replace"
    try:
        obs = p.observe()
        if obs.pending:
            raise Stop(
                f"an interrupted `pulumi up` left {obs.pending} pending operation(s) in the state of {p.stack} "
                "(a server may exist that the state does not know)",
                f"`pulumi refresh -s {p.stack}` (it asks about each: import the server it names, or clear it and "
                f"delete that server in the console), then rerun `{p.rerun}`",
            )
        action = decide(obs)

        def replace_stage() -> str:
            if action == "resume":
                return p.resume(obs.server)  # type: ignore[arg-type]
            replaces = obs.rebuild_of or obs.server or "none"
            if obs.rebuild_of is None:
                p.begin(obs.server)
            if action == "create":
                new = p.create(replaces)
                return f"created {p.what} {new} ({p.gone})"
            new = p.replace(obs.server, replaces)  # type: ignore[arg-type]
            return f"replaced {p.what} {obs.server} → {new}"

        stages.run("replace", replace_stage)
        for stage, fn in (("ssh", p.wait_ssh), ("converge", p.converge), ("verify", p.verify)):
            stages.run(stage, fn)
        p.finish()
    except Stop:
        raise
    except Exception as exc:  # noqa: BLE001 (whatever a stage raises ends the run as one Stop naming the stage)
        from operate.automation import Unavailable

        if isinstance(exc, Unavailable):
            raise Stop(
                str(exc), f"set what is missing (docs/oncall.md §7), then rerun `{p.rerun}`", cli.Exit.NOT_CHECKED
            ) from None
        raise Stop(f"{stage}: {exc}", _next_for(stage, exc, p)) from None
    return stages


# --- converge and verify ----------------------------------------------------------------------


def verify_host(files, host_name: str) -> str:
    env = {**os.environ, **files.env}
    for h in files.hosts:
        if h.name != host_name:
            continue
        res = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/hosts", "-q", "-p", "no:cacheprovider", *h.testinfra_args],
            cwd=ROOT,
            env={**env, "LLM_PLATFORM_HOST_DATA": str(h.host_data_file)},
        )
        if res.returncode != 0:
            raise RuntimeError(f"testinfra checks failed on {host_name}")
        return "checks passed"
    raise RuntimeError(f"no host {host_name!r} in the stack's inventory")


# --- a cloud stack -----------------------------------------------------------------------------


class CloudHost(Platform):
    """A stack's model host through the Automation API (``operate.automation``: the boundary)."""

    def __init__(self, stack: Any, host: str):
        self.stack_obj, self.stack, self.host = stack, stack.name, host
        self.rerun = f"scripts/rebuild-host {stack.name} {host}"
        self.urn: str | None = None
        self._tags = True
        self._resolved = None

    def _config(self) -> dict[str, str]:
        return {k: v.value for k, v in self.stack_obj.get_all_config().items()}

    def host_key(self) -> str:
        """The public half of the stack's ``hostSshKey``: what every new server answers with."""
        from components import hostkeys

        key = self._config().get("llm-platform:hostSshKey")
        if not key:
            raise Stop(
                f"stack {self.stack} has no host key (llm-platform:hostSshKey): a new server would answer "
                "with a key nobody can check",
                f"`scripts/host-keys {self.stack}`, commit the stack file, then rerun `{self.rerun}`",
                cli.Exit.NOT_CHECKED,
            )
        return hostkeys.public_of(key)

    def observe(self) -> Observed:
        from operate import automation

        self.host_key()  # before anything changes
        found = automation.find_server(self.stack_obj, self.host)
        pending = automation.pending_operations(self.stack_obj)
        if found and not pending:
            self.urn = found[0]
            automation.refresh_server(self.stack_obj, self.urn)  # deleted in the cloud → gone from the state
            found = automation.find_server(self.stack_obj, self.host)
        if self.urn is None:
            host = self._config().get("llm-platform:host") or "{}"
            provider = (json.loads(host) if host.startswith("{") else {}).get("provider", "digitalocean")
            self.urn = automation.expected_server_urn(self.stack_obj, self.host, provider)
        try:
            tag = automation.rebuild_tag(self.stack_obj, self.host)
        except automation.Unavailable as exc:
            print(
                f"warning: stack tags unavailable ({exc}): a rerun after a failure replaces the server again",
                file=sys.stderr,
            )
            self._tags, tag = False, None
        return Observed(found[1] if found else None, tag, pending)

    def begin(self, replaces: str | None) -> None:
        from operate import automation

        if self._tags:
            automation.set_rebuild_tag(self.stack_obj, self.host, replaces)

    def _server(self) -> str:
        from operate import automation

        found = automation.find_server(self.stack_obj, self.host)
        return found[1] if found else "?"

    def replace(self, old: str, replaces: str) -> str:
        from operate import automation

        automation.replace_server(self.stack_obj, self.urn)
        return self._server()

    def create(self, replaces: str) -> str:
        from operate import automation

        automation.create_server(self.stack_obj, self.urn)
        return self._server()

    def resume(self, server: str) -> str:
        return f"kept {self.what} {server}: an earlier run of this rebuild made it"

    def finish(self) -> None:
        from operate import automation

        if self._tags:
            automation.clear_rebuild_tag(self.stack_obj, self.host)

    def _target(self):
        """The stack's hosts, resolved once the new server exists, with the stack's host key pinned."""
        from operate import targets

        if self._resolved is None:
            self._resolved = targets.from_stack(self.stack_obj, host_key=self.host_key())
        return self._resolved

    def wait_ssh(self) -> str:
        try:
            h = self._target().host(self.host)
        except LookupError:
            raise RuntimeError(f"host {self.host!r} is not in stack {self.stack}'s inventory") from None
        return wait_for_ssh(h.ssh_hostname, self.host_key(), h.ssh_port)

    def converge(self) -> str:
        files = self._target().files()
        env = {**os.environ, **files.env}
        pyinfra = str(Path(sys.executable).with_name("pyinfra"))
        res = subprocess.run(
            [pyinfra, str(files.inventory), "hosts/deploy.py", "-y", "--limit", self.host], cwd=ROOT, env=env
        )
        if res.returncode != 0:
            raise RuntimeError(f"converge failed (pyinfra exit {res.returncode})")
        return "converged"

    def verify(self) -> str:
        return verify_host(self._target().files(), self.host)


def rebuild_cloud(stack_name: str, host: str) -> Stages:
    from operate import automation

    try:
        stack = automation.select_stack(stack_name)
    except automation.Unavailable as exc:
        raise Stop(
            str(exc),
            f"set what is missing (docs/oncall.md §7), then rerun `scripts/rebuild-host {stack_name} {host}`",
            cli.Exit.NOT_CHECKED,
        ) from None
    return run_rebuild(CloudHost(stack, host))


def rebuild_local(s: Any = None) -> Stages:
    from operate.rebuild_local import LocalHost
    from testhost.config import config as local_host_config

    return run_rebuild(LocalHost(s or local_host_config()))


EXITS = {
    0: "rebuilt: the host answers SSH with its own key, is converged and verified",
    1: "a stage failed (the error line says which); a rerun resumes",
    2: "could not start: no credentials, no Pulumi CLI, no host key; nothing was changed",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli.add_stack(parser, local=True)
    parser.add_argument("host", nargs="?", help="host name from the stack's inventory output (e.g. llm-prod)")


def run_command(args: argparse.Namespace) -> int:
    from operate import targets

    local = targets.is_local(args.stack)
    if not local and not args.host:
        raise cli.UsageError("HOST is required for a cloud stack (see `pulumi stack output inventory`)")
    try:
        stages = rebuild_local() if local else rebuild_cloud(args.stack, args.host)
    except Stop as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"next: {exc.next_step}", file=sys.stderr)
        return exc.code
    print(stages.summary())
    if local:
        print("next: nothing; known_hosts is unchanged (`scripts/local-host ssh` connects as before)")
    else:
        print(
            f"next: nothing; the host answers with its usual host key (HOSTS_KNOWN_HOSTS unchanged): "
            f"`scripts/drift {args.stack}` should be clean"
        )
    return cli.Exit.OK
