"""Reading a file an operator names (a stack file, the homelab's compose file) with a bound.

``read_bounded`` opens without waiting (a FIFO would block a plain open for ever), refuses anything
but a regular file (``/dev/zero`` would be read until memory runs out) and reads at most
``max_bytes``. Its errors say why in a few words and never quote the file's content.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class Unreadable(ValueError):
    """Why the file was not read (a few words, no content)."""


def read_bounded(path: Path, max_bytes: int) -> bytes:
    try:
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise Unreadable("not a regular file")
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise Unreadable("not found") from None
    except IsADirectoryError:
        raise Unreadable("a directory, not a regular file") from None
    except OSError as exc:
        raise Unreadable(f"cannot read: {exc.strerror or type(exc).__name__}") from None
    if len(data) > max_bytes:
        raise Unreadable(f"larger than {max_bytes >> 10} KiB")
    return data
