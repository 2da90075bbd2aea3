"""Operations of the host layer that pyinfra does not ship. Each yields commands only when the host
differs from what is wanted, so a converged host reports no change."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shlex

from pyinfra import host
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import File, Sha256File
from pyinfra.operations import apt

from components.catalogue import ANYWHERE_V4, ANYWHERE_V6, service
from hosts.facts import Account, DockerImageId, OllamaModels, UfwState

OLLAMA_URL = service("ollama").url


UPLOAD_DIR = "/var/lib/llm-platform/upload"
"""Private (0700, the SSH user's) directory uploads pass through; created by the base role."""


@operation()
def secret_file(dest: str, value: str, user: str = "root", group: str = "root", mode: str = "600",
                uploader: str = "root"):
    """Write a secret to ``dest`` (mode 0600 by default). The value is never logged or diffed: only
    its sha256 is compared with the file on the host.

    No moment exists where another account can read it: the SSH user (``uploader``) uploads into
    its own 0700 directory, and the destination gets its owner and mode *before* ``cp`` fills it
    (``cp`` into an existing file keeps them), instead of pyinfra's default of a /tmp file with the
    umask's mode followed by chmod.
    """
    want = hashlib.sha256(value.encode()).hexdigest()
    current = host.get_fact(Sha256File, path=dest)
    info = host.get_fact(File, path=dest)
    if current != want:
        yield StringCommand("install", "-d", "-m", "700", "-o", uploader, "-g", uploader, UPLOAD_DIR)
        if info:
            yield StringCommand("chown", f"{user}:{group}", dest)
            yield StringCommand("chmod", mode, dest)
        else:
            yield StringCommand("install", "-m", mode, "-o", user, "-g", group, "/dev/null", dest)
        temp = host.get_temp_filename(dest, temp_directory=UPLOAD_DIR)
        yield FileUploadCommand(io.BytesIO(value.encode()), dest, remote_temp_filename=temp)
        return
    if info and (info.get("user") != user or info.get("group") != group):
        yield StringCommand("chown", f"{user}:{group}", dest)
    if info and str(info.get("mode")).zfill(3) != mode[-3:]:  # pyinfra's File fact: mode as 600, 640...
        yield StringCommand("chmod", mode, dest)


APT_LISTS_MAX_AGE = 3600  # seconds: package lists older than this are refreshed before an install


def apt_install(name: str, packages: list[str]):
    """Install ``packages`` (no recommends), refreshing the package lists first only when one of
    them is missing. A host that has them all reports no change, however old its lists are: the
    daily list refresh and the security upgrades are unattended-upgrades' job (base role), so a
    converge or a drift check never counts a package-list refresh as a change."""
    installed = host.get_fact(DebPackages)
    missing = [p for p in packages if p not in installed]
    return apt.packages(name=name, packages=packages, no_recommends=True,
                        update=bool(missing), cache_time=APT_LISTS_MAX_AGE if missing else None)


@operation()
def account(user: str, shell: str, home: str, groups: list[str] | None = None, system: bool = False,
            create_home: bool = True):
    """A local account with this shell and home, in at least these supplementary groups (others
    are left alone). Reads the one account (see ``hosts.facts.Account``) instead of all of them."""
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


def ufw_rule(port: int, source: str) -> str:
    """A rule as ``ufw show added`` prints it (without the leading ``ufw``)."""
    if source in (ANYWHERE_V4, ANYWHERE_V6, "any"):
        return f"allow {port}/tcp"
    return f"allow from {source} to any port {port} proto tcp"


@operation()
def ufw_policy(rules: list[str]):
    """Make ufw enforce exactly ``rules`` (``ufw_rule`` strings): default deny incoming, allow
    outgoing; extra rules are deleted, missing ones added, ufw enabled."""
    state = host.get_fact(UfwState)
    defaults = state["defaults"]
    if defaults.get("incoming") != "deny":
        yield "ufw default deny incoming"
    if defaults.get("outgoing") != "allow":
        yield "ufw default allow outgoing"
    current = state["rules"]
    for rule in rules:
        if rule not in current:
            yield f"ufw {rule}"
    for rule in current:
        if rule not in rules:
            yield f"ufw delete {rule}"
    if not state["active"]:
        yield "ufw --force enable"


@operation()
def ollama_models(models: list[str], wait_seconds: int = 60):
    """Pull the models Ollama does not have yet, through its API; a change only when one is pulled."""
    present = host.get_fact(OllamaModels) or []
    have = set(present) | {m.removesuffix(":latest") for m in present}
    missing = [m for m in models if m not in have and f"{m}:latest" not in have]
    if not missing:
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
def docker_image(ref: str, archive_url: str | None = None, sha256: str | None = None, cache_dir: str = "/var/cache/llm-platform/images"):
    """Make image ``ref`` present: ``docker load`` a checksummed archive when one is given, else
    ``docker pull``. Nothing happens when the image is already there."""
    if host.get_fact(DockerImageId, ref=ref):
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
