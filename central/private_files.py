"""Files only the running user may read: keys, secrets, databases (docs/privacy.md, threat
model, "Secrets at rest").

Everything is created with its final mode (``os.open`` with 0600, directories 0700), never
written first and narrowed afterwards, so there is no moment another local user could open
it. A file that already exists with group or other bits (from an older version) is narrowed
through its open descriptor. The agent has the same helpers in ``edge_agent/private_files.py``
(the two packages never import each other).
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700 (existing ones are left alone;
    an existing ``path`` itself is narrowed to 0700 when it is ours)."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
    _narrow(path, DIR_MODE)
    return path


def _narrow(path: Path, mode: int) -> None:
    st = path.stat()
    if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
        path.chmod(stat.S_IMODE(st.st_mode) & mode)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (created 0600; replaced in place if it exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(data)
    finally:
        os.close(fd)


def ensure_private_file(path: Path) -> None:
    """Create an empty ``path`` with mode 0600 unless it exists; narrow an existing one.

    Used before SQLite opens a database: SQLite creates its ``-wal``, ``-shm`` and journal
    files with the permissions of the database file, so they are 0600 too."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    try:
        st = os.fstat(fd)
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def extract_private_zip(data: bytes, target: Path) -> list[Path]:
    """Unpack an enrolment bundle (zip bytes) under ``target``: every file 0600, every folder
    0700, whatever the archive says. (``zipfile.extractall`` creates files with the process's
    default mode, so the 0600 the bundle records for its keys would be lost.) A member with an
    absolute path or ``..`` is refused with :class:`ValueError`."""
    written: list[Path] = []
    private_dir(target)
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        for info in bundle.infolist():
            parts = PurePosixPath(info.filename).parts
            if info.filename.startswith("/") or ".." in parts or not parts or "\\" in info.filename:
                raise ValueError(f"bundle member {info.filename!r}: not a relative path")
            dest = target.joinpath(*parts)
            if info.is_dir():
                private_dir(dest)
                continue
            private_dir(dest.parent)
            write_private(dest, bundle.read(info))
            written.append(dest)
    return written
