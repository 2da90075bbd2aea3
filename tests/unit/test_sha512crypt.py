"""The UI's htpasswd entry: SHA-512-crypt (``$6$``, libpass) in the form the host's crypt(3) checks."""

import shutil
import subprocess
import sys
from pathlib import Path

import passlib

from hosts.roles.proxy import HTPASSWD_HASH, htpasswd_line

ROOT = Path(__file__).resolve().parents[2]
# Drepper's specification, "Unix crypt using SHA-256 and SHA-512", test vectors for SHA-512
SPEC = [
    (
        "Hello world!",
        "saltstring",
        None,
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    ),
    (
        "Hello world!",
        "saltstringsaltstring",
        10000,
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
]


def _salt(hashed: str) -> str:
    return hashed.split("$")[-2]


def test_specification_vectors():
    for password, salt, rounds, want in SPEC:
        assert HTPASSWD_HASH.using(salt=salt[:16], rounds=rounds or 5000).hash(password) == want
        assert htpasswd_line("admin", password, ["admin:" + want]) == f"admin:{want}\n"
        assert htpasswd_line("admin", password + "x", ["admin:" + want]) != f"admin:{want}\n"


def test_a_new_hash_is_what_crypt3_computes_for_its_salt():
    """openssl passwd -6 is libcrypt-compatible SHA-512-crypt: same salt, same line, 5000 rounds implied."""
    for password in ("p" * 200, "mot-de-passe-é-ü-ß-16+", "a:b$c/d.e=f~g%h^i*j!k,l"):
        hashed = htpasswd_line("admin", password, None).strip().split(":", 1)[1]
        assert hashed.startswith("$6$") and "rounds=" not in hashed and len(_salt(hashed)) == 16
        out = subprocess.run(
            ["openssl", "passwd", "-6", "-salt", _salt(hashed), "-stdin"],
            input=password,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert out == hashed
        assert htpasswd_line("admin", password, ["admin:" + out]) == f"admin:{out}\n"  # kept: unchanged file


def _newest_python() -> str:
    """The newest CPython on this machine that runs (PATH and pyenv's versions), else this one."""
    found = [sys.executable, *filter(None, (shutil.which(f"python3.{n}") for n in range(11, 21)))]
    found += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.*/bin/python3"))
    best = (sys.version_info[:2], sys.executable)
    for exe in found:
        run = subprocess.run([exe, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True)
        if run.returncode == 0:
            best = max(best, (tuple(map(int, run.stdout.split())), exe))
    return best[1]


def test_runs_on_the_newest_python_here():
    """The project says requires-python >= 3.11: the hash must not need Python's ``crypt`` (gone in
    3.13). libpass is pure Python: this environment's copy is imported by the newest interpreter."""
    newest = _newest_python()
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from passlib.hash import sha512_crypt as s; "
        "print(s.using(salt='saltstring', rounds=5000).hash('Hello world!'))"
    )
    out = subprocess.run(
        [newest, "-I", "-c", code, str(Path(passlib.__file__).parents[1])], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == SPEC[0][3], newest


def test_htpasswd_line_keeps_a_matching_hash_and_salts_a_new_one_randomly():
    keep = "admin:" + SPEC[0][3]
    assert htpasswd_line("admin", "Hello world!", ["other:x", keep]) == keep + "\n"
    new = htpasswd_line("admin", "another password!", [keep])
    assert new.startswith("admin:$6$") and new != keep + "\n"
    assert htpasswd_line("admin", "another password!", None) != new  # random salt each time
    assert htpasswd_line("admin", "another password!", [new.strip()]) == new


def test_a_malformed_line_on_the_host_is_replaced_not_a_crash():
    for bad in ("admin:$6$rounds=many$salt$hash", "admin:$2b$12$" + "a" * 53, "admin:", "admin:$6$salt$not-base64!"):
        new = htpasswd_line("admin", "pw", ["other:x", bad])
        assert new.startswith("admin:$6$"), bad
