"""Domain errors of the outbox: each says what happened and what the operator should do.

No message carries personal data: only paths, counts, sequence numbers and SQLite's own text.
"""

from __future__ import annotations

from pathlib import Path


class OutboxError(Exception):
    """Base class of every outbox failure."""


class OutboxFullError(OutboxError):
    """The bound is reached and the event is not a stay: the gate shows "not recorded"."""

    def __init__(self, *, rows: int, max_rows: int, size: int, max_bytes: int) -> None:
        super().__init__(
            f"outbox full ({rows}/{max_rows} rows, {size}/{max_bytes} bytes); the event was "
            "NOT recorded. The uplink is probably down: check the network and the broker")
        self.rows = rows
        self.max_rows = max_rows
        self.size = size
        self.max_bytes = max_bytes


class OutboxDiskFullError(OutboxError):
    """SQLite reported SQLITE_FULL (or the write failed with ENOSPC): nothing was committed."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"the disk holding the outbox {path} is full ({detail}); the event was NOT "
            "recorded. Free space on that file system (logs, old files); the outbox resumes "
            "by itself")
        self.path = path


class OutboxCorruptError(OutboxError):
    """The outbox file is not a usable SQLite database of ours."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"the outbox file {path} is corrupt ({detail}). Stop the agent, move the file and "
            f"its -wal and -shm companions aside for analysis (undelivered events may be "
            f"recoverable with `sqlite3 {path.name} .recover`), then start the agent again: "
            "it creates a new, empty outbox")
        self.path = path
        self.detail = detail
