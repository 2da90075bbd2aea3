"""SHA-512-crypt for the UI's htpasswd, without Python's ``crypt`` (removed in 3.13)."""

import shutil
import subprocess
import sys
from pathlib import Path

from hosts import sha512crypt
from hosts.roles.proxy import htpasswd_line

ROOT = Path(__file__).resolve().parents[2]
# Drepper's specification, "Unix crypt using SHA-256 and SHA-512", test vectors for SHA-512
SPEC = [
    ("Hello world!", "saltstring", None,
     "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"),
    ("Hello world!", "saltstringsaltstring", 10000,
     "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."),
]


def test_specification_vectors():
    for password, salt, rounds, want in SPEC:
        assert sha512crypt.sha512_crypt(password, salt, rounds) == want
        assert sha512crypt.verify(password, want)
        assert not sha512crypt.verify(password + "x", want)


def test_agrees_with_openssl_for_long_and_unicode_passwords():
    for password in ("p" * 200, "mot-de-passe-é-ü-ß-16+", "a:b$c/d.e=f~g%h^i*j!k,l"):
        out = subprocess.run(["openssl", "passwd", "-6", "-salt", "Zx9./saltSALT12", "-stdin"], input=password,
                             capture_output=True, text=True, check=True).stdout.strip()
        assert sha512crypt.sha512_crypt(password, "Zx9./saltSALT12") == out


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
    """The project says requires-python >= 3.11: the hash must not need anything 3.13 removed."""
    newest = _newest_python()
    code = "from hosts import sha512crypt as s; print(s.sha512_crypt('Hello world!', 'saltstring'))"
    out = subprocess.run([newest, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert out == SPEC[0][3], newest


def test_htpasswd_line_keeps_a_matching_hash_and_salts_a_new_one_randomly():
    keep = "admin:" + SPEC[0][3]
    assert htpasswd_line("admin", "Hello world!", ["other:x", keep]) == keep + "\n"
    new = htpasswd_line("admin", "another password!", [keep])
    assert new.startswith("admin:$6$") and new != keep + "\n"
    assert htpasswd_line("admin", "another password!", None) != new  # random salt each time
    assert sha512crypt.verify("another password!", new.strip().split(":", 1)[1])
