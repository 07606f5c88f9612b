"""A full disk gives OutboxDiskFullError, stores nothing, and the outbox resumes once there is
room. Uses a real 256 KiB tmpfs (needs root, as in the project's CI container)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.events.model import EventAssurance, EventDraft, EventKind, Method
from edge_agent.outbox import Outbox, OutboxDiskFullError

DRAFT = EventDraft(EventKind.ENTRY, Method.CHIP, EventAssurance.QR,
                   datetime(2026, 5, 1, tzinfo=UTC))
STAY = EventDraft(EventKind.STAY_START, Method.CHIP, EventAssurance.QR,
                  datetime(2026, 5, 1, tzinfo=UTC))


def build(seq: int, event_id: uuid.UUID) -> bytes:
    return json.dumps({"seq": seq, "event_id": str(event_id), "pad": "p" * 1500}).encode()


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("the full-disk test mounts a tmpfs and needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_a_clear_error_and_recovers(tiny_fs: Path) -> None:
    path = tiny_fs / "outbox.db"
    with Outbox(path, max_rows=1_000_000, max_bytes=10**9) as ob:
        stored = 0
        with pytest.raises(OutboxDiskFullError) as info:
            for _ in range(10_000):
                ob.commit(DRAFT, build)
                stored += 1
        assert stored > 3
        assert str(path) in str(info.value) and "full" in str(info.value)
        # nothing half-stored: the counters and the table agree, seq is not consumed
        assert ob.counts().rows == stored == ob.counts().last_seq
        # a stay is refused by the disk too (clear error, not a crash) ...
        with pytest.raises(OutboxDiskFullError):
            for _ in range(50):
                ob.commit(STAY, build)
        stays_before = ob.counts().rows
    # ... and once space is freed everything resumes where it stopped;
    # free room: a bigger tmpfs (remount) stands for the operator deleting files
    subprocess.run(["mount", "-o", "remount,size=2m", str(tiny_fs)], check=True)
    with Outbox(path) as ob:
        entry = ob.commit(STAY, build)
        assert entry.seq == stays_before + 1
        assert [e.seq for e in ob.pending(limit=10_000)] == list(range(1, entry.seq + 1))


def test_full_disk_at_creation(tiny_fs: Path) -> None:
    (tiny_fs / "filler").write_bytes(b"\0" * (256 * 1024 - 4096 * 2))
    with pytest.raises(OutboxDiskFullError) as info:
        ob = Outbox(tiny_fs / "outbox.db")
        for _ in range(5):
            ob.commit(DRAFT, build)
    assert "full" in str(info.value)
