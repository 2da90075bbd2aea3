"""The proxy role's certificate decisions, run in a local shell on real files (hosts/roles/proxy.py):
/etc/letsencrypt moved onto the data volume, and a kept certificate counted only while valid."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hosts.roles.proxy import cert_valid_command, letsencrypt_on_volume

DOMAIN = "llm.example.test"


def sh(cmd: str) -> str:
    return subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def dirs(tmp_path):
    return tmp_path / "etc-letsencrypt", tmp_path / "data" / "letsencrypt"


def lineage(root: Path, text: str = "cert") -> None:
    (root / "live" / DOMAIN).mkdir(parents=True)
    (root / "live" / DOMAIN / "fullchain.pem").write_text(text)
    (root / "accounts").mkdir()
    (root / "accounts" / "acct.json").write_text("account")


def test_first_converge_of_an_existing_host_moves_its_certificates_to_the_volume(dirs):
    etc, data = dirs
    lineage(etc)
    (etc / "cli.ini").write_text("ini")
    sh(letsencrypt_on_volume(str(etc), str(data)))
    assert etc.is_symlink() and etc.resolve() == data.resolve()
    assert (data / "live" / DOMAIN / "fullchain.pem").read_text() == "cert"
    assert (data / "accounts" / "acct.json").read_text() == "account" and (data / "cli.ini").exists()


def test_rebuilt_host_uses_the_volume_and_drops_the_package_skeleton(dirs):
    etc, data = dirs
    lineage(data, "kept")
    etc.mkdir()
    (etc / "cli.ini").write_text("ini from the package")
    sh(letsencrypt_on_volume(str(etc), str(data)))
    assert etc.is_symlink() and (etc / "live" / DOMAIN / "fullchain.pem").read_text() == "kept"
    assert not list(etc.parent.glob("etc-letsencrypt.root-disk-*"))


def test_certificates_on_both_sides_are_kept_aside_never_deleted(dirs):
    etc, data = dirs
    lineage(data, "volume")
    lineage(etc, "root disk")
    sh(letsencrypt_on_volume(str(etc), str(data)))
    [aside] = etc.parent.glob("etc-letsencrypt.root-disk-*")
    assert (aside / "live" / DOMAIN / "fullchain.pem").read_text() == "root disk"
    assert (etc / "live" / DOMAIN / "fullchain.pem").read_text() == "volume"


def test_new_host_and_rerun(dirs):
    etc, data = dirs
    sh(letsencrypt_on_volume(str(etc), str(data)))
    sh(letsencrypt_on_volume(str(etc), str(data)))  # a rerun (an interrupted converge) changes nothing
    assert etc.is_symlink() and data.is_dir() and not list(data.iterdir())


def _openssl(*args) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and two leaf chains for DOMAIN: valid for a year, and expiring in a day."""
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "30",
        "-keyout",
        d / "ca.key",
        "-out",
        d / "ca.pem",
        "-subj",
        "/CN=test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    )
    (d / "ext").write_text(f"subjectAltName=DNS:{DOMAIN}\nbasicConstraints=critical,CA:FALSE\n")
    for name, days in (("year", 365), ("day", 1)):
        _openssl(
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            d / f"{name}.key",
            "-out",
            d / f"{name}.csr",
            "-subj",
            f"/CN={DOMAIN}",
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            d / f"{name}.csr",
            "-CA",
            d / "ca.pem",
            "-CAkey",
            d / "ca.key",
            "-CAcreateserial",
            "-days",
            days,
            "-extfile",
            d / "ext",
            "-out",
            d / f"{name}.pem",
        )
    return d


def place(root: Path, pem: Path) -> None:
    (root / "live" / DOMAIN).mkdir(parents=True)
    (root / "live" / DOMAIN / "fullchain.pem").write_text(pem.read_text())


def test_kept_certificate_counts_only_while_valid_and_trusted(dirs, pki):
    etc, data = dirs
    ca = (pki / "ca.pem").read_text()
    assert sh(cert_valid_command(DOMAIN, ca, str(etc), str(data))) == ""  # none: issue one
    place(data, pki / "year.pem")
    assert sh(cert_valid_command(DOMAIN, ca, str(etc), str(data))) == "yes"  # on the volume: kept
    # a CA nobody trusts (the local ACME server restarted with a new root): not valid, issue anew
    assert sh(cert_valid_command(DOMAIN, None, str(etc), str(data))) == ""
    assert sh(cert_valid_command("other.example.test", ca, str(etc), str(data))) == ""  # another name


def test_certificate_due_for_renewal_is_not_kept(dirs, pki):
    etc, data = dirs
    place(data, pki / "day.pem")
    assert sh(cert_valid_command(DOMAIN, (pki / "ca.pem").read_text(), str(etc), str(data))) == ""


def test_certificate_still_in_etc_before_its_move_counts(dirs, pki):
    etc, data = dirs
    place(etc, pki / "year.pem")
    assert sh(cert_valid_command(DOMAIN, (pki / "ca.pem").read_text(), str(etc), str(data))) == "yes"


FAKE_CERTBOT = """#!/bin/sh
# a certbot whose ACME server knows only accounts registered after it started
echo "$@" >> "$FAKE/calls"
acct="$FAKE/etc/accounts/acme.example:14000/dir"
if [ -d "$acct" ] && [ ! -f "$acct/known" ]; then
  echo "acme.messages.Error: urn:ietf:params:acme:error:accountDoesNotExist" > "$FAKE/letsencrypt.log"
  echo "An unexpected error occurred:" >&2; exit 1
fi
mkdir -p "$acct" && touch "$acct/known" && echo ok > "$FAKE/letsencrypt.log"
"""


def _certbot(tmp_path, fail_otherwise=False):
    fake = tmp_path / "certbot"
    fake.write_text(FAKE_CERTBOT.replace("mkdir -p", "exit 1; mkdir -p") if fail_otherwise else FAKE_CERTBOT)
    fake.chmod(0o755)
    from hosts.roles.proxy import certificate_command

    cmd = certificate_command(
        DOMAIN,
        "ops@example.test",
        "https://acme.example:14000/dir",
        certbot=str(fake),
        etc=str(tmp_path / "etc"),
        log=str(tmp_path / "letsencrypt.log"),
    )
    return subprocess.run(
        ["sh", "-c", cmd], env={"FAKE": str(tmp_path), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True
    )


def test_an_account_the_acme_server_no_longer_knows_is_set_aside_and_a_new_one_registered(tmp_path):
    (tmp_path / "etc/accounts/acme.example:14000/dir/old-account").mkdir(parents=True)  # kept on the volume
    res = _certbot(tmp_path)
    assert res.returncode == 0, res.stderr
    assert len((tmp_path / "calls").read_text().splitlines()) == 2  # the failing run, then one more
    [aside] = (tmp_path / "etc/accounts/acme.example:14000").glob("dir.unknown-*")
    assert (aside / "old-account").is_dir()
    assert "--force-renewal" in (tmp_path / "calls").read_text()


def test_any_other_certbot_failure_fails_the_operation(tmp_path):
    res = _certbot(tmp_path, fail_otherwise=True)
    assert res.returncode != 0
    assert len((tmp_path / "calls").read_text().splitlines()) == 1
