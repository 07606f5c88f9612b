"""Insurance look-ups that never hold up the readers (docs/design.md §2.1; docs/cccd.md §8).

The hospital flow asks :class:`InsuranceChecks` instead of the adapter itself:

- the look-up runs on a worker thread; the caller waits at most ``wait_s`` (0.25 s by default,
  ``[insurance] wait_s``). A late answer gives ``unknown`` with the detail ``pending``: the
  visit is recorded at once and the kiosk says "Đang kiểm tra BHYT". The agent starts the
  look-up and does the waiting *before* it takes its lock (:meth:`prefetch`), so the flow,
  under the lock, finds the answer (or its absence) at once and other lanes never wait;
- every visit recorded as ``unknown`` is looked up again later on a background thread, after
  each of ``retry_delays_s`` in turn (backoff); the first ``valid`` or ``invalid`` answer is
  handed to ``on_answer`` (the agent commits a ``visit.insurance`` follow-up naming the visit's
  ``event_id``, docs/protocol.md §4.12), and the re-check ends. After the last delay the visit
  stays ``unknown``.

The ID number, name and date of birth a re-check needs stay in memory only, for at most the
sum of the delays, and at most :data:`MAX_PENDING` visits at a time (the oldest is dropped);
a restart forgets them, and those visits stay ``unknown``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import date

from edge_agent.cccd.dates import BirthDate
from edge_agent.insurance import InsuranceAdapter, InsuranceState, InsuranceStatus

log = logging.getLogger(__name__)

__all__ = ["MAX_PENDING", "PENDING", "RETRY_DELAYS_S", "InsuranceChecks", "Recheck"]

PENDING = "pending"
"""The detail of an ``unknown`` answer that was still on its way when the wait ended."""
RETRY_DELAYS_S: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 1800.0)
MAX_PENDING = 256


@dataclass(slots=True)
class Recheck:
    """One visit recorded as ``unknown``, to be looked up again."""

    event_id: str
    id_number: str = field(repr=False)
    full_name: str = field(repr=False)
    date_of_birth: date | BirthDate = field(repr=False)
    context: object = field(default=None, repr=False)
    """What the answer's consumer needs to build its follow-up (the visit's draft)."""
    attempts: int = 0
    due: float = 0.0


class InsuranceChecks:
    """An :class:`~edge_agent.insurance.InsuranceAdapter` with a bounded wait, plus re-checks.

    ``start()`` runs the re-check thread; ``stop()`` ends it and forgets what was pending.
    """

    def __init__(self, adapter: InsuranceAdapter, *, wait_s: float = 0.25,
                 retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
                 on_answer: Callable[[Recheck, InsuranceStatus], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if not 0 < wait_s <= 1:
            raise ValueError("wait_s must be within (0, 1]")
        self.adapter = adapter
        self.wait_s = wait_s
        self.retry_delays_s = tuple(retry_delays_s)
        self.on_answer = on_answer
        self._monotonic = monotonic
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="insurance")
        self._pending: dict[str, Recheck] = {}
        self._inflight: dict[tuple[str, str, str], tuple[Future[InsuranceStatus], float]] = {}
        self._inflight_lock = threading.Lock()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.answered: list[tuple[str, str]] = []
        """(event_id, state) of every re-check answered, newest last (bounded)."""

    # -- the adapter interface ----------------------------------------------------------------

    def lookup(self, id_number: str, full_name: str,
               date_of_birth: date | BirthDate) -> InsuranceStatus:
        """The adapter's answer if it comes within ``wait_s``, else ``unknown``/``pending``."""
        key = (id_number, full_name, date_of_birth.isoformat())
        with self._inflight_lock:
            started = self._inflight.pop(key, None)
        if started is None:
            started = (self._pool.submit(self._safe_lookup, id_number, full_name,
                                         date_of_birth), self._monotonic())
        future, at = started
        try:
            return future.result(timeout=max(0.0, self.wait_s - (self._monotonic() - at)))
        except FutureTimeout:
            return InsuranceStatus.unknown(PENDING)

    def prefetch(self, id_number: str, full_name: str, date_of_birth: date | BirthDate) -> None:
        """Start the look-up and wait for it (at most ``wait_s``) without any lock held; the
        :meth:`lookup` that follows for the same person takes its answer."""
        key = (id_number, full_name, date_of_birth.isoformat())
        now = self._monotonic()
        with self._inflight_lock:
            for old in [k for k, (_f, at) in self._inflight.items() if now - at > 60]:
                del self._inflight[old]  # a presentation that never asked (a repeat)
            if key not in self._inflight and len(self._inflight) < MAX_PENDING:
                self._inflight[key] = (self._pool.submit(
                    self._safe_lookup, id_number, full_name, date_of_birth), now)
            started = self._inflight.get(key)
        if started is not None:
            with contextlib.suppress(FutureTimeout):
                started[0].result(timeout=self.wait_s)

    def _safe_lookup(self, id_number: str, full_name: str,
                     date_of_birth: date | BirthDate) -> InsuranceStatus:
        try:
            return self.adapter.lookup(id_number, full_name, date_of_birth)
        except Exception:
            log.exception("insurance adapter raised; treated as unknown")
            return InsuranceStatus.unknown("adapter-error")

    # -- re-checks ----------------------------------------------------------------------------

    def schedule(self, recheck: Recheck) -> None:
        """Look ``recheck`` up again after the first delay (and the next ones while unknown)."""
        if not self.retry_delays_s:
            return
        with self._cond:
            while len(self._pending) >= MAX_PENDING:
                dropped = next(iter(self._pending))
                del self._pending[dropped]
                log.warning("insurance re-check of %s dropped (too many pending)", dropped)
            recheck.attempts = 0
            recheck.due = self._monotonic() + self.retry_delays_s[0]
            self._pending[recheck.event_id] = recheck
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="insurance re-check",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._pending.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stop:
                    return
                now = self._monotonic()
                due = [r for r in self._pending.values() if r.due <= now]
                if not due:
                    wait = min((r.due for r in self._pending.values()), default=now + 1.0)
                    self._cond.wait(timeout=max(0.01, min(wait - now, 1.0)))
                    continue
            for recheck in due:
                self._once(recheck)

    def _once(self, recheck: Recheck) -> None:
        status = self._safe_lookup(recheck.id_number, recheck.full_name, recheck.date_of_birth)
        with self._cond:
            if self._stop or self._pending.get(recheck.event_id) is not recheck:
                return
            recheck.attempts += 1
            if status.state is InsuranceState.UNKNOWN:
                if recheck.attempts >= len(self.retry_delays_s):
                    del self._pending[recheck.event_id]
                    log.info("insurance of %s still unknown after %d re-checks",
                             recheck.event_id, recheck.attempts)
                else:
                    recheck.due = self._monotonic() + self.retry_delays_s[recheck.attempts]
                return
            del self._pending[recheck.event_id]
        try:
            if self.on_answer is not None:
                self.on_answer(recheck, status)
        except Exception:
            log.exception("insurance follow-up of %s not recorded", recheck.event_id)
            return
        self.answered.append((recheck.event_id, status.state.value))
        del self.answered[:-200]
