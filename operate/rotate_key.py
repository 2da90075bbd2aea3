"""``scripts/rotate-key STACK|local vllm``: rotate the model host's public /v1 key without a failed request.

The steps, in this order (each waits for the one before; the stack config holds where it is, so an
interrupted rotation resumes when the command is run again):

1. the stack's secrets: ``vllmApiKeyPrevious`` = the current key, ``vllmApiKey`` = a new one (32
   random bytes, URL-safe; ``--new-key-file`` to bring your own);
2. converge: nginx accepts both keys (its key map lists them; a reload, no restart). vLLM's own
   ``--api-key`` is host-local (``vllmLocalKey``), so vLLM does not restart;
3. both keys checked through the host's HTTPS endpoint (200 with each, before App Platform changes);
4. App Platform gets the new key: ``LLM_PLATFORM_APPLY_SECRETS=1 pulumi up`` (refused first if the
   stack has any other change pending), then the app's deployment is awaited (``--timeout``);
5. ``--grace`` seconds for requests still in flight on the old instances;
6. ``vllmApiKeyPrevious`` removed, converge: nginx accepts the new key only; checked (the old one
   gets 401, the new one 200).

On the local test host (``local``) there is no App Platform: step 4 writes the new key where its
clients read it (the state directory's ``api-key``) and tells them to switch.

No key value is printed. Exit codes: ``EXITS`` (operate/cli.py's table).
"""

from __future__ import annotations

import argparse
import secrets as _secrets
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from components.secrets import HOST_SECRET, HOST_SECRET_RULE
from operate import cli
from operate.wait import wait_until

KEYS = {"vllm": ("vllmApiKey", "vllmApiKeyPrevious")}
GRACE_S = 30
TIMEOUT_S = 1200
POLL_S = 10


class RotationError(RuntimeError):
    """A step failed: exit 1 (cli.Exit.FAILED; the message says what state the keys are in)."""


class CannotStart(RuntimeError):
    """Nothing was changed: exit 2 (cli.Exit.NOT_CHECKED)."""


class Platform(Protocol):
    """Where the keys live and who uses them: the stack's config and App Platform (or the local host's files)."""

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str) -> None: ...
    def remove(self, key: str) -> None: ...
    def pending_changes(self) -> list[str]: ...
    def push(self) -> str: ...  # the new key to its users; returns the time it started (RFC 3339)
    def live(self, since: str) -> tuple[bool, str]: ...  # the users' deployment runs with it


class Hosts(Protocol):
    def converge(self) -> None: ...  # raises RotationError when it fails
    def accepts(self, key: str) -> bool: ...  # a /v1 request with this key is answered (not 401)


@dataclass
class Options:
    grace: float = GRACE_S
    timeout: float = TIMEOUT_S
    poll: float = POLL_S


def new_key() -> str:
    return _secrets.token_urlsafe(32)


def rotate(
    which: str,
    platform: Platform,
    hosts: Hosts,
    opts: Options = Options(),
    *,
    key: str | None = None,
    say: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    current_key, previous_key = KEYS[which]
    current = platform.get(current_key)
    if not current:
        raise CannotStart(f"no {current_key} to rotate in this stack")
    previous = platform.get(previous_key)
    if previous:
        say(f"resuming: a rotation is under way ({previous_key} is set); the new key is {current_key}")
        old, new = previous, current
    else:
        pending = platform.pending_changes()
        if pending:
            raise CannotStart(
                "the stack has other changes pending (" + ", ".join(pending[:5]) + "): apply or revert "
                "them first (pulumi up); nothing was changed"
            )
        new = key or new_key()
        if not HOST_SECRET.fullmatch(new):
            raise CannotStart(f"the new key {HOST_SECRET_RULE}")
        if new == current:
            raise CannotStart("the new key is the current one")
        old = current
        platform.set(previous_key, old)  # first: an interruption never loses the key the app runs with
        platform.set(current_key, new)
        say(f"1/6 stack: {previous_key} = the current key, {current_key} = a new key")

    say("2/6 hosts: converge (nginx accepts the old and the new key; vLLM keeps its host-local key)")
    hosts.converge()
    for label, k in (("new", new), ("old", old)):
        if not hosts.accepts(k):
            raise RotationError(
                f"the hosts refuse the {label} key after the converge; App Platform still has the old "
                "key; fix the host and rerun to resume"
            )
    say("3/6 hosts: the old and the new key are both accepted")

    say("4/6 app: pushing the new key (pulumi up applying secrets), then awaiting the app's deployment")
    since = platform.push()
    what = ""

    def live() -> bool:
        nonlocal what
        ok, what = platform.live(since)
        return ok

    wait_until(
        live,
        opts.timeout,
        opts.poll,
        lambda: (
            f"the app's deployment is not live after {opts.timeout:.0f} s ({what}); both keys stay "
            "accepted; rerun to resume"
        ),
        error=RotationError,
        on_wait=lambda: say(f"      waiting: {what}"),
        clock=clock,
        sleep=sleep,
    )
    say(f"      live: {what}; clients use the new key now")

    if opts.grace > 0:
        say(f"5/6 grace: {opts.grace:.0f} s for requests in flight with the old key")
        sleep(opts.grace)
    platform.remove(previous_key)
    say(f"6/6 hosts: {previous_key} removed; converge (nginx accepts the new key only)")
    hosts.converge()
    if hosts.accepts(old) or not hosts.accepts(new):
        raise RotationError(
            "after the last converge the hosts do not accept exactly the new key; check the host "
            "(scripts/drift) and rerun"
        )
    say("rotated: the old key gets 401, the new key is accepted")


# --------------------------------------------------------------------------------------------------
# The real boundaries
# --------------------------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PulumiPlatform:
    """The stack's config and App Platform, through operate.automation."""

    def __init__(self, stack: Any):
        self.stack = stack

    def get(self, key: str) -> str | None:
        from operate import automation

        return automation.config_secret(self.stack, key)

    def set(self, key: str, value: str) -> None:
        from operate import automation

        automation.set_config_secret(self.stack, key, value)

    def remove(self, key: str) -> None:
        from operate import automation

        automation.remove_config(self.stack, key)

    def pending_changes(self) -> list[str]:
        from operate import automation

        outcome = automation.preview_changes(self.stack)
        if not outcome.ran:
            raise CannotStart(f"pulumi preview failed: {'; '.join(outcome.errors)[:300]}")
        return [f"{c.op} {c.name}" for c in outcome.changes]

    def push(self) -> str:
        from operate import automation

        since = _now()
        automation.up_applying_secrets(self.stack, on_output=lambda line: None)
        return since

    def live(self, since: str) -> tuple[bool, str]:
        from operate import automation

        token = automation.provider_token(self.stack, "digitalocean:token", "DIGITALOCEAN_TOKEN")
        if not token:
            raise RotationError(
                "no DigitalOcean token to read the app's deployment (DIGITALOCEAN_TOKEN or digitalocean:token)"
            )
        try:
            app = automation.app_deployment(automation.app_id(self.stack), token)
        except OSError as exc:
            return False, f"cannot read the app's deployment ({exc.__class__.__name__})"
        return automation.deployment_live(app, since)


class LocalPlatform:
    """The local test host's generated secrets; its 'app' is whoever reads the state directory's api-key."""

    def __init__(self, s: Any = None, on_switch: Callable[[str], None] | None = None):
        from testhost import access as li
        from testhost.config import config as local_host_config

        self.s = s or local_host_config()
        self.file = li.secrets_file(self.s)
        self.key_file = li.api_key_file(self.s)
        self.on_switch = on_switch

    def _values(self) -> dict[str, str]:
        """As the deploy reads them: a file group/others can read is refused."""
        from hosts.secret_values import MissingSecret, read_file

        try:
            return read_file(self.file)
        except MissingSecret as exc:
            raise CannotStart(str(exc)) from None

    def _write(self, values: dict[str, str]) -> None:
        import json
        import os

        tmp = self.file.with_name(f".{self.file.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(values, indent=2) + "\n")
        os.replace(tmp, self.file)

    def get(self, key: str) -> str | None:
        return self._values().get(key) or None

    def set(self, key: str, value: str) -> None:
        self._write({**self._values(), key: value})

    def remove(self, key: str) -> None:
        self._write({k: v for k, v in self._values().items() if k != key})

    def pending_changes(self) -> list[str]:
        return []

    def push(self) -> str:
        import os

        new = self._values()["vllmApiKey"]
        tmp = self.key_file.with_name(f".{self.key_file.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new + "\n")
        os.replace(tmp, self.key_file)
        if self.on_switch:
            self.on_switch(new)
        return _now()

    def live(self, since: str) -> tuple[bool, str]:
        return True, f"the new key is in {self.key_file}"


class ConvergeHosts:
    """scripts/converge STACK (its output passed through) and a /v1/models probe per key."""

    def __init__(self, stack: str, endpoint: Callable[[str], Any]):
        self.stack = stack
        self.endpoint = endpoint  # key -> operate.smoke.Endpoint

    def converge(self) -> None:
        import subprocess

        from components import ROOT

        rc = subprocess.run([str(ROOT / "scripts" / "converge"), self.stack], cwd=ROOT).returncode
        if rc != 0:
            raise RotationError(f"scripts/converge {self.stack} exited {rc}")

    def accepts(self, key: str) -> bool:
        from operate.smoke import client

        ep = self.endpoint(key)
        try:
            with client(ep) as conn:
                status = conn.request("GET", "/models", headers={"Authorization": f"Bearer {key}"}).status_code
        except Exception as exc:  # noqa: BLE001 (any transport failure: not accepted, say why)
            raise RotationError(f"cannot reach {ep.base_url}: {exc.__class__.__name__}") from None
        if status not in (200, 401):
            raise RotationError(f"{ep.base_url}/models answered HTTP {status}")
        return status == 200


def _endpoints(stack: str, local_settings: Any = None) -> tuple[Platform, Hosts]:
    from dataclasses import replace

    from operate import smoke, targets

    target = targets.resolve(stack, local_settings=local_settings)
    if not target.hosts:
        raise CannotStart(f"stack {stack} has no model host (host_base_url output): nothing to rotate")
    base = smoke.endpoint(target)
    platform = LocalPlatform(target.local) if target.is_local else PulumiPlatform(target.stack)
    return platform, ConvergeHosts(stack, lambda key: replace(base, api_key=key))


EXITS = {
    0: "rotated: the new key is live on App Platform and the hosts; the old key gets 401",
    1: "a step failed: the line says which; the old key stays accepted until the new one is live; "
    "rerun the same command to resume",
    2: "could not start: no credentials, no model host, nothing to rotate, other changes pending; nothing was changed",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli.add_stack(parser, local=True)
    parser.add_argument("which", choices=sorted(KEYS), help="which key: vllm (the model host's /v1 key)")
    parser.add_argument(
        "--grace",
        type=float,
        default=GRACE_S,
        help=f"seconds between the app's deployment and removing the old key (default {GRACE_S})",
    )
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT_S, help=f"seconds to await the app's deployment (default {TIMEOUT_S})"
    )
    parser.add_argument("--new-key-file", help="read the new key from this file (default: 32 random bytes)")


def run_command(args: argparse.Namespace) -> int:
    from operate.automation import Unavailable

    try:
        key = None
        if args.new_key_file:
            with open(args.new_key_file, encoding="utf-8") as fh:
                key = fh.read().strip()
        platform, hosts = _endpoints(args.stack)
        rotate(
            args.which,
            platform,
            hosts,
            Options(grace=args.grace, timeout=args.timeout),
            key=key,
            say=lambda line: print(line, flush=True),
        )
    except (CannotStart, Unavailable, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return cli.Exit.NOT_CHECKED
    except (RotationError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return cli.Exit.FAILED
    return cli.Exit.OK
