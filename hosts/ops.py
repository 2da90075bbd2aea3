"""Operations of the host layer that pyinfra does not ship. Each yields commands only when the host
differs from what is wanted and otherwise says why nothing is done (``host.noop``), as pyinfra's own
operations do, so a converged host reports no change. ``Restart`` ties a service to the operations
that write its files."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shlex

from pyinfra import host
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import File, Sha256File
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus
from pyinfra.operations import apt, server

from components.catalogue import ANYWHERE_V4, ANYWHERE_V6, service
from hosts.facts import Account, BlockDeviceProbe, DockerImageId, JsonFile, OllamaModels, StatOverride, UfwState

OLLAMA_URL = service("ollama").url


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


@operation()
def service_running(unit: str, units: list[str], running: bool = True, enabled: bool = True):
    """
    A systemd unit running and enabled on boot.

    + unit: the unit (``.service`` when it has no suffix)
    + units: every unit the host's roles keep running (``components.roles.units``), asked about at
      once: the same question for every unit, which the deploy's fact cache answers once until
      something changes, where ``systemd.service`` asks twice per unit (~1 s of ``systemctl`` each
      on an emulated host); listing all of systemd's units costs ~4 s there
    + running/enabled: whether it must be started / enabled (False: left as it is)
    """
    name = unit if "." in unit else f"{unit}.service"
    if name not in units:
        raise ValueError(f"{name} is not among the roles' units (components/roles.py): {', '.join(units)}")
    active = host.get_fact(SystemdStatus, services=list(units)).get(name, False)
    on_boot = host.get_fact(SystemdEnabled, services=list(units)).get(name, False)
    if running and not active:
        yield StringCommand("systemctl", "start", name)
    if enabled and not on_boot:
        # --no-reload: enabling only adds the [Install] links (read at the next boot); the implicit
        # daemon-reload of a plain `enable` costs seconds on a small host and changes nothing here
        yield StringCommand("systemctl", "enable", "--no-reload", name)
    if (active or not running) and (on_boot or not enabled):
        host.noop(f"{name} is {'running' if active else 'as it is'} and {'enabled' if on_boot else 'as it is'}")


APT_LISTS_MAX_AGE = 3600  # seconds: package lists older than this are refreshed before an install


def apt_install(name: str, packages: list[str]):
    """Install ``packages`` (no recommends), refreshing the package lists first only when one of
    them is missing. A host that has them all reports no change, however old its lists are: the
    daily list refresh and the security upgrades are unattended-upgrades' job (base role), so a
    converge or a drift check never counts a package-list refresh as a change."""
    installed = host.get_fact(DebPackages)
    missing = [p for p in packages if p not in installed]
    return apt.packages(
        name=name,
        packages=packages,
        no_recommends=True,
        update=bool(missing),
        cache_time=APT_LISTS_MAX_AGE if missing else None,
    )


@operation()
def account(
    user: str, shell: str, home: str, groups: list[str] | None = None, system: bool = False, create_home: bool = True
):
    """
    A local account with this shell and home, in at least these supplementary groups.

    + user: the account
    + shell/home: its login shell and home directory
    + groups: supplementary groups it must be in (others it is in are left alone)
    + system/create_home: as ``useradd --system`` / ``--create-home`` when it is created

    Reads the one account (``hosts.facts.Account``) instead of every user, as ``server.user`` does.
    """
    current = host.get_fact(Account, user=user)
    if current is None:
        argv = ["useradd", "--shell", shell, "--home-dir", home]
        argv += ["--system"] if system else []
        argv += ["--create-home"] if create_home else ["--no-create-home"]
        argv += ["--groups", ",".join(groups)] if groups else []
        yield StringCommand(*argv, user)
        return
    if current["shell"] != shell:
        yield StringCommand("usermod", "--shell", shell, user)
    if current["home"] != home:
        yield StringCommand("usermod", "--home", home, user)
    missing = [g for g in groups or [] if g not in current["groups"]]
    if missing:
        yield StringCommand("usermod", "--append", "--groups", ",".join(missing), user)
    if current["shell"] == shell and current["home"] == home and not missing:
        host.noop(f"account {user} exists")


def ufw_rule(port: int, source: str) -> str:
    """A rule as ``ufw show added`` prints it (without the leading ``ufw``)."""
    if source in (ANYWHERE_V4, ANYWHERE_V6, "any"):
        return f"allow {port}/tcp"
    return f"allow from {source} to any port {port} proto tcp"


def _ufw(verb: str, rule: str) -> StringCommand:
    """``ufw [verb] RULE`` with every word of the rule quoted for the shell: a rule read back from
    the host (to delete it) or built from data is never shell syntax."""
    words = ([verb] if verb else []) + rule.split()
    return StringCommand("ufw", *(shlex.quote(w) for w in words))


@operation()
def ufw_policy(rules: list[str]):
    """
    Make ufw enforce exactly these rules: default deny incoming, allow outgoing, enabled.

    + rules: ``ufw_rule`` strings; rules the host has beyond them are deleted, missing ones added
    """
    state = host.get_fact(UfwState)
    defaults = state["defaults"]
    current = state["rules"]
    commands = (
        ([StringCommand("ufw", "default", "deny", "incoming")] if defaults.get("incoming") != "deny" else [])
        + ([StringCommand("ufw", "default", "allow", "outgoing")] if defaults.get("outgoing") != "allow" else [])
        + [_ufw("", rule) for rule in rules if rule not in current]
        + [_ufw("delete", rule) for rule in current if rule not in rules]
        + ([StringCommand("ufw", "--force", "enable")] if not state["active"] else [])
    )
    if commands:  # one remote command (each `ufw` is a Python start of its own; no round trip more)
        joined = [commands[0]]
        for command in commands[1:]:
            joined += ["&&", command]
        yield StringCommand(*joined)
    else:
        host.noop(f"ufw enforces exactly {len(rules)} rules")


@operation()
def ollama_models(models: list[str], wait_seconds: int = 60):
    """
    Pull the models Ollama does not have yet, through its API.

    + models: model names (``llama3.1:8b``; ``name`` and ``name:latest`` are the same model)
    + wait_seconds: how long to wait for the API after a (re)start
    """
    present = host.get_fact(OllamaModels) or []
    have = set(present) | {m.removesuffix(":latest") for m in present}
    missing = [m for m in models if m not in have and f"{m}:latest" not in have]
    if not missing:
        host.noop(f"Ollama has {', '.join(models) or 'no models to pull'}")
        return
    yield (
        f"for i in $(seq 1 {wait_seconds}); do curl -fsS --max-time 2 {OLLAMA_URL}/api/version "
        ">/dev/null && break; sleep 1; done"
    )
    for model in missing:
        body = shlex.quote(json.dumps({"model": model, "stream": False}))
        failed = shlex.quote(f"pull of {model} failed")
        yield (
            f"curl -fsS --max-time 7200 -X POST {OLLAMA_URL}/api/pull -d {body} "
            f"| jq -e '.status == \"success\"' >/dev/null || {{ echo {failed} >&2; exit 1; }}"
        )


@operation()
def docker_image(
    ref: str,
    archive_url: str | None = None,
    sha256: str | None = None,
    cache_dir: str = "/var/cache/llm-platform/images",
):
    """
    Make a container image present.

    + ref: ``repo:tag``
    + archive_url/sha256: a ``docker save`` archive to download, check and ``docker load``
      (the artifact source); without one, ``docker pull``
    + cache_dir: where the checked archive is kept on the host
    """
    if host.get_fact(DockerImageId, ref=ref):
        host.noop(f"image {ref} is present")
        return
    if archive_url:
        if not sha256:
            raise ValueError(f"image archive for {ref} needs a sha256")
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"image archive for {ref}: sha256 must be 64 hex digits")
        tar = shlex.quote(f"{cache_dir}/{ref.replace('/', '_').replace(':', '_')}.tar")
        part = shlex.quote(f"{cache_dir}/{ref.replace('/', '_').replace(':', '_')}.tar.part")
        yield f"mkdir -p {shlex.quote(cache_dir)}"
        yield (
            f"curl -fsSL --retry 3 -o {part} {shlex.quote(archive_url)} && "
            f"printf '%s  %s\\n' {sha256} {part} | sha256sum -c --quiet - && mv {part} {tar}"
        )
        yield f"docker load -i {tar}"
        yield f"docker image inspect {shlex.quote(ref)} >/dev/null"
    else:
        yield f"docker pull {shlex.quote(ref)}"


@operation()
def format_blank_volume(device: str, label: str, filesystem: str):
    """
    Format the data volume when, and only when, it is provably blank.

    + device: the volume as the provider names it (/dev/disk/by-id/scsi-0HC_Volume_<id>,
      /dev/disk/by-id/scsi-0DO_Volume_<name>; /dev/vdb on the local test host)
    + label, filesystem: what cloud-init's fs_setup would have made of it

    cloud-init (22.4.2, cc_disk_setup) formats it on first boot only if it is attached by then: a
    device that is missing is logged once, never retried. Here: absent → an error; carrying the label
    → nothing to do; any signature (a filesystem, a partition table, RAID, LVM: ``blkid -p`` and
    ``wipefs -n``) or a partition → an error, never a format; else mkfs.
    """
    probe = host.get_fact(BlockDeviceProbe, device=device)
    if probe is None:
        raise OperationError(
            f"data volume {device} is not attached: attach it (the volume role formats it only when blank)"
        )
    if probe["label"] == label and probe["signatures"] == [filesystem]:
        host.noop(f"{device} is {filesystem} labelled {label}")
        return
    if probe["signatures"] or probe["children"]:
        what = ", ".join(probe["signatures"]) or f"{probe['children']} partition(s)"
        raise OperationError(
            f"data volume {device} ({probe['real']}) is not blank ({what}, label {probe['label']!r}): "
            f"not formatting it; label its filesystem {label!r} if it is the data volume"
        )
    yield StringCommand(f"mkfs.{filesystem}", "-q", "-L", label, device)


class Restart:
    """A service restarted only when one of its own files changed (cmdeploy's pattern).

        unit = Restart("ollama", daemon_reload=True)
        unit.watch(files.template(...))          # each operation that writes one of its files
        unit.watch(files.put(...))
        unit.apply()                             # daemon-reload + restart, only if one changed

    ``command`` replaces the restart (e.g. nginx's check-and-reload)."""

    def __init__(
        self, service: str, daemon_reload: bool = False, name: str | None = None, command: list[str] | None = None
    ):
        self.service, self.daemon_reload, self.name, self.command = service, daemon_reload, name, command
        self.ops: list = []

    def watch(self, op):
        self.ops.append(op)
        return op

    def changed(self) -> bool:
        return any(op.did_change() for op in self.ops)

    def apply(self) -> None:
        """One operation, one command when a watched file changed: ``daemon-reload`` (units) and the
        restart (``systemctl restart`` starts a stopped unit too), or ``command``. No fact is read:
        pyinfra's ``systemd.service`` would list all of systemd's units to decide what it already
        knows (the service must run)."""
        name = self.name or f"{self.service}: restart on change"
        steps = (["systemctl daemon-reload"] if self.daemon_reload else []) + (
            self.command or [f"systemctl restart {shlex.quote(self.service)}"]
        )
        server.shell(name=name, commands=[" && ".join(steps)], _if=self.changed)


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
