"""A model host's SSH host key: generated once per host, kept, handed to every new server.

The private key (ed25519, OpenSSH format) is a Pulumi secret of the stack (``hostSshKey``), written
once by ``scripts/host-keys STACK``; the program hands it to cloud-init (``ssh_keys``, see
``components.cloud_init``), so a rebuilt server answers with the same host key and known_hosts never
changes. Only the public half leaves the program (the ``host_known_hosts`` output and the inventory's
``host_key``). The local test host keeps its own key in its state dir (``testhost.access``).

Plain Python (``cryptography``), no Pulumi import: the program, the offline plan, the operator
command and the local test host share it. Generation is random, so it happens once, outside the
program; everything else here is deterministic.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

KEY_TYPE = "ssh-ed25519"


class BadHostKey(ValueError):
    """Not an unencrypted ed25519 private key in OpenSSH format (the message never holds the key)."""


def normalize(private: str) -> str:
    """The key text as cloud-init writes it: stripped, one trailing newline."""
    return private.strip() + "\n"


def _load(private: str) -> ed25519.Ed25519PrivateKey:
    text = private.strip()
    if not text.startswith("-----BEGIN OPENSSH PRIVATE KEY-----"):
        raise BadHostKey("not an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----)")
    try:
        key = serialization.load_ssh_private_key((text + "\n").encode(), password=None)
    except (ValueError, TypeError) as exc:  # encrypted, truncated, bad base64
        kind = "encrypted (it needs a passphrase)" if "password" in str(exc).lower() else "unreadable"
        raise BadHostKey(f"an OpenSSH private key that is {kind}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise BadHostKey(f"a {type(key).__name__.removesuffix('PrivateKey').removeprefix('_')} key, not ed25519")
    return key


def check(private: str) -> None:
    """Raise ``BadHostKey`` unless ``private`` is an unencrypted ed25519 key in OpenSSH format."""
    _load(private)


def public_of(private: str) -> str:
    """``ssh-ed25519 AAAA...`` (no comment): the known_hosts material of the key."""
    pub = _load(private).public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return pub.decode().strip()


def fingerprint(public: str) -> str:
    """``SHA256:...`` as ``ssh-keygen -lf`` prints it."""
    blob = base64.b64decode(public.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def from_seed(seed: bytes) -> str:
    """A key derived from 32 bytes (the offline plan's placeholder; never a real host's key)."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest())
    return _serialize(key)


def generate() -> str:
    """A new random key, OpenSSH format, unencrypted (the server reads it without a passphrase)."""
    return _serialize(ed25519.Ed25519PrivateKey.generate())


def _serialize(key: ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()


def known_hosts_line(address: str, public: str, port: int = 22) -> str:
    """One known_hosts line for ``address`` (``[address]:port`` off port 22)."""
    host = address if port == 22 else f"[{address}]:{port}"
    return f"{host} {' '.join(public.split()[:2])}\n"
