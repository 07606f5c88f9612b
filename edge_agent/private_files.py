"""Files only the agent's user may read: the outbox and the stay register (docs/privacy.md,
threat model, "Secrets at rest").

A database is created with mode 0600 before SQLite opens it (``os.open`` with the mode, never
narrowed afterwards), and SQLite gives its ``-wal``, ``-shm`` and journal files the database's
mode. A file left by an older version with group or other bits is narrowed through its open
descriptor. The collector has the same helper in ``central/private_files.py`` (the two packages
never import each other).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

FILE_MODE = 0o600


def ensure_private_file(path: Path) -> None:
    """Create an empty ``path`` with mode 0600 unless it exists; narrow an existing one that
    belongs to this user."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    try:
        st = os.fstat(fd)
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def replace_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably: a 0600 temporary file beside it,
    fsync'd, renamed over ``path``, the folder fsync'd (a power cut leaves the old or the new
    content, never a torn file)."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
