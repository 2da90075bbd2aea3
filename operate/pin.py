"""``scripts/pin ollama STACK VERSION``: pin an Ollama release in a stack file.

Reads the release's ``sha256sum.txt`` from the artifact source (the vendor's release downloads by
default; ``--source URL`` or ``LLM_PLATFORM_OLLAMA_RELEASES`` for a mirror laid out the same way:
``URL/v<version>/<file>``), takes the line of the archive that release publishes
(``components.ollama_release.ollama_archive``) and writes ``host.ollama.version`` and
``host.ollama.sha256`` into ``stacks/Pulumi.STACK.yaml``, keeping the file's comments and order.

The checksum is what the deploy trusts the archive by, so its source must be https: an ``http://`` or
``file://`` source is refused unless ``--insecure`` is given (then a warning says it was not checked).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from components import NAMESPACE, ollama_release, stackfile, upstream
from components.patterns import RELEASE_VERSION, URL
from operate import cli
from operate.httpclient import reason

SOURCE_ENV = "LLM_PLATFORM_OLLAMA_RELEASES"
MAX_CHECKSUM_FILE = 1 << 20

EXITS = {
    0: "pinned (or already pinned)",
    1: "refused: the stack file has no host block to pin in",
    2: "could not read the release's checksums (network, HTTP status, no such archive listed); "
    "one line on stderr says why",
    3: "not a release version, or a source that is not https:// without --insecure",
}


class PinError(Exception):
    """The pin could not be made: one line; ``code`` per EXITS (default: could not read the checksums)."""

    def __init__(self, message: str, code: int = cli.Exit.NOT_CHECKED):
        super().__init__(message)
        self.code = code


def check_source(source: str, insecure: bool) -> str:
    """The artifact source, if it is an https URL (or, with ``insecure``, an http or file one)."""
    scheme = source.split("://", 1)[0] if "://" in source else ""
    if scheme == "file" and re.match(r"^file:///[A-Za-z0-9._~%/+:@=-]*\Z", source):
        plain = True
    elif scheme in ("https", "http") and URL.match(source):
        plain = scheme == "http"
    else:
        raise cli.UsageError(f"--source {source[:200]!r} is not an https:// URL like {upstream.OLLAMA_RELEASES}")
    if plain and not insecure:
        raise cli.UsageError(
            f"--source {source[:200]!r} is {scheme}://: the checksum the deploy trusts would come "
            "unauthenticated; use https, or pass --insecure for a mirror you trust"
        )
    return source


class _HTTPStatus(Exception):
    """The source answered, but not with 2xx."""


def _read(url: str, timeout: float) -> bytes:
    """At most MAX_CHECKSUM_FILE bytes of ``url``: a ``file://`` one from disk (check_source allows it
    with --insecure), else by HTTP(S) GET (redirects followed, the environment's proxy honoured)."""
    if url.startswith("file://"):
        with open(unquote(urlsplit(url).path), "rb") as fh:
            return fh.read(MAX_CHECKSUM_FILE)
    with requests.get(url, timeout=timeout, stream=True) as resp:
        if not 200 <= resp.status_code < 300:  # after redirects: anything but a 2xx is an error
            raise _HTTPStatus(resp.status_code)
        return resp.raw.read(MAX_CHECKSUM_FILE, decode_content=True)


def fetch_sha256(source: str, version: str, timeout: float = 30) -> tuple[str, str, str]:
    """(archive name, sha256, URL read) of the Linux amd64 archive of Ollama ``version``."""
    name = ollama_release.ollama_archive(version)
    url = ollama_release.ollama_release_url(source, version, upstream.OLLAMA_CHECKSUMS)
    try:
        text = _read(url, timeout).decode("utf-8", errors="replace")
    except _HTTPStatus as exc:
        raise PinError(f"{url}: HTTP {exc.args[0]} (is {version} an Ollama release?)") from None
    except (OSError, ValueError) as exc:  # requests' errors are OSErrors
        raise PinError(f"{url}: {reason(exc)}") from None
    try:
        sums = ollama_release.parse_sha256sums(text)
    except ValueError as exc:
        raise PinError(f"{url}: {exc}") from None
    if name not in sums:
        raise PinError(
            f"{url} lists no {name} (Ollama {version} publishes {name}; found: {', '.join(sorted(sums)) or 'nothing'})"
        )
    return name, sums[name], url


def write_pin(stack_file: Path, version: str, sha256: str) -> bool:
    """Set host.ollama.version and host.ollama.sha256 (``VERSION@SHA256``) in the stack file; False when
    they were already so."""
    from components import yamlio

    yaml = yamlio.round_trip()  # comments, order, quotes and layout stay: only the pin's lines change
    doc = yaml.load(stack_file.read_text(encoding="utf-8"))
    config = (doc or {}).get("config")
    key = f"{NAMESPACE}:host"
    if not isinstance(config, dict) or not isinstance(config.get(key), dict):
        raise PinError(f"{stack_file}: no {key} block to pin Ollama in", cli.Exit.FAILED)
    host = config[key]
    if not isinstance(host.get("ollama"), dict):
        host["ollama"] = {}
    ollama = host["ollama"]
    pin = f"{version}@{sha256}"  # one pin: the checksum carries its version (the plan refuses a mismatch)
    if str(ollama.get("version", "")) == version and ollama.get("sha256") == pin:
        return False
    ollama["version"] = version
    ollama["sha256"] = pin
    tmp = stack_file.with_name(f".{stack_file.name}.pin")
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.dump(doc, f)
    os.replace(tmp, stack_file)
    return True


def _version(text: str) -> str:
    version = text.removeprefix("v")
    if not RELEASE_VERSION.match(version):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a release version like 0.13.5")
    return version


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("what", choices=["ollama"], help="what to pin")
    cli.add_stack(ap, local=False)
    ap.add_argument("version", type=_version, help="release version, e.g. 0.13.5")
    ap.add_argument(
        "--source",
        default=os.environ.get(SOURCE_ENV) or upstream.OLLAMA_RELEASES,
        help=f"artifact source laid out as SOURCE/v<version>/<file> (default: ${SOURCE_ENV} or the vendor)",
    )
    ap.add_argument("--insecure", action="store_true", help="accept an http:// or file:// source (a mirror you trust)")


def run_command(args: argparse.Namespace) -> int:
    version = args.version
    source = check_source(args.source, args.insecure)
    stack_file = stackfile.STACKS_DIR / f"Pulumi.{args.stack}.yaml"
    try:
        name, sha, url = fetch_sha256(source, version)
        changed = write_pin(stack_file, version, sha)
    except PinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    if not source.startswith("https://"):
        print(f"warning: read from {source} (--insecure): the checksum was not checked in transit", file=sys.stderr)
    what = "pinned" if changed else "already pinned"
    print(f"{what}: Ollama {version} in {stack_file.name}: sha256 {sha} of {name} (from {url})")
    return cli.Exit.OK
