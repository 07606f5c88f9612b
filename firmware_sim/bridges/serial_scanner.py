"""A simulated serial QR scanner on a pseudo-terminal, for the real pyserial stack.

The bridge owns the master side of an ``os.openpty()`` pair; the driver under test opens the
slave path (:attr:`PtySerialScanner.path`, or a stable symlink given as ``link``) with pyserial,
as it would open ``/dev/ttyACM0``. A writer thread plays queued jobs in order, so a test can say::

    with PtySerialScanner(terminator=b"\\r\\n", prefix=b"\\x02") as sim:
        sim.garbage(7)                                  # line noise between frames
        sim.scan(payload, split=4, delay=0.01)          # one code in four writes
        sim.scan(payload, terminator=False)             # a frame whose terminator is lost
        sim.unplug(); sim.replug()                      # USB-CDC re-enumeration
        sim.wait_idle()

Everything the scanner "reads" is given by the caller (synthetic payloads only). No import of
``drivers`` or ``edge_agent``: the bridge plays the device side alone.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

Job = Callable[[], None]


class PtySerialScanner:
    """A scanner that "types" frames into a pseudo-terminal (see the module docstring)."""

    def __init__(self, *, terminator: bytes = b"\r", prefix: bytes = b"", suffix: bytes = b"",
                 link: str | Path | None = None, seed: int = 0) -> None:
        self.terminator = terminator
        self.prefix = prefix
        self.suffix = suffix
        self.link = Path(link) if link is not None else None
        self._rng = random.Random(seed)
        self._master = -1
        self._slave = -1
        self._slave_name = ""
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._error: BaseException | None = None
        self.frames_sent = 0
        self._plug()
        self._thread = threading.Thread(target=self._run, name="pty-scanner", daemon=True)
        self._thread.start()

    @property
    def path(self) -> str:
        """What the driver opens: the symlink when one was asked for, else the slave tty."""
        return str(self.link) if self.link is not None else self._slave_name

    @property
    def plugged(self) -> bool:
        """Whether the pseudo-terminal currently exists."""
        return self._master >= 0

    # -- device lifecycle ------------------------------------------------------------------

    def _plug(self) -> None:
        self._master, self._slave = os.openpty()
        # Raw mode on the shared line discipline: no CR→LF translation, no echo, 8-bit clean.
        tty.setraw(self._slave)
        self._slave_name = os.ttyname(self._slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self._slave_name)
            tmp.replace(self.link)

    def _unplug(self) -> None:
        if self.link is not None:
            self.link.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    # -- writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                job()
            except BaseException as exc:  # reported by wait_idle()
                self._error = exc
            finally:
                self._jobs.task_done()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._master < 0:
                raise OSError("pty scanner is unplugged")
            written = os.write(self._master, view)
            view = view[written:]

    def _enqueue(self, job: Job) -> None:
        self._jobs.put(job)

    # -- what a test asks the scanner to do ------------------------------------------------

    def frame_bytes(self, payload: bytes, terminator: bool = True) -> bytes:
        """``prefix + payload + suffix [+ terminator]`` as the scanner would send it."""
        return self.prefix + payload + self.suffix + (self.terminator if terminator else b"")

    def scan(self, payload: bytes, *, split: int = 1, delay: float = 0.005,
             terminator: bool = True) -> None:
        """Send one code, in ``split`` writes ``delay`` seconds apart (returns at once)."""
        frame = self.frame_bytes(payload, terminator)
        split = max(1, min(split, len(frame)))
        cuts = sorted(self._rng.sample(range(1, len(frame)), split - 1)) if split > 1 else []
        pieces = [frame[a:b] for a, b in zip([0, *cuts], [*cuts, len(frame)], strict=True)]

        def job() -> None:
            for i, piece in enumerate(pieces):
                if i:
                    time.sleep(delay)
                self._write(piece)
            self.frames_sent += 1

        self._enqueue(job)

    def write_raw(self, data: bytes) -> None:
        """Send bytes as they are (a hand-made frame, a partial one)."""
        self._enqueue(lambda: self._write(data))

    def garbage(self, count: int) -> bytes:
        """Send ``count`` random bytes that contain no terminator, prefix or suffix byte."""
        banned = set(self.terminator + self.prefix + self.suffix)
        allowed = [b for b in range(256) if b not in banned]
        data = bytes(self._rng.choice(allowed) for _ in range(count))
        self.write_raw(data)
        return data

    def pause(self, seconds: float) -> None:
        """Stay silent for ``seconds`` (longer than the driver's inter-character timeout ends
        a frame that has no terminator)."""
        self._enqueue(lambda: time.sleep(seconds))

    def unplug(self) -> None:
        """The device disappears (USB-CDC unplugged): the driver's reads fail."""
        self._enqueue(self._unplug)

    def replug(self) -> None:
        """A new device appears; with ``link`` it is at the same path."""
        self._enqueue(self._plug)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until every queued job ran; re-raise the first error of the writer thread."""
        deadline = time.monotonic() + timeout
        while self._jobs.unfinished_tasks:
            if time.monotonic() > deadline:
                raise TimeoutError("pty scanner still busy")
            time.sleep(0.002)
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        """Stop the writer thread and remove the pseudo-terminal."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout=5)
        if self._master >= 0:
            self._unplug()

    def __enter__(self) -> PtySerialScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
