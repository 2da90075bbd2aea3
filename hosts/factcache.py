"""Facts read once per converge: a memo, and the last run's questions asked in one remote command.

pyinfra 3.10 has no fact cache: every operation runs its own fact commands (``files.put``: the
directory, the file, its checksum; ``systemd.service``: the unit's state and whether it is enabled;
``apt``: the whole ``dpkg -l``). Under emulation each remote command costs ~0.4 s (SSH channel +
sudo), so a no-op converge of ~95 operations was ~155 commands. The deploy installs this on the host
(``install``) before the roles run:

* **memo**: a fact asked again with the same arguments is answered from the first answer, as long
  as nothing has changed the host since. Any command an operation runs, and any upload, empties
  the memo (facts are only ever gathered by reading), so an operation never sees a value from
  before a change it or another operation made. A dry run changes nothing: every fact is read once.
* **prefetch**: the questions the previous run on this host asked, in their order (names and
  arguments only, no values, in ``~/.cache/llm-platform/fact-keys/<host>.json``), are asked ahead in
  one remote command per window, using pyinfra's own fact classes for the commands and the parsing.
  The window grows while its answers get used (a converged host: the whole run in a handful of
  commands) and shrinks when a change throws unused answers away (a fresh host, where nearly every
  operation changes something: about one command per fact, as without the cache). Answers that
  exit non-zero or lack their command are left out (asked live, with pyinfra's own handling). A host
  this machine has not converged before is asked fact by fact.

Values never leave the process; the keys file holds fact names and arguments (paths, unit names).
"""

from __future__ import annotations

import atexit
import copy
import importlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

KEYS_DIR_ENV = "LLM_PLATFORM_FACT_KEYS_DIR"
KEEP_RUNS = 5  # a question not asked in this many runs is dropped from the keys file
FIRST_WINDOW, MAX_WINDOW = 8, 64  # facts asked ahead in one command: at first, at most


def keys_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llm-platform" / "fact-keys"
    return Path(os.environ.get(KEYS_DIR_ENV) or default)


# How a fact is run (who, which shell, where): part of its key. A call with an environment or a
# password among its arguments is never cached (nothing secret is written to the keys file).
RUN_AS = ("_sudo", "_sudo_user", "_su_user", "_use_sudo_login", "_use_su_login", "_shell_executable", "_chdir")
NEVER = ("_env", "_sudo_password", "_su_password")


def _key(cls: type, kwargs: dict, executor: dict) -> str | None:
    """``module.Class|{json kwargs}|{json run-as}``; None for a call this cache leaves alone."""
    if any(k.startswith("_") for k in kwargs) or any(executor.get(k) for k in NEVER):
        return None
    try:
        run_as = {k: executor.get(k) for k in RUN_AS}
        args, user = json.dumps(kwargs, sort_keys=True), json.dumps(run_as, sort_keys=True)
        return f"{cls.__module__}.{cls.__qualname__}|{args}|{user}"
    except TypeError:
        return None


def _fact_of(key: str) -> tuple[type, dict, dict]:
    name, args, run_as = key.split("|", 2)
    module, _, cls = name.rpartition(".")
    return getattr(importlib.import_module(module), cls), json.loads(args), json.loads(run_as)


class FactCache:
    def __init__(self, host: Any, state: Any):
        from pyinfra.api.facts import ShortFactBase

        self.host, self.state, self._short = host, state, ShortFactBase
        self.memo: dict[str, Any] = {}
        self.asked: list[str] = []  # this run's questions, in order
        self.reading = False
        self.stats = {"asked": 0, "memo": 0, "prefetched": 0, "live": 0, "batch_commands": 0}
        self.path = keys_dir() / f"{host.name}.json"
        try:
            doc = json.loads(self.path.read_text())
            self.runs, self.seen, order = int(doc["runs"]), dict(doc["seen"]), list(doc["order"])
        except (OSError, ValueError, KeyError, TypeError):
            self.runs, self.seen, order = 0, {}, []
        self.order = order  # the last run's questions, in the order it asked them
        self.position = {k: i for i, k in enumerate(order)}
        self.window, self.outstanding, self.wasted = FIRST_WINDOW, set(), False
        self.building = False  # a fact's command() may ask another fact (the OS, the kernel): asked live
        self.seen_now = set()
        self._real_get_fact = host.get_fact
        self._real_run, self._real_put = host.run_shell_command, host.put_file

    # -- the wrapped host methods ------------------------------------------------------------------
    def get_fact(self, cls, *args, **kwargs):
        key = None if args or issubclass(cls, self._short) else _key(cls, kwargs, self._executor(cls, kwargs))
        if key is None:
            return self._read(cls, *args, **kwargs)
        self.stats["asked"] += 1
        if key not in self.seen_now:
            self.seen_now.add(key)
            self.asked.append(key)
        if key not in self.memo and key in self.position and not self.building:
            self._ahead(key)
        if key in self.memo:
            self.stats["memo"] += 1
            self.outstanding.discard(key)
            return copy.deepcopy(self.memo[key])
        self.stats["live"] += 1
        value = self._read(cls, **kwargs)
        self.memo[key] = copy.deepcopy(value)
        return value

    def _ahead(self, key: str) -> None:
        """Ask ``key`` and the last run's next questions after it in one command (one window)."""
        if not self.outstanding and not self.wasted:
            self.window = min(2 * self.window, MAX_WINDOW) if self.stats["batch_commands"] else self.window
        self.wasted = False
        start = self.position[key]
        chunk = [k for k in self.order[start : start + self.window] if k not in self.memo]
        if len(chunk) > 1:
            self.building = True
            try:
                self._prefetch(chunk)
            finally:
                self.building = False
            self.outstanding = {k for k in chunk if k in self.memo} - {key}

    def _invalidate(self) -> None:
        if self.outstanding:  # answers fetched ahead and thrown away: ask fewer ahead
            self.window, self.wasted = max(1, self.window // 2), True
        self.outstanding.clear()
        self.memo.clear()

    def run_shell_command(self, *args, **kwargs):
        if not self.reading:
            self._invalidate()  # an operation's command: the host may have changed
        return self._real_run(*args, **kwargs)

    def put_file(self, *args, **kwargs):
        self._invalidate()
        return self._real_put(*args, **kwargs)

    # -- internals ---------------------------------------------------------------------------------
    def _split(self, cls, kwargs: dict) -> tuple[dict, dict]:
        """(the fact's own arguments with its defaults, the connector arguments pyinfra would run it
        with): ``_get_fact``'s own split."""
        from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
        from pyinfra.api.facts import _handle_fact_kwargs

        fact_kwargs, global_kwargs = _handle_fact_kwargs(self.state, self.host, cls, None, dict(kwargs))
        return fact_kwargs, {k: v for k, v in global_kwargs.items() if k in CONNECTOR_ARGUMENT_KEYS}

    def _executor(self, cls, kwargs: dict) -> dict:
        try:
            return self._split(cls, kwargs)[1]
        except Exception:  # noqa: BLE001 (pyinfra's private argument split refused it: the fact is not cached)
            return {"_env": "unknown"}  # not cached

    def _read(self, cls, *args, **kwargs):
        self.reading = True
        try:
            return self._real_get_fact(cls, *args, **kwargs)
        finally:
            self.reading = False

    def _prefetch(self, keys: list[str]) -> None:
        """Ask these questions in one command; keep the answers that exited 0."""
        from pyinfra.api.command import StringCommand
        from pyinfra.api.facts import _MISSING_COMMAND_MARKER, _make_command

        marker = f"__llm_fact_{secrets.token_hex(6)}"
        parts, facts, executor = [], {}, None
        for i, key in enumerate(keys):
            try:
                cls, kwargs, run_as = _fact_of(key)
                fact_kwargs, now = self._split(cls, kwargs)
                if any(now.get(k) != v for k, v in run_as.items()) or any(now.get(k) for k in NEVER):
                    continue  # run otherwise now: asked live if asked
                executor = executor or now
                fact = cls()
                command = _make_command(fact.command, fact_kwargs)
                requires = _make_command(fact.requires_command, fact_kwargs)
            except Exception:  # noqa: BLE001 (a fact renamed or removed since the last run: ask it live if asked)
                continue
            text = command.get_raw_value() if isinstance(command, StringCommand) else str(command)
            if requires:
                text = (
                    f"if command -v {requires} >/dev/null 2>&1; then ( {text} ); "
                    f"else echo '{_MISSING_COMMAND_MARKER}'; fi"
                )
            # side by side in the host's shell (each reads only), each answer to its own file
            parts.append(f'{{ ( {text} ) >"$d/{i}" 2>/dev/null; echo $? >"$d/{i}.rc"; }} &')
            facts[i] = (key, fact)
        if not parts:
            return
        order = " ".join(str(i) for i in facts)
        script = (
            "d=$(mktemp -d) || exit 1; " + " ".join(parts) + " wait; "
            f'for i in {order}; do echo {marker}:$i; cat "$d/$i"; echo {marker}:$i:$(cat "$d/$i.rc"); done; '
            'rm -rf "$d"'
        )
        self.reading = True
        try:
            ok, output = self._real_run(
                StringCommand(script), print_output=False, print_input=False, **(executor or {})
            )
        finally:
            self.reading = False
        self.stats["batch_commands"] += 1
        current, lines = None, []
        for line in output.stdout_lines:
            if marker in line and not line.startswith(marker):  # an answer without its last newline
                head, _, tail = line.partition(marker)
                if current is not None:
                    lines.append(head)
                line = marker + tail
            if line.startswith(marker + ":"):
                fields = line.split(":")
                if len(fields) == 2:
                    current, lines = int(fields[1]), []
                elif current is not None and len(fields) == 3 and int(fields[1]) == current:
                    key, fact = facts[current]
                    if fields[2] == "0" and lines != [_MISSING_COMMAND_MARKER]:
                        try:
                            self.memo[key] = fact.process(lines) if lines else fact.default()
                            self.stats["prefetched"] += 1
                        except Exception:  # noqa: BLE001 (the fact's own parser failed on the output)
                            pass  # asked live, with pyinfra's own error handling
                    current = None
                continue
            if current is not None:
                lines.append(line)

    def save(self) -> None:
        """Remember this run's questions in their order, then the older ones still recent (a dry
        run asks fewer); a question not asked in KEEP_RUNS runs is dropped."""
        runs = self.runs + 1
        seen = {k: v for k, v in self.seen.items() if runs - int(v) < KEEP_RUNS}
        seen.update({k: runs for k in self.asked})
        order = self.asked + [k for k in self.order if k in seen and k not in self.seen_now]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"runs": runs, "order": order, "seen": seen}, indent=0))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache: the next run asks fact by fact


def install(host: Any, state: Any) -> FactCache:
    """Wrap ``host``'s fact, command and upload methods for this run; saves its questions at exit."""
    existing = getattr(host, "_llm_fact_cache", None)
    if existing is not None:
        return existing
    cache = FactCache(host, state)
    host.get_fact = cache.get_fact
    host.run_shell_command = cache.run_shell_command
    host.put_file = cache.put_file
    host._llm_fact_cache = cache
    atexit.register(cache.save)
    return cache
