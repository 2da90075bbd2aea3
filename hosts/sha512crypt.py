"""SHA-512-crypt (``$6$``), the password hash nginx's ``auth_basic`` checks through the host's
crypt(3), in the standard library only: Python's ``crypt`` module is gone in 3.13.

Algorithm: Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512" (the specification glibc and
libxcrypt implement), default 5000 rounds; tests/unit/test_sha512crypt.py checks the
specification's own vectors and, where the running Python still has it, ``crypt.crypt``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ROUNDS_DEFAULT = 5000
# byte order of the final encoding: 21 groups of three, then the last byte alone
_ORDER = [((i * 22) % 63, (i * 22 + 21) % 63, (i * 22 + 42) % 63) for i in range(21)]


def _b64(b2: int, b1: int, b0: int, n: int) -> str:
    w = (b2 << 16) | (b1 << 8) | b0
    out = ""
    for _ in range(n):
        out += ALPHABET[w & 0x3F]
        w >>= 6
    return out


def _repeat(digest: bytes, length: int) -> bytes:
    return (digest * (length // 64 + 1))[:length]


def sha512_crypt(password: str, salt: str, rounds: int | None = None) -> str:
    """``$6$[rounds=N$]salt$hash`` of ``password`` (salt: up to 16 characters of ``ALPHABET``)."""
    p, s = password.encode(), salt.encode()[:16]
    n = ROUNDS_DEFAULT if rounds is None else min(max(rounds, 1000), 999_999_999)
    b = hashlib.sha512(p + s + p).digest()
    a = hashlib.sha512(p + s)
    for _ in range(len(p) // 64):
        a.update(b)
    a.update(b[: len(p) % 64])
    length = len(p)
    while length:
        a.update(b if length & 1 else p)
        length >>= 1
    c = a.digest()
    p_seq = _repeat(hashlib.sha512(p * len(p)).digest(), len(p))
    s_seq = _repeat(hashlib.sha512(s * (16 + c[0])).digest(), len(s))
    for i in range(n):
        h = hashlib.sha512(p_seq if i & 1 else c)
        if i % 3:
            h.update(s_seq)
        if i % 7:
            h.update(p_seq)
        h.update(c if i & 1 else p_seq)
        c = h.digest()
    encoded = "".join(_b64(c[x], c[y], c[z], 4) for x, y, z in _ORDER) + _b64(0, 0, c[63], 2)
    prefix = "$6$" if rounds is None else f"$6$rounds={n}$"
    return f"{prefix}{s.decode()}${encoded}"


def hash_password(password: str) -> str:
    """A new hash with a random 16-character salt."""
    return sha512_crypt(password, "".join(secrets.choice(ALPHABET) for _ in range(16)))


def verify(password: str, hashed: str) -> bool:
    """Whether ``hashed`` (a ``$6$`` hash) is ``password``'s."""
    parts = hashed.split("$")
    if len(parts) not in (4, 5) or parts[1] != "6":
        return False
    rounds = None
    if len(parts) == 5:
        if not parts[2].startswith("rounds="):
            return False
        rounds = int(parts[2][len("rounds="):])
    return hmac.compare_digest(sha512_crypt(password, parts[-2], rounds), hashed)
