"""components.hostkeys: the host key's public half, fingerprint and checks (against OpenSSH's own tools)."""

from __future__ import annotations

import subprocess

import pytest

from components import hostkeys


def test_public_half_and_fingerprint_match_ssh_keygen(tmp_path):
    key = hostkeys.generate()
    f = tmp_path / "k"
    f.write_text(key)
    f.chmod(0o600)
    assert (
        subprocess.run(["ssh-keygen", "-yf", f], capture_output=True, text=True).stdout.split()[:2]
        == hostkeys.public_of(key).split()
    )
    assert (
        hostkeys.fingerprint(hostkeys.public_of(key))
        in subprocess.run(["ssh-keygen", "-lf", f], capture_output=True, text=True).stdout
    )


def test_same_key_same_public_half_whatever_the_whitespace():
    key = hostkeys.from_seed(b"x")
    assert hostkeys.public_of(key) == hostkeys.public_of("\n" + key.strip() + "  \n")
    assert hostkeys.normalize(key.strip()) == key


@pytest.mark.parametrize(
    "kind,args", [("rsa", ["-t", "rsa", "-b", "1024", "-N", ""]), ("encrypted", ["-t", "ed25519", "-N", "passphrase"])]
)
def test_only_an_unencrypted_ed25519_key_is_accepted(tmp_path, kind, args):
    subprocess.run(["ssh-keygen", "-q", *args, "-f", tmp_path / "k"], check=True)
    text = (tmp_path / "k").read_text()
    with pytest.raises(hostkeys.BadHostKey) as exc:
        hostkeys.check(text)
    assert "PRIVATE" not in str(exc.value) and text.splitlines()[1][:20] not in str(exc.value)
    with pytest.raises(hostkeys.BadHostKey, match="not an OpenSSH private key"):
        hostkeys.check("offline-placeholder-hostSshKey")


def test_known_hosts_line():
    pub = hostkeys.public_of(hostkeys.from_seed(b"x"))
    assert hostkeys.known_hosts_line("203.0.113.10", pub + " comment") == f"203.0.113.10 {pub}\n"
    assert hostkeys.known_hosts_line("127.0.0.1", pub, 2222) == f"[127.0.0.1]:2222 {pub}\n"
