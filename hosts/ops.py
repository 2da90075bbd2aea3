"""Operations of the host layer that pyinfra does not ship, for everything but writing a file
(``hosts.file_ops``): services, packages, accounts, the firewall, Ollama's models, Docker images,
the data volume. Each yields commands only when the host differs from what is wanted and otherwise
says why nothing is done (``host.noop``), as pyinfra's own operations do, so a converged host
reports no change. ``Restart`` ties a service to the operations that write its files."""

from __future__ import annotations

import json
import re
import shlex

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus
from pyinfra.operations import apt, server

from components.catalogue import ANYWHERE_V4, ANYWHERE_V6, service
from hosts.facts import Account, BlockDeviceProbe, DockerImageId, OllamaModels, UfwState

OLLAMA_URL = service("ollama").url


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
