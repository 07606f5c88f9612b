"""The device-local subject: how a device recognises the same person again without any key
shared with another device (docs/privacy.md §3, docs/protocol.md §4.7.1).

The debounce window, a hospital's "visited today" and the open stays need to know that two
presentations are the same person. They compare ``HMAC-SHA-256(local key, LOCAL_DOMAIN ‖ ref)``
(``ref``: the ID number, or ``bhyt:`` and a BHYT number) under a random key this device
generated for itself, which never leaves it and is never sent anywhere. The centre gets the
reference sealed to it (``subject_sealed``) and computes the stored subject with its own key.

The key rotates (:data:`ROTATE_AFTER`, daily): a value is ``g<generation>.<32 hex>``, and a
presentation matches a stored value under any retained generation
(:meth:`SubjectKeyring.candidates`). A retired key is kept for :data:`KEEP_RETIRED` (the
debounce window and the day's "visited today"), and for as long as an open stay still names
its generation; then it is deleted, and what was keyed with it cannot be recomputed by anyone.
The ring file is 0600 beside the outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

LOCAL_DOMAIN = b"cccd-checkin/local-subject/v1\x00"
KEY_BYTES = 32
ROTATE_AFTER = timedelta(days=1)
"""A key becomes the previous one after this long."""
KEEP_RETIRED = timedelta(days=1)
"""A retired key is kept this long after its retirement (unless an open stay still needs it)."""


class KeyringError(ValueError):
    """The ring file cannot be read (corrupt, or not ours)."""


@dataclass(frozen=True, slots=True)
class _Key:
    generation: int
    created: datetime
    key: bytes


def generation_of(subject: str) -> int | None:
    """The key generation a local subject was computed under (None: not a local subject)."""
    head, dot, _ = subject.partition(".")
    if not dot or not head.startswith("g") or not head[1:].isdigit():
        return None
    return int(head[1:])


def _value(key: _Key, ref: str) -> str:
    mac = hmac.new(key.key, LOCAL_DOMAIN + ref.encode("ascii"), hashlib.sha256).digest()
    return f"g{key.generation}.{mac[:16].hex()}"


class StaticSubjects:
    """One fixed local key (tests, benches and tools: no file, no rotation)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the subject key must be at least 16 bytes")
        self._key = _Key(0, datetime.min.replace(tzinfo=UTC), key)

    def subject(self, ref: str, now: datetime) -> str:
        return _value(self._key, ref)

    def candidates(self, ref: str, now: datetime) -> frozenset[str]:
        return frozenset({_value(self._key, ref)})


class SubjectKeyring:
    """The device's rotating local keys, kept in a 0600 JSON file."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 rotate_after: timedelta = ROTATE_AFTER,
                 keep_retired: timedelta = KEEP_RETIRED) -> None:
        self.path = path
        self._clock = clock
        self.rotate_after = rotate_after
        self.keep_retired = keep_retired
        self._lock = threading.Lock()
        self._keys: list[_Key] = self._load()
        if not self._keys:
            self._rotate(clock())

    def _load(self) -> list[_Key]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            data = json.loads(raw)
            keys = [_Key(int(k["generation"]), datetime.fromisoformat(k["created"]),
                         bytes.fromhex(k["key"])) for k in data["keys"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyringError(f"{self.path}: not a subject keyring ({exc})") from None
        if any(len(k.key) != KEY_BYTES or k.created.tzinfo is None for k in keys):
            raise KeyringError(f"{self.path}: malformed key")
        return sorted(keys, key=lambda k: k.generation)

    def _save(self) -> None:
        data = {"keys": [{"generation": k.generation, "created": k.created.isoformat(),
                          "key": k.key.hex()} for k in self._keys]}
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def _rotate(self, now: datetime) -> None:
        generation = self._keys[-1].generation + 1 if self._keys else 1
        self._keys.append(_Key(generation, now, secrets.token_bytes(KEY_BYTES)))
        self._save()

    def _current(self, now: datetime) -> _Key:
        if now - self._keys[-1].created >= self.rotate_after:
            self._rotate(now)
        return self._keys[-1]

    @property
    def generations(self) -> list[int]:
        with self._lock:
            return [k.generation for k in self._keys]

    def subject(self, ref: str, now: datetime) -> str:
        """The local subject of ``ref`` under the current key (rotating it when due)."""
        with self._lock:
            return _value(self._current(now), ref)

    def candidates(self, ref: str, now: datetime) -> frozenset[str]:
        """``ref`` under every retained key: what a stored local subject may equal."""
        with self._lock:
            self._current(now)
            return frozenset(_value(k, ref) for k in self._keys)

    def prune(self, in_use: Iterable[str] = ()) -> list[int]:
        """Delete retired keys older than ``keep_retired`` after their retirement that no
        subject of ``in_use`` (the open stays) names; the generations deleted."""
        now = self._clock()
        needed = {generation_of(s) for s in in_use}
        with self._lock:
            current = self._current(now)
            dropped: list[int] = []
            kept: list[_Key] = []
            for index, key in enumerate(self._keys):
                retired_at = (self._keys[index + 1].created if key is not current else None)
                if retired_at is not None and now - retired_at >= self.keep_retired \
                        and key.generation not in needed:
                    dropped.append(key.generation)
                else:
                    kept.append(key)
            if dropped:
                self._keys = kept
                self._save()
            return dropped
