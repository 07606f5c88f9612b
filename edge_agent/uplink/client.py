"""The MQTT 5 uplink: drains the outbox to the broker, publishes status, receives configuration.

Source of truth. The outbox is; paho's session is not. Each connection attempt uses a **fresh**
paho client (``reconnect_on_failure=False``) with Clean Start = 1 and Session Expiry Interval = 0
(MQTT 5 §3.1.2.4, §3.1.2.11.2): the broker keeps no session for the device (§4.1 session state
is discarded at disconnect) and paho's in-memory queue of the previous connection is dropped
with its client. After every (re)connect — or a restart of the process — the drain starts again
from the lowest undelivered ``seq`` in the outbox. Why not Clean Start = 0: paho would resend its
own queued PUBLISH packets (§4.4) *and* the outbox would resend them, doubling every in-flight
event; and paho's queue is lost on a process restart anyway. Downstream nothing is lost either:
``config`` and ``occupancy`` are retained (§3.3.1.3), so SUBSCRIBE delivers the latest of each.

Delivery (MQTT 5 §4.3.2, QoS 1 "at least once"). One drain thread publishes pending events in
``seq`` order on ``checkin/v1/<device_id>/events`` with QoS 1, keeping at most ``inflight``
unacknowledged (also capped by the broker's Receive Maximum from CONNACK, §3.2.2.3.3). A PUBACK
with a success reason code (< 0x80, §3.4.2.1) marks the event delivered, except 0x10 "no
matching subscribers": the broker took the message and dropped it because no collector was
subscribed (after a broker restart, mosquitto 2.0.11 does not restore the collectors' shared
subscriptions until they reconnect), so the event stays undelivered and is published again after
``retry_no_subscriber_s``; counted in ``stats()``. PUBACKs are batched into one outbox
transaction. A PUBACK with a failure reason code (e.g. 0x87
Not authorized from an ACL) is counted and logged, the event stays undelivered and is
republished after ``retry_failed_s`` (it does not block the events after it). A crash between
PUBACK and the outbox update only causes a duplicate with the same ``event_id``, which the
centre drops (idempotent on ``device_id, event_id``). Messages of one connection reach
subscribers in publication order (§4.6), so the first copies of the events arrive in ``seq``
order.

Receipts (wire v2, docs/protocol.md §4.11). A PUBACK only says the broker has the message, and
a broker keeps queued messages in memory between autosaves: a crash loses them. So a PUBACK
makes an event *sent*, and the event stays in the outbox until the centre's receipt on
``checkin/v1/<device_id>/receipts`` (retained, subscribed at every connect) *settles* it
(committed, or rejected for good). What is sent but not settled is published again after every
reconnect (:meth:`Outbox.requeue`) and whenever ``receipt_timeout_s`` passed since its PUBACK
without a receipt (doubling, up to an hour, while no receipt comes: a collector down for hours
must not get the backlog queued again every minute); the collector drops the duplicates and
receipts them again. While receipts are still advancing (a new event settled within the last
``receipt_timeout_s``) the timeout only resends gaps below the highest receipted ``seq``: the
events above it are most likely still queued at the broker (§4.11.2, :class:`ReceiptProgress`).
The status carries ``unreceipted`` and ``oldest_unreceipted_at``. ``receipt_timeout_s=0`` is
wire v1 (a PUBACK settles), for a collector that sends no receipts.

Status (MQTT 5 §3.1.2.5 will): see :mod:`edge_agent.uplink.status`. Reconnects back off
exponentially with jitter. No personal data is logged: only ``seq``, ``event_id``, topics,
reason codes.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge_agent import __version__
from edge_agent.outbox import Outbox, OutboxError
from edge_agent.uplink.config import BrokerAddress, TlsFiles, Topics, UplinkConfigError
from edge_agent.uplink.receipts import Receipt, ReceiptError, ReceiptProgress, parse_receipt
from edge_agent.uplink.status import (
    DeviceHealth,
    StatusProvider,
    StatusSigner,
    offline_status,
    online_status,
)

log = logging.getLogger(__name__)

NO_MATCHING_SUBSCRIBERS = 0x10  # MQTT 5 §3.4.2.1: a success code
MAX_RESEND_AFTER_S = 3600.0
MessageHandler = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class UplinkStats:
    connected: bool
    inflight: int
    published: int
    delivered: int
    failed_acks: int
    no_subscribers: int
    """PUBACKs with 0x10 "no matching subscribers": delivered to the broker, which dropped
    them because no collector session subscribes (a collector deployment error)."""
    connects: int
    last_error: str | None
    receipts: int = 0
    """Receipts applied (wire v2)."""
    settled: int = 0
    """Events settled by those receipts (committed or rejected for good)."""
    resent: int = 0
    """Sent events made pending again (reconnect or receipt timeout)."""


@dataclass(slots=True)
class _Connection:
    """State of one MQTT connection (one paho client)."""

    generation: int
    client: mqtt.Client
    connack: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)
    reason: ReasonCode | None = None
    receive_maximum: int = 65535
    mids: dict[int, int] = field(default_factory=dict)
    """Message id → ``seq`` of the events awaiting their PUBACK on this connection."""
    status_mids: set[int] = field(default_factory=set)


class Uplink:
    """Drain an :class:`Outbox` to the broker and keep the device's status there."""

    def __init__(self, device_id: str, site_id: str, broker_url: str,
                 tls: TlsFiles | tuple[Any, Any, Any] | None, outbox: Outbox, *,
                 inflight: int = 16, heartbeat_s: float = 30.0,
                 status_provider: StatusProvider | None = None,
                 on_occupancy: MessageHandler | None = None,
                 on_config: MessageHandler | None = None,
                 on_delivered: Callable[[Sequence[int]], None] | None = None,
                 status_signer: StatusSigner | None = None,
                 version: str = __version__, keepalive_s: int = 30,
                 backoff: tuple[float, float] = (0.5, 60.0), retry_failed_s: float = 30.0,
                 retry_no_subscriber_s: float = 2.0,
                 connect_timeout_s: float = 10.0, purge_every_s: float = 600.0,
                 receipt_timeout_s: float = 60.0,
                 on_settled: Callable[[int], None] | None = None) -> None:
        self.device_id = device_id
        self.site_id = site_id
        self.topics = Topics.for_device(device_id, site_id)
        self.address = BrokerAddress.parse(broker_url)
        if self.address.tls and tls is None:
            raise UplinkConfigError("mqtts:// needs the CA, device certificate and key")
        if not self.address.tls and tls is not None:
            raise UplinkConfigError("TLS files given for a plain mqtt:// broker URL")
        self._ssl: ssl.SSLContext | None = TlsFiles(*tls).context() if tls else None
        if inflight < 1:
            raise ValueError("inflight must be at least 1")
        self._outbox = outbox
        self._inflight = inflight
        self._heartbeat_s = heartbeat_s
        self._heartbeat_changed = threading.Event()
        self._status_provider = status_provider
        self._on_occupancy = on_occupancy
        self._on_config = on_config
        self._on_delivered = on_delivered
        self._signer = status_signer
        self._version = version
        self._keepalive = keepalive_s
        self._backoff = backoff
        self._retry_failed_s = retry_failed_s
        self._retry_no_subscriber_s = retry_no_subscriber_s
        self._connect_timeout = connect_timeout_s
        self._purge_every = purge_every_s
        if receipt_timeout_s < 0:
            raise ValueError("receipt_timeout_s must be 0 (no receipts) or positive")
        self._receipt_timeout = receipt_timeout_s
        self._resend_after = receipt_timeout_s
        """The timeout in force: doubled (up to :data:`MAX_RESEND_AFTER_S`) at each timeout resend
        that no receipt followed, back to ``receipt_timeout_s`` at the next receipt, so a
        collector that is down for hours does not get the whole backlog queued again every
        minute."""
        self._on_settled = on_settled
        self._progress = ReceiptProgress(receipt_timeout_s)
        self._receipts: queue.SimpleQueue[Receipt] = queue.SimpleQueue()
        self._receipt_count = 0
        self._settled = 0
        self._resent = 0

        self._acks: queue.SimpleQueue[tuple[int, int, ReasonCode]] = queue.SimpleQueue()
        self._signal = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._conn: _Connection | None = None
        self._generation = 0
        self._stats_lock = threading.Lock()
        self._published = 0
        self._delivered = 0
        self._failed = 0
        self._no_subscribers = 0
        self._connects = 0
        self._last_error: str | None = None

    # -- public ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("uplink already started")
        self._stopping.clear()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"uplink-{self.device_id}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``offline``, DISCONNECT normally (the will is discarded) and join."""
        self._stopping.set()
        self._signal.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("uplink thread did not stop within %.1f s", timeout)
            self._thread = None

    def set_heartbeat_s(self, seconds: float) -> None:
        """A new status interval (the centre's runtime configuration, docs/protocol.md §8):
        the next status goes out at once and carries it, the following ones at the new pace."""
        if seconds <= 0:
            raise ValueError("the heartbeat must be positive")
        self._heartbeat_s = seconds
        self._heartbeat_changed.set()
        self._signal.set()

    def wake(self) -> None:
        """Drain now (call after :meth:`Outbox.commit`)."""
        self._signal.set()

    def stats(self) -> UplinkStats:
        conn = self._conn
        with self._stats_lock:
            return UplinkStats(
                connected=conn is not None and conn.connack.is_set()
                and not conn.disconnected.is_set(),
                inflight=len(conn.mids) if conn else 0, published=self._published,
                delivered=self._delivered, failed_acks=self._failed,
                no_subscribers=self._no_subscribers, connects=self._connects,
                last_error=self._last_error, receipts=self._receipt_count,
                settled=self._settled, resent=self._resent)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the outbox is empty of undelivered events; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._outbox.depth() == 0:
                return True
            time.sleep(0.02)
        return self._outbox.depth() == 0

    def wait_receipted(self, timeout: float) -> bool:
        """Wait until the centre has receipted every stored event; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._outbox.unreceipted() == 0:
                return True
            time.sleep(0.02)
        return self._outbox.unreceipted() == 0

    @property
    def receipts_enabled(self) -> bool:
        return self._receipt_timeout > 0

    def __enter__(self) -> Uplink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the supervisor thread ---------------------------------------------------------------

    def _error(self, text: str) -> None:
        with self._stats_lock:
            self._last_error = text

    def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            conn = self._connect()
            if conn is None:
                lo, hi = self._backoff
                delay = min(hi, lo * 2 ** min(attempt, 20)) * random.uniform(0.5, 1.0)
                attempt += 1
                log.info("broker unreachable; retrying in %.1f s", delay)
                self._stopping.wait(delay)
                continue
            attempt = 0
            self._conn = conn
            try:
                self._serve(conn)
            except Exception as exc:  # never let the drain thread die
                log.exception("uplink connection failed")
                self._error(f"internal: {type(exc).__name__}: {exc}")
            finally:
                self._teardown(conn)
                self._conn = None

    def _connect(self) -> _Connection | None:
        self._generation += 1
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.device_id,
                             protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        conn = _Connection(self._generation, client)
        client.suppress_exceptions = True
        client.max_inflight_messages = self._inflight + 4  # events + status messages
        client.connect_timeout = self._connect_timeout
        if self._ssl is not None:
            client.tls_set_context(self._ssl)
        client.will_set(self.topics.status, offline_status(
            device_id=self.device_id, version=self._version, reason="connection-lost", at=None,
            signer=self._signer), qos=1, retain=True)
        self._bind(conn)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0
        try:
            client.connect(self.address.host, self.address.port, keepalive=self._keepalive,
                           clean_start=True, properties=props)
        except (OSError, ValueError) as exc:
            self._error(f"connect: {type(exc).__name__}: {exc}")
            return None
        client.loop_start()
        if not conn.connack.wait(self._connect_timeout) or conn.disconnected.is_set():
            self._error("connect: no CONNACK")
            client.loop_stop()
            return None
        if conn.reason is not None and conn.reason.is_failure:
            self._error(f"connect refused: {conn.reason}")
            client.loop_stop()
            return None
        with self._stats_lock:
            self._connects += 1
        log.info("connected to %s:%d (generation %d)", self.address.host, self.address.port,
                 conn.generation)
        return conn

    def _bind(self, conn: _Connection) -> None:
        gen = conn.generation

        def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                       properties: Properties | None) -> None:
            conn.reason = reason
            receive_max = getattr(properties, "ReceiveMaximum", None)
            if isinstance(receive_max, int) and receive_max > 0:
                conn.receive_maximum = receive_max
            conn.connack.set()
            self._signal.set()

        def on_disconnect(client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                          properties: Properties | None) -> None:
            if not self._stopping.is_set():
                log.warning("disconnected from the broker: %s", reason)
                self._error(f"disconnected: {reason}")
            conn.disconnected.set()
            conn.connack.set()  # unblock a connect still waiting
            self._signal.set()

        def on_publish(client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode,
                       properties: Properties) -> None:
            # Called by paho under its own locks: only hand over, never block here.
            self._acks.put((gen, mid, reason))
            self._signal.set()

        def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
            self._dispatch(message)

        conn.client.on_connect = on_connect
        conn.client.on_disconnect = on_disconnect
        conn.client.on_publish = on_publish
        conn.client.on_message = on_message

    def _dispatch(self, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.topics.receipts:
            if not message.payload:
                return
            try:
                self._receipts.put(parse_receipt(bytes(message.payload), self.device_id))
            except ReceiptError as exc:
                log.warning("receipt ignored: %s", exc)
                return
            self._signal.set()
            return
        if message.topic == self.topics.config:
            handler, what = self._on_config, "config"
        elif message.topic == self.topics.occupancy:
            handler, what = self._on_occupancy, "occupancy"
        else:
            log.warning("message on unexpected topic %s ignored", message.topic)
            return
        if handler is None or not message.payload:  # empty retained payload: cleared
            return
        try:
            data = json.loads(message.payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("%s message is not JSON (%d bytes): ignored", what, len(message.payload))
            return
        if not isinstance(data, dict):
            log.warning("%s message is not a JSON object: ignored", what)
            return
        try:
            handler(data)
        except Exception:
            log.exception("%s handler failed", what)

    def _serve(self, conn: _Connection) -> None:
        client = conn.client
        window = max(1, min(self._inflight, conn.receive_maximum - 2))
        topics = [(self.topics.occupancy, SubscribeOptions(qos=1)),
                  (self.topics.config, SubscribeOptions(qos=1))]
        if self.receipts_enabled:
            topics.append((self.topics.receipts, SubscribeOptions(qos=1)))
            # What was sent on an earlier connection and never receipted goes out again: the
            # broker may have lost it (docs/protocol.md §4.11).
            self._count_resent(self._outbox.requeue())
        client.subscribe(topics)
        self._publish_status(conn)
        next_heartbeat = time.monotonic() + self._heartbeat_s
        next_purge = time.monotonic()
        check_every = max(0.5, min(5.0, self._receipt_timeout / 4))
        next_receipt_check = time.monotonic() + check_every
        cursor = 0  # highest seq published (or skipped as in flight) on this connection
        rescan_at: float | None = None
        while not self._stopping.is_set() and not conn.disconnected.is_set():
            self._signal.clear()
            now = time.monotonic()
            try:
                retry_in = self._handle_acks(conn)
                self._handle_receipts()
                if self.receipts_enabled and now >= next_receipt_check:
                    next_receipt_check = now + check_every
                    cutoff = datetime.now(UTC) - timedelta(seconds=self._resend_after)
                    # While receipts advance, only gaps below the highest receipted seq are
                    # resent; the rest is most likely still queued at the broker (§4.11.2).
                    hold = self._progress.advancing(now)
                    requeued = self._outbox.requeue(sent_before=cutoff,
                                                    hold_above_receipted=hold)
                    if requeued:
                        log.info("%d events without a receipt for %.0f s: sent again%s",
                                 requeued, self._resend_after,
                                 " (gaps below the highest receipted seq)" if hold else "")
                        self._count_resent(requeued)
                        self._resend_after = min(MAX_RESEND_AFTER_S, self._resend_after * 2)
                        retry_in = 0.0 if retry_in is None else min(retry_in, 0.0)
                if retry_in is not None:
                    rescan_at = now + retry_in if rescan_at is None else min(rescan_at,
                                                                             now + retry_in)
                if rescan_at is not None and now >= rescan_at:
                    cursor, rescan_at = 0, None
                free = window - len(conn.mids)
                if free > 0:
                    busy = set(conn.mids.values())
                    for entry in self._outbox.pending(limit=free + len(busy), after_seq=cursor):
                        if free == 0:
                            break
                        cursor = entry.seq
                        if entry.seq in busy:
                            continue
                        info = client.publish(self.topics.events, entry.payload, qos=1)
                        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                            log.info("publish of seq %d not sent (%s); waiting to reconnect",
                                     entry.seq, mqtt.error_string(info.rc))
                            return
                        conn.mids[info.mid] = entry.seq
                        free -= 1
                        with self._stats_lock:
                            self._published += 1
                if self._heartbeat_changed.is_set():
                    self._heartbeat_changed.clear()
                    next_heartbeat = now
                if now >= next_heartbeat:
                    self._publish_status(conn)
                    next_heartbeat = now + self._heartbeat_s
                if now >= next_purge:
                    self._outbox.purge()
                    next_purge = now + self._purge_every
            except OutboxError as exc:
                log.error("outbox: %s", exc)
                self._error(f"outbox: {exc}")
                rescan_at = time.monotonic() + 1.0
                self._stopping.wait(1.0)
            wait = min(1.0, max(0.0, next_heartbeat - time.monotonic()))
            if rescan_at is not None:
                wait = min(wait, max(0.0, rescan_at - time.monotonic()))
            self._signal.wait(wait)

    def _count_resent(self, n: int) -> None:
        if n:
            with self._stats_lock:
                self._resent += n

    def _handle_receipts(self) -> None:
        """Settle what the receipts received so far say the centre holds."""
        while True:
            try:
                receipt = self._receipts.get_nowait()
            except queue.Empty:
                return
            settled = self._outbox.settle(receipt.committed_through, receipt.committed,
                                          receipt.rejected)
            if settled:
                self._resend_after = self._receipt_timeout
                self._progress.settled(settled, time.monotonic())
            for seq, event_id, reason in receipt.rejected:
                log.warning("the centre refused seq %d (%s) for good: %s", seq, event_id,
                            reason)
            with self._stats_lock:
                self._receipt_count += 1
                self._settled += settled
            if settled and self._on_settled is not None:
                try:
                    self._on_settled(settled)
                except Exception:
                    log.exception("on_settled callback failed")

    def _handle_acks(self, conn: _Connection) -> float | None:
        """Apply the PUBACKs received so far; the delay before a retry when one was refused."""
        delivered: list[int] = []
        retry_in: float | None = None
        while True:
            try:
                gen, mid, reason = self._acks.get_nowait()
            except queue.Empty:
                break
            if gen != conn.generation:
                continue  # cannot happen: the queue is emptied at teardown
            if mid in conn.status_mids:
                conn.status_mids.discard(mid)
                if reason.is_failure:
                    log.warning("status refused by the broker: %s", reason)
                    self._error(f"status refused: {reason}")
                continue
            seq = conn.mids.pop(mid, None)
            if seq is None:
                continue
            if reason.is_failure:
                retry_in = self._retry_failed_s
                log.warning("PUBACK for seq %d refused: %s; retrying in %.0f s", seq, reason,
                            self._retry_failed_s)
                with self._stats_lock:
                    self._failed += 1
                    self._last_error = f"PUBACK seq {seq}: {reason}"
            elif reason.value == NO_MATCHING_SUBSCRIBERS:
                with self._stats_lock:
                    self._no_subscribers += 1
                if self._no_subscribers in (1, 100) or self._no_subscribers % 10_000 == 0:
                    log.warning("broker reports no subscriber for the events (0x10): kept, "
                                "sent again in %.0f s", self._retry_no_subscriber_s)
                retry_in = min(retry_in or self._retry_no_subscriber_s,
                               self._retry_no_subscriber_s)
            else:
                delivered.append(seq)
        if delivered:
            marked = self._outbox.mark_delivered_many(delivered,
                                                      settle=not self.receipts_enabled)
            with self._stats_lock:
                self._delivered += marked
            if self._on_delivered is not None:
                try:
                    self._on_delivered(delivered)
                except Exception:
                    log.exception("on_delivered callback failed")
        return retry_in

    def _publish_status(self, conn: _Connection) -> None:
        try:
            health = self._status_provider() if self._status_provider else DeviceHealth()
        except Exception:
            log.exception("status provider failed")
            health = DeviceHealth()
        counts = self._outbox.counts()
        payload = online_status(device_id=self.device_id, version=self._version,
                                outbox_depth=counts.undelivered,
                                oldest_undelivered_at=self._outbox.oldest_undelivered(),
                                health=health, at=datetime.now(UTC), site_id=self.site_id,
                                last_seq=counts.last_seq, outbox_bytes=counts.bytes,
                                uptime_s=int(time.monotonic() - self._started),
                                heartbeat_s=max(1, round(self._heartbeat_s)),
                                signer=self._signer,
                                unreceipted=(counts.unreceipted if self.receipts_enabled
                                             else None),
                                oldest_unreceipted_at=(self._outbox.oldest_unreceipted()
                                                       if self.receipts_enabled else None))
        info = conn.client.publish(self.topics.status, payload, qos=1, retain=True)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            conn.status_mids.add(info.mid)

    def _teardown(self, conn: _Connection) -> None:
        client = conn.client
        if self._stopping.is_set() and not conn.disconnected.is_set():
            info = client.publish(self.topics.status, offline_status(
                device_id=self.device_id, version=self._version, reason="stopped",
                at=datetime.now(UTC), signer=self._signer), qos=1, retain=True)
            conn.status_mids.add(info.mid)
            deadline = time.monotonic() + 2.0
            while (conn.mids or not info.is_published()) and time.monotonic() < deadline \
                    and not conn.disconnected.is_set():
                self._signal.wait(0.05)
                self._signal.clear()
                try:
                    self._handle_acks(conn)
                except OutboxError as exc:
                    log.error("outbox: %s", exc)
                    break
            client.disconnect()  # normal DISCONNECT (0x00): the broker discards the will
        client.loop_stop()
        try:
            self._handle_acks(conn)  # PUBACKs that arrived before the network thread ended
        except OutboxError as exc:
            log.error("outbox: %s", exc)
        # Whatever is still in conn.mids stays undelivered in the outbox and goes out again.
        conn.mids.clear()
