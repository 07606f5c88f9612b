"""The ingest worker: an MQTT 5 shared subscriber that stores what devices publish.

* Subscriptions (docs/protocol.md §3): ``$share/<group>/checkin/v1/+/events`` and
  ``$share/<group>/checkin/v1/+/status`` at QoS 1. A shared subscription (MQTT 5 §4.8.2)
  delivers each message to ONE worker of the group, so workers split the load
  (docs/design.md §2.5). Status is shared too: applying a status is an idempotent, ``at``-ordered
  update, and N workers applying every heartbeat would only multiply writes. Consequence: a
  new shared subscription receives no retained messages (MQTT 5 §4.8.2), so a device's
  retained status is seen at its next heartbeat; :func:`check_stale` marks silent devices.
* Session: Clean Start = 0 from the first CONNECT and a Session Expiry (MQTT 5 §3.1.2.4,
  §3.1.2.11.2), so messages queued while the worker is away are delivered when it returns
  (mosquitto 2.0.11 persists only sessions that began with Clean Start = 0; see
  tests/integration/broker_fixtures.py). Receive Maximum (§3.1.2.11.3) bounds what is in
  flight.
* QoS 1 (MQTT 5 §4.3.2) with manual acknowledgement: a PUBACK is sent only AFTER the batch that
  holds the message committed, in the order the PUBLISHes arrived (§4.6). A worker killed
  before its commit never acknowledged, so the broker redelivers; the store is idempotent.
* Batches: up to ``batch_size`` messages or ``batch_ms`` after the first one, one transaction.
"""

from __future__ import annotations

import gc
import logging
import queue
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from central.at_rest import load_data_key
from central.counting import close_out, utc
from central.db.models import Device
from central.db.partitions import ensure_partitions
from central.ingest import metrics
from central.ingest.crypto import load_centre_key
from central.ingest.receipts import ReceiptPublisher
from central.ingest.store import (
    BatchReport,
    IngestContext,
    RejectionLimiter,
    check_seq_gaps,
    dead_letter,
    printable,
    process,
    record_suppressed,
)
from central.ingest.store import raise_offline_alarm as _raise_offline
from central.ingest.validate import Incoming
from central.settings import CentralSettings
from central.subjects import load_subject_keys

log = logging.getLogger("central.ingest")

EVENTS_FILTER = "checkin/v1/+/events"
STATUS_FILTER = "checkin/v1/+/status"


class IngestError(RuntimeError):
    """The worker cannot run (broker refused, database unusable)."""


def check_stale(session: Session, now: datetime, heartbeat_s: int = 30,
                missed: int = 3) -> list[str]:
    """Devices online but silent for ``missed`` heartbeats → ``stale`` + an ``offline`` alarm.

    docs/protocol.md §6: stale after 3 × ``heartbeat_s`` without a status (the device's own
    ``heartbeat_s`` when its status gave one).
    """
    marked: list[str] = []
    devices = session.execute(select(Device).where(Device.state == "online",
                                                   Device.revoked.is_(False))).scalars().all()
    for device in devices:
        period = (device.health or {}).get("heartbeat_s") or heartbeat_s
        if device.last_seen is None or utc(device.last_seen) < now - timedelta(
                seconds=missed * int(period)):
            device.state = "stale"
            _raise_offline(session, device, now, "no-heartbeat")
            marked.append(device.id)
    return marked


def freeze_startup_heap() -> None:
    """Exempt what start-up allocated (modules, mappers, compiled schemas) from the cyclic
    garbage collector (:func:`gc.freeze`).

    The ingest path allocates a few dicts per message, so the collector runs often; without
    this every older-generation pass walks the whole start-up heap again, which cost 20 µs of
    each 30 µs JSON decode in a profile (docs/performance.md, collector ingest).
    """
    gc.collect()
    gc.freeze()


def tls_context(ca: Any, cert: Any, key: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                     cafile=str(ca) if ca else None)
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def make_client(settings: CentralSettings, *, manual_ack: bool) -> mqtt.Client:
    b = settings.broker
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=b.client_id,
                         protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    if b.tls:
        client.tls_set_context(tls_context(b.ca, b.cert, b.key))
    client.reconnect_delay_set(1, 5)
    client.max_queued_messages_set(0)
    return client


def connect_properties(settings: CentralSettings) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = settings.broker.session_expiry_s
    props.ReceiveMaximum = settings.broker.receive_maximum
    return props


class IngestWorker:
    """One ingest worker; run several (distinct client ids) on the same share group."""

    def __init__(self, settings: CentralSettings, engine: Engine, *,
                 centre_key: Any = None, data_key: bytes | None = None,
                 periodic_s: float = 10.0,
                 on_batch: Callable[[BatchReport], None] | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        if centre_key is None and settings.centre_private_key is not None:
            centre_key = load_centre_key(settings.centre_private_key)
        if data_key is None and settings.data_key is not None:
            data_key = load_data_key(settings.data_key)
        self.ctx = IngestContext(centre_key, data_key, settings.max_future_skew,
                                 settings.seq_gap_grace, max_age=settings.retention.events,
                                 limiter=RejectionLimiter(),
                                 subjects=load_subject_keys(settings.centre_subject_key,
                                                            settings.subject_key))
        if self.ctx.subjects is None:
            log.warning("keys.centre_subject_key is not set: subjects are stored as the devices "
                        "send them and sealed subjects are refused (docs/protocol.md §4.7.1)")
        elif self.ctx.subjects.province is None:
            log.warning("keys.subject_key is not set: sealed subjects are refused "
                        "(docs/protocol.md §4.7.1)")
        self.periodic_s = periodic_s
        self.on_batch = on_batch
        self.queue: queue.Queue[Incoming] = queue.Queue()
        self.client = make_client(settings, manual_ack=True)
        self.receipts = ReceiptPublisher(self.sessions, self.client)
        self.subscribed = threading.Event()
        self.refused: str | None = None
        """Why the broker refused the last SUBSCRIBE (then :attr:`subscribed` stays clear)."""
        self.stopping = threading.Event()
        self.generation = 0
        self._partitions_day: str | None = None
        self._threads: list[threading.Thread] = []
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    # -- MQTT callbacks (network thread) --

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any,
                    _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self.generation += 1
        group = self.settings.broker.group
        client.subscribe([(f"$share/{group}/{EVENTS_FILTER}", SubscribeOptions(qos=1)),
                          (f"$share/{group}/{STATUS_FILTER}", SubscribeOptions(qos=1))])
        log.info("connected (session present: %s)", flags.session_present)

    def _on_subscribe(self, _c: Any, _u: Any, _mid: Any, reasons: Any, _p: Any) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:  # e.g. a share group the broker's role does not grant (docs/protocol.md §3)
            self.refused = (f"the broker refused the subscription to "
                            f"$share/{self.settings.broker.group}/…: {', '.join(refused)}")
            log.error("%s", self.refused)
            return
        self.subscribed.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self.subscribed.clear()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.queue.put(Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos,
                                bool(msg.retain), datetime.now(UTC), self.generation))

    # -- batches --

    def _commit(self, batch: list[Incoming]) -> BatchReport:
        delay = 0.05
        for attempt in range(8):
            try:
                with self.sessions() as session, session.begin():
                    return process(session, batch, self.ctx)
            except DBAPIError as exc:
                if attempt == 7 or not (exc.connection_invalidated or _retryable(exc)):
                    raise
                log.warning("batch retried after a database conflict (%s)",
                            type(exc.orig).__name__)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def store(self, batch: list[Incoming]) -> BatchReport:
        """Store a batch (one transaction). When it fails for anything but the database being
        unreachable, it is retried message by message, and a message that fails on its own is
        dead-lettered (recorded as a ``dead-letter`` rejection with its device, then
        acknowledged): one message never stops or blocks the others."""
        started = time.perf_counter()
        try:
            report = self._commit(batch)
        except Exception as exc:
            if _unavailable(exc) and (_retryable_error(exc) or not self._database_answers()):
                raise
            if len(batch) > 1:  # isolate the message at fault
                report = BatchReport()
                for item in batch:
                    part = self.store([item])
                    report.outcomes.extend(part.outcomes)
                    report.movements.extend(part.movements)
                return report
            with self.sessions() as session, session.begin():
                outcome = dead_letter(session, batch[0], exc, self.ctx)
            if outcome.recorded and not isinstance(exc, DBAPIError):  # a bug: its traceback
                log.error("message on %s failed the store: dead-lettered", batch[0].topic,
                          exc_info=exc)
            report = BatchReport([outcome])
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        self._account(report)
        return report

    def _database_answers(self) -> bool:
        """Whether the database runs a trivial query: when it does, an operational error of a
        batch (e.g. PostgreSQL's ``program_limit_exceeded``) came from a message, not from an
        outage, and the message is isolated like any other."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except Exception:
            return False
        return True

    def _account(self, report: BatchReport) -> None:
        """Metrics of every outcome; a log line per RECORDED rejection and per rate-limit
        interval that ended (the device's flood summed up once)."""
        results = Counter(outcome.result for outcome in report.outcomes)
        for result, counter in (("stored", metrics.EVENTS_STORED),
                                ("duplicate", metrics.DUPLICATES), ("status", metrics.STATUSES)):
            if results[result]:
                counter.inc(results[result])
        for outcome in report.outcomes:
            if outcome.rejection is None:
                continue
            metrics.REJECTIONS.labels(outcome.rejection.reason.value).inc()
            if not outcome.recorded:
                metrics.REJECTIONS_NOT_RECORDED.labels(outcome.rejection.reason.value).inc()
                continue
            log.warning("rejected %s from %s: %s (%s)", outcome.incoming.topic.split("/")[-1],
                        outcome.rejection.device_id or "?", outcome.rejection.reason.value,
                        printable(outcome.rejection.detail))
        for item in report.suppressed:
            log.warning("rate limit on %s: %s", item.device_id, item.detail())

    def _ack(self, batch: list[Incoming]) -> None:
        for item in batch:  # in arrival order (MQTT 5 §4.6)
            if item.qos > 0 and item.generation == self.generation:
                self.client.ack(item.mid, item.qos)

    def _batch_loop(self) -> None:
        size = self.settings.batch_size
        window = self.settings.batch_ms / 1000
        while not self.stopping.is_set():
            try:
                first = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + window
            while len(batch) < size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self.queue.get(timeout=remaining))
                except queue.Empty:
                    break
            try:
                report = self.store(batch)
            except Exception:
                log.exception("batch of %d not stored: not acknowledged (will be redelivered)",
                              len(batch))
                self.stopping.set()
                self.client.disconnect()
                return
            self._ack(batch)
            self.receipts.send(report)  # wire v2 receipts (docs/protocol.md §4.11)
            if self.on_batch is not None:
                self.on_batch(report)

    def maintain_partitions(self, now: datetime | None = None) -> list[str]:
        """The month partitions of ``events`` the ingest may need: from the retention horizon
        (``too-old`` below it) to three months ahead (central.db.partitions); nothing on SQLite.
        A failure (a lock not granted in time) is logged: the DEFAULT partition catches the
        events meanwhile, and the next run moves them into their month."""
        now = utc(now or datetime.now(UTC))
        try:
            with self.sessions() as session, session.begin():
                conn = session.connection()
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
                created = ensure_partitions(conn, now, back=self.settings.retention.events)
        except DBAPIError as exc:
            log.warning("events partitions not created: %s", type(exc.orig).__name__)
            return []
        self._partitions_day = now.date().isoformat()
        for name in created:
            log.info("events partition %s created", name)
        return created

    def periodic(self, now: datetime | None = None) -> None:
        """Stale-device check and close-out (safe to run in every worker); once a day, the
        events partitions."""
        now = utc(now or datetime.now(UTC))
        if self._partitions_day != now.date().isoformat():
            self.maintain_partitions(now)
        # Devices, then presences, in separate transactions: a batch takes presences before
        # devices, so holding both here in the other order could deadlock with it.
        with self.sessions() as session, session.begin():
            stale = check_stale(session, now, self.settings.heartbeat_s,
                                self.settings.offline_after_heartbeats)
            check_seq_gaps(session, now, self.settings.seq_gap_grace)
        with self.sessions() as session, session.begin():
            closed = close_out(session, now, self.settings.close_time)
        if self.ctx.limiter is not None:
            with self.sessions() as session, session.begin():
                suppressed = record_suppressed(session, self.ctx.limiter.due(now), now)
            for item in suppressed:
                log.warning("rate limit on %s: %s", item.device_id, item.detail())
        for device_id in stale:
            log.warning("device %s missed its heartbeats: stale", device_id)
        for c in closed:
            log.info("close-out at %s: %d people never exited", c.site_id, c.people)

    def _periodic_loop(self) -> None:
        while not self.stopping.wait(self.periodic_s):
            try:
                self.periodic()
            except Exception:
                log.exception("periodic job failed")

    # -- life cycle --

    def start(self, timeout: float = 15.0) -> IngestWorker:
        unsafe_commit_setting(self.engine)
        b = self.settings.broker
        self.maintain_partitions()
        self.client.connect(b.host, b.port, keepalive=b.keepalive_s, clean_start=False,
                            properties=connect_properties(self.settings))
        self.client.loop_start()
        for target in (self._batch_loop, self._periodic_loop):
            thread = threading.Thread(target=target, daemon=True, name=target.__name__)
            thread.start()
            self._threads.append(thread)
        deadline = time.monotonic() + timeout
        while not self.subscribed.wait(0.05):
            if self.refused is None and time.monotonic() < deadline:
                continue
            self.stop()
            raise IngestError(self.refused or f"no subscription to {b.url} within {timeout} s")
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()


def unsafe_commit_setting(engine: Engine) -> str | None:
    """PostgreSQL's ``synchronous_commit`` when it lets a crash lose acknowledged commits
    (``off``), logged as a warning; None otherwise. A receipt tells the device its events are
    held once the batch committed: with ``off`` a crash of the server loses the last commits
    the devices were already told about (docs/operations.md §8, observed by the chaos suite)."""
    if engine.dialect.name != "postgresql":
        return None
    try:
        with engine.connect() as conn:
            value = str(conn.exec_driver_sql("SHOW synchronous_commit").scalar())
    except Exception:  # the batch loop reports an unreachable database
        return None
    if value != "off":
        return None
    log.warning("PostgreSQL synchronous_commit is off: a crash of the database loses commits "
                "the devices were already receipted for; set it to on")
    return value


def _unavailable(exc: BaseException) -> bool:
    """The database itself may have failed (connection lost, server down, locked past the
    retries): then no message is at fault, none is dead-lettered, and the batch stays
    unacknowledged (the worker stops; its supervisor restarts it and the broker redelivers)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OperationalError, InterfaceError))


def _retryable_error(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and _retryable(exc)


def _retryable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(s in text for s in ("database is locked", "deadlock", "could not serialize",
                                   "busy"))
