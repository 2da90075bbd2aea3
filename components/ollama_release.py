"""An Ollama release as its GitHub workflow publishes it: the Linux archive's name for a version
(its compression changed at ``upstream.OLLAMA_ZSTD_SINCE``), where a release's files are under an
artifact source, the tar command that unpacks the archive, and the ``sha256sum.txt`` beside it.
The pinned values and their sources are ``components.upstream``'s (the ``ollama.*`` pins).
"""

from __future__ import annotations

import re

from components.upstream import OLLAMA_ZSTD_SINCE, version_tuple


def ollama_archive(version: str, arch: str = "amd64") -> str:
    """The name of the Linux release archive of ``version`` (as the release publishes it)."""
    ext = "tar.zst" if version_tuple(version) >= OLLAMA_ZSTD_SINCE else "tgz"
    return f"ollama-linux-{arch}.{ext}"


def ollama_release_url(base_url: str, version: str, name: str) -> str:
    """URL of file ``name`` of release ``version`` under an artifact source laid out like GitHub's
    release downloads (``BASE/v<version>/<name>``)."""
    return f"{base_url.rstrip('/')}/v{version}/{name}"


def ollama_unpack_command(archive_path: str, dest: str) -> list[str]:
    """tar's argv for the archive's compression (zstd needs the ``zstd`` package, in base)."""
    flag = "--zstd" if archive_path.endswith(".tar.zst") else "--gzip"
    return ["tar", flag, "-xf", archive_path, "-C", dest]


def format_sha256sums(sums: dict[str, str]) -> str:
    """A sha256sum.txt as the release workflow writes it (``sha256sum`` over ``./dist``)."""
    return "".join(f"{sha}  ./{name}\n" for name, sha in sorted(sums.items()))


def parse_sha256sums(text: str) -> dict[str, str]:
    """``sha256sum``'s output (``<hex>  <name>`` or ``<hex> *<name>``) → {file name: hex}; names
    are reduced to their last path part (``./dist/x.tgz`` → ``x.tgz``). A name listed twice is a
    ValueError: which of its checksums is the archive's cannot be told."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^([0-9a-fA-F]{64})\s+\*?(\S.*)\Z", line.strip())
        if m:
            name = m.group(2).strip().rsplit("/", 1)[-1]
            if name in out:
                raise ValueError(f"lists {name[:100]!r} twice; which checksum is the archive's cannot be told")
            out[name] = m.group(1).lower()
    return out
