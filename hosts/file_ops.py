"""Operations that write a file on the host: its whole content (``put_file``, ``template_file``;
``secret_file`` for a secret), keys of a JSON file (``json_settings``), and a packaged file's owner
and mode (``stat_override``). Like every operation of ``hosts.ops``, each yields commands only when
the file differs from what is wanted and otherwise says why nothing is done (``host.noop``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shlex

from pyinfra import host
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.files import File, Sha256File

from hosts.facts import JsonFile, StatOverride

UPLOAD_DIR = "/var/lib/llm-platform/upload"
"""Private (0700, the SSH user's) directory uploads pass through; created by the base role."""


MAX_INLINE = 64 * 1024  # bytes: a file this small travels inside its one command (an argument's limit is 128 KiB)


class WriteFile(StringCommand):
    """One remote command writing a (non-secret) file whole: into a temporary file beside ``dest``
    with its owner and mode, then renamed over it (atomic). pyinfra's ``files.put`` pays an upload,
    a copy and a chmod/chown: three round trips where this is one. ``dest`` and ``content`` stay on
    the command for ``hosts/dryplan.py``'s diff."""

    def __init__(self, dest: str, content: bytes, user: str, group: str, mode: str):
        q = shlex.quote
        self.dest, self.content = dest, content
        super().__init__(
            f"set -e; mkdir -p {q(os.path.dirname(dest) or '/')}; t=$(mktemp {q(dest)}.llm-XXXXXX); "
            f'trap \'rm -f "$t"\' EXIT; echo {base64.b64encode(content).decode()} | base64 -d >"$t"; '
            f'chown {q(user)}:{q(group)} "$t"; chmod {q(mode)} "$t"; mv -f "$t" {q(dest)}'
        )

    def get_masked_value(self) -> str:
        return f"write {self.dest} ({len(self.content)} bytes)"


def _owner_mode_fixes(info: dict | None, dest: str, user: str, group: str, mode: str) -> list[str]:
    """The ``chown``/``chmod`` commands that give an existing file (pyinfra's ``File`` fact: ``user``,
    ``group``, ``mode`` as 644, 640...) this owner and mode; a missing file gets both."""
    q = shlex.quote
    fixes = []
    if not info or (info.get("user"), info.get("group")) != (user, group):
        fixes.append(f"chown {q(user)}:{q(group)} {q(dest)}")
    if not info or str(info.get("mode")).zfill(3) != mode[-3:].zfill(3):
        fixes.append(f"chmod {q(mode)} {q(dest)}")
    return fixes


def _content(src) -> bytes:
    if hasattr(src, "read"):
        value = src.read()
        src.seek(0)
        return value.encode() if isinstance(value, str) else value
    with open(src, "rb") as f:
        return f.read()


@operation()
def put_file(src, dest: str, mode: str = "644", user: str = "root", group: str = "root"):
    """
    A configuration file with exactly this content, owner and mode (``files.put``'s arguments).

    + src: a file-like object or a local path
    + dest: path on the host (its directory is created)
    + mode/user/group: of the file

    A file that differs is written with one command (``WriteFile``); one whose owner or mode
    differs gets one ``chown``/``chmod`` command. Never for secrets (the content is in the command
    line, where sudo's log keeps it): ``secret_file`` is.
    """
    content = _content(src)
    if len(content) > MAX_INLINE:
        raise OperationError(f"{dest}: {len(content)} bytes is too large to write inline (at most {MAX_INLINE})")
    info = host.get_fact(File, path=dest)
    if info is False:
        raise OperationError(f"{dest} exists and is not a file")
    if not info or host.get_fact(Sha256File, path=dest) != hashlib.sha256(content).hexdigest():
        yield WriteFile(dest, content, user, group, mode)
        return
    fixes = _owner_mode_fixes(info, dest, user, group, mode)
    if fixes:
        yield StringCommand(" && ".join(fixes))
    else:
        host.noop(f"{dest} is up to date")


def template_file(
    src: str, dest: str, mode: str = "644", user: str = "root", group: str = "root", name: str | None = None, **data
):
    """``files.template``'s arguments, written by ``put_file``: the jinja2 template rendered here
    (with pyinfra's own loader) and sent in one command."""
    from pyinfra.api.util import get_template

    rendered = get_template(src).render(data)
    return put_file(
        name=name or f"template {dest}", src=io.StringIO(rendered), dest=dest, mode=mode, user=user, group=group
    )


@operation()
def secret_file(
    dest: str, value: str, user: str = "root", group: str = "root", mode: str = "600", uploader: str = "root"
):
    """
    Write a secret into a file no other account can read at any moment.

    + dest: path of the file on the host
    + value: its content (never logged or diffed: only its sha256 is compared with the host's file)
    + user/group/mode: owner and mode of ``dest``
    + uploader: the SSH user, who uploads into its own 0700 directory first

    The destination gets its owner and mode *before* the upload fills it (``cp`` into an existing
    file keeps them), instead of pyinfra's default of a /tmp file with the umask's mode followed by
    chmod.
    """
    want = hashlib.sha256(value.encode()).hexdigest()
    current = host.get_fact(Sha256File, path=dest)
    info = host.get_fact(File, path=dest)
    if current != want:  # one command prepares both, then the upload
        prepare = ["install", "-d", "-m", "700", "-o", uploader, "-g", uploader, UPLOAD_DIR, "&&"]
        if info:
            yield StringCommand(*prepare, "chown", f"{user}:{group}", dest, "&&", "chmod", mode, dest)
        else:
            yield StringCommand(*prepare, "install", "-m", mode, "-o", user, "-g", group, "/dev/null", dest)
        temp = host.get_temp_filename(dest, temp_directory=UPLOAD_DIR)
        yield FileUploadCommand(io.BytesIO(value.encode()), dest, remote_temp_filename=temp)
        return
    fixes = _owner_mode_fixes(info, dest, user, group, mode)
    for fix in fixes:
        yield StringCommand(fix)
    if not fixes:
        host.noop(f"secret {dest} is up to date")


def _mode(mode: str) -> str:
    return mode.lstrip("0").rjust(3, "0")


@operation()
def stat_override(path: str, user: str, group: str, mode: str):
    """
    A packaged file's owner and mode, kept across package upgrades (``dpkg-statoverride``).

    + path: the file (not a symlink to it); absent → nothing to do (its package is not installed)
    + user/group/mode: what it must have (mode in octal, e.g. ``0750``)
    """
    want = f"{user} {group} {_mode(mode)}"
    current = host.get_fact(StatOverride, path=path)
    if current is None:
        host.noop(f"{path} is absent")
        return
    override = current["override"]
    if override is not None:
        u, g, m = override.split()
        override = f"{u} {g} {_mode(m)}"
    if override == want and f"{current['user']} {current['group']} {_mode(current['mode'])}" == want:
        host.noop(f"{path} is {want}")
        return
    if current["override"] is not None:
        yield StringCommand("dpkg-statoverride", "--remove", path)
    yield StringCommand("dpkg-statoverride", "--update", "--add", user, group, mode, path)


def merged_json(current: str | None, settings: dict, path: str) -> tuple[dict, bool]:
    """``settings`` set over the JSON object ``current`` (a file's text; None or empty: ``{}``): the
    result and whether it differs from ``current``. Keys ``settings`` does not name are kept (the
    nvidia role's ``nvidia-ctk`` writes its runtime into the same file). Not an object → error."""
    try:
        have = json.loads(current) if current and current.strip() else {}
    except ValueError as e:
        raise OperationError(f"{path} is not valid JSON ({e}): fix or remove it") from None
    if not isinstance(have, dict):
        raise OperationError(f"{path} is not a JSON object: fix or remove it")
    want = {**have, **settings}
    return want, want != have


@operation()
def json_settings(path: str, settings: dict, mode: str = "644"):
    """
    Set keys of a JSON object file, keeping the keys other tools wrote (compared parsed, not as text).

    + path: the file (created when absent)
    + settings: key → value to set
    + mode: the file's mode when written
    """
    want, changed = merged_json(host.get_fact(JsonFile, path=path), settings, path)
    if not changed:
        host.noop(f"{path} has {', '.join(sorted(settings))}")
        return
    yield FileUploadCommand(io.BytesIO((json.dumps(want, indent=2, sort_keys=True) + "\n").encode()), path)
    yield StringCommand("chmod", mode, path)
