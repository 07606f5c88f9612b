"""The agent on a gate or desk: readers and scanners in, verdicts on the kiosk, events out.

One :class:`Agent` per device (DESIGN.md §2.1). Each reader and scanner has a thread; every
presentation goes through the site's flow, which commits its events to the outbox (SQLite, fsync)
before the verdict is shown; the uplink drains the outbox to the broker. The kiosk and the
metrics listen on loopback.

Scan-then-tap: on a device with a chip reader, a card QR arms the chip read that follows (its CAN
and BAC keys open the chip, and QR and chip are compared). When no card is tapped within
``tap_window_s`` the QR alone is recorded, with the QR's assurance.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from drivers.card_reader import CardEvent, CardReader, NoCardError, ReaderError
from drivers.code_scanner import CodeScanner, Scan, ScannerError
from drivers.outputs import Outputs, open_outputs
from drivers.uri import open_reader, open_scanner
from edge_agent import __version__
from edge_agent.cccd import CccdError, QrFormat, QrIdentity, mask_id, parse_qr
from edge_agent.config import Config, SiteKind, load_keys
from edge_agent.events.model import EventDraft
from edge_agent.flows import (
    AccommodationFlow,
    ChipPresentation,
    FlowBase,
    FlowError,
    HeritageGateFlow,
    HospitalFlow,
    ManualPresentation,
    ManualReason,
    QrPresentation,
    StayFlow,
    Verdict,
    make_flow,
)
from edge_agent.flows.model import Outcome
from edge_agent.icao import ec
from edge_agent.icao.trust import TrustStore
from edge_agent.insurance import make_adapter
from edge_agent.kiosk import KioskState, VerdictView, create_app
from edge_agent.kiosk.app import ALLOWED_HOSTS, QuietRequestHandler, loopback_hosts
from edge_agent.metrics import AgentMetrics
from edge_agent.outbox import Outbox
from edge_agent.outbox.builder import payload_builder
from edge_agent.reading import KeyMaterial, NoKeyMaterialError, ReadPolicy, read_chip
from edge_agent.reading.policy import CloneCheck
from edge_agent.stay_register import StayRegister
from edge_agent.uplink import DeviceHealth, Uplink

log = logging.getLogger(__name__)

SITE_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
DESK_ACTIONS = {
    SiteKind.HERITAGE_GATE: ("manual",),
    SiteKind.HOSPITAL_RECEPTION: ("manual", "admit", "discharge"),
    SiteKind.ACCOMMODATION_DESK: ("check_in", "check_out"),
}
HOLD_S = 300.0
"""How long the person last presented at a desk stays selected for a desk action."""


def site_clock() -> datetime:
    """Now in the site's time zone (Vietnam, UTC+07:00, no daylight saving)."""
    return datetime.now(SITE_TZ)


@dataclass
class _Armed:
    qr: QrIdentity
    payload: bytes
    at: float


class Agent:
    """Everything one device runs. ``start()`` then ``stop()``; safe to stop twice."""

    def __init__(self, config: Config, *, tap_window_s: float = 10.0,
                 outputs: Outputs | None = None,
                 clock: Callable[[], datetime] = site_clock) -> None:
        self.config = config
        self.keys = load_keys(config.keys)
        self.tap_window_s = tap_window_s
        self.clock = clock
        self.metrics = AgentMetrics()
        self.outputs = outputs or open_outputs()
        self.outbox = Outbox(config.outbox.path, max_rows=config.outbox.max_rows,
                             max_bytes=config.outbox.max_bytes,
                             retention=timedelta(days=config.outbox.retention_days))
        insurance = (make_adapter(config.insurance.adapter.value, config.insurance.url,
                                  config.insurance.timeout_s)
                     if config.device.site_kind is SiteKind.HOSPITAL_RECEPTION else None)
        self.flow: FlowBase = make_flow(config, self.keys.subject_key, clock=clock,
                                        commit=self._commit, insurance=insurance)
        self.stays: StayRegister | None = None
        if isinstance(self.flow, StayFlow):
            self.stays = StayRegister(config.outbox.path.with_name(
                config.outbox.path.name + ".stays"))
            self.stays.reconcile(self.outbox)
            self.flow.restore_stays(self.stays.open_stays())
        self.trust = (TrustStore.from_folder(config.chip.trust_dir)
                      if config.chip.trust_dir else None)
        self.policy = ReadPolicy(read_dg2=config.chip.dg2,
                                 clone_check=CloneCheck(config.chip.clone_check.value),
                                 require_csca_chain=config.chip.require_csca_chain,
                                 max_chunk=config.chip.max_chunk)
        self.kiosk = KioskState(device_name=config.device.name or config.device.id,
                                site_name=config.device.site_id,
                                direction=(config.device.direction.value
                                           if config.device.direction else ""),
                                language=config.device.language.value)
        tls = ((config.broker.ca, config.broker.cert, config.broker.key)
               if config.broker.tls else None)
        self.uplink = Uplink(config.device.id, config.device.site_id, config.broker.url, tls,
                             self.outbox, heartbeat_s=config.broker.heartbeat_s,
                             status_provider=self._health, on_occupancy=self._on_occupancy,
                             on_config=self._on_config, on_delivered=self._on_delivered,
                             version=__version__,
                             receipt_timeout_s=config.broker.receipt_timeout_s,
                             on_settled=lambda _n: self._refresh_screen())
        self.readers: dict[str, CardReader] = {}
        self._removed: dict[str, threading.Event] = {}
        self.scanners: dict[str, CodeScanner] = {}
        self.health_state: dict[str, str] = {}
        self._armed: _Armed | None = None
        self._held: tuple[ChipPresentation | QrPresentation, float] | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._servers: list[Any] = []
        self.verdicts: list[Verdict] = []
        """Every verdict shown, newest last (bounded); for tests and the doctor."""

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        ec.precompute(ec.BRAINPOOL_P256R1)  # once per process, not in the first read
        for uri in self.config.readers:
            self._spawn(f"reader {uri}", self._reader_loop, uri)
        for uri in self.config.scanners:
            self._spawn(f"scanner {uri}", self._scanner_loop, uri)
        self._spawn("tap window", self._armed_loop)
        self.uplink.start()
        app = create_app(self.kiosk, desk=self.desk,
                         desk_actions=DESK_ACTIONS[self.config.device.site_kind])
        kiosk = make_server(self.config.kiosk.host, self.config.kiosk.port, app, threaded=True,
                            request_handler=QuietRequestHandler)
        app.config[ALLOWED_HOSTS] = loopback_hosts(self.config.kiosk.host, kiosk.server_port)
        self._servers.append(kiosk)
        self._spawn("kiosk", kiosk.serve_forever)
        if self.config.metrics.port:
            self._servers.append(self.metrics.serve(self.config.metrics.port))
        self._refresh_screen()
        log.info("agent %s started (%s)", self.config.device.id, self.config.device.site_kind)

    @property
    def kiosk_port(self) -> int:
        server = self._servers[0] if self._servers else None
        return int(server.server_port) if isinstance(server, BaseWSGIServer) else 0

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        for server in self._servers:
            server.shutdown()
        closers: list[Callable[[], None]] = [r.close for r in self.readers.values()]
        closers += [s.close for s in self.scanners.values()]
        for close in closers:
            try:
                close()
            except Exception:  # closing one device must not stop the others from closing
                log.exception("closing a device")
        self.uplink.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self.outbox.close()
        if self.stays is not None:
            self.stays.close()
        self.outputs.all_off()

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=self._guard, args=(name, target, *args), name=name,
                                  daemon=True)
        self._threads.append(thread)
        thread.start()

    def _guard(self, name: str, target: Callable[..., None], *args: Any) -> None:
        try:
            target(*args)
        except Exception:
            log.exception("%s stopped with an error", name)
            self.health_state[name] = "failed"

    # -- outbox and uplink ------------------------------------------------------------------------

    def _commit(self, drafts: Sequence[EventDraft]) -> None:
        device = self.config.device
        items = [(draft, payload_builder(draft, device_id=device.id, site_id=device.site_id,
                                         signing_key=self.keys.signing_key,
                                         centre_key=self.keys.centre_public_key))
                 for draft in drafts]
        entries = self.outbox.commit_all(items)
        if self.stays is not None:
            for entry in entries:
                if entry.is_stay:
                    self.stays.apply(entry.seq, json.loads(entry.payload))
        for draft in drafts:
            self.metrics.events_committed.labels(kind=draft.kind.value).inc()
        self.uplink.wake()

    def _on_delivered(self, seqs: Sequence[int]) -> None:
        self.metrics.events_delivered.inc(len(seqs))
        self._refresh_screen()

    def _on_occupancy(self, message: dict[str, Any]) -> None:
        if not isinstance(self.flow, HeritageGateFlow):
            return
        try:
            at = datetime.fromisoformat(str(message["at"]))
            capacity = message.get("capacity")
            self.flow.set_occupancy(str(message["site_id"]), int(message["occupancy"]),
                                    int(capacity) if capacity is not None else None, at)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("occupancy message ignored: %s", exc)
            return
        self._refresh_screen()

    def _on_config(self, message: dict[str, Any]) -> None:
        log.info("configuration revision %s received", message.get("revision"))

    def _health(self) -> DeviceHealth:
        readers = {uri: self.health_state.get(f"reader {uri}", "starting")
                   for uri in self.config.readers}
        scanners = {uri: self.health_state.get(f"scanner {uri}", "starting")
                    for uri in self.config.scanners}
        return DeviceHealth(readers=readers, scanners=scanners)

    # -- presentations ----------------------------------------------------------------------------

    def _show(self, verdict: Verdict) -> None:
        """The verdict goes on screen after the flow committed (flows commit first)."""
        outcome = verdict.outcome
        warning = bool(verdict.warnings) or outcome is Outcome.ALREADY_COUNTED
        self.kiosk.show(VerdictView(accepted=verdict.accepted, title=verdict.title,
                                    message=verdict.message, masked_id=verdict.masked_id,
                                    name=verdict.name, reason=verdict.reason, warning=warning))
        self.outputs.signal("accept" if verdict.accepted and not warning
                            else "warn" if verdict.accepted else "reject")
        if verdict.accepted and isinstance(self.flow, HeritageGateFlow) \
                and outcome is Outcome.ACCEPTED:
            self.outputs.pulse_relay(1.0)  # release the turnstile
        with self._lock:
            self.verdicts.append(verdict)
            del self.verdicts[:-200]
        self._refresh_screen(verdict)

    def _refresh_screen(self, verdict: Verdict | None = None) -> None:
        counts = verdict.counts if verdict is not None else self.flow.counts
        stats = self.uplink.stats()
        depth = self.outbox.depth()
        self.metrics.outbox_depth.set(depth)
        unreceipted, oldest = self.outbox.unreceipted(), self.outbox.oldest_unreceipted()
        self.metrics.outbox_unreceipted.set(unreceipted)
        self.metrics.oldest_unreceipted_age.set(
            0 if oldest is None else max(0.0, time.time() - oldest.timestamp()))
        self.metrics.uplink_connected.set(1 if stats.connected else 0)
        self.kiosk.update(entries_today=counts.entries, exits_today=counts.exits,
                          occupancy=counts.occupancy, capacity=counts.capacity,
                          occupancy_estimated=counts.occupancy_estimated,
                          online=stats.connected,
                          backlog=unreceipted if self.uplink.receipts_enabled else depth)

    def present(self, presentation: ChipPresentation | QrPresentation) -> Verdict | None:
        """Run one presentation through the site's flow and show the verdict.

        At an accommodation desk a presentation only selects the guest for the desk's
        check-in or check-out (no event, so None); at a hospital desk it records the visit and
        also selects the patient for admission or discharge.
        """
        with self._lock:
            self._held = (presentation, time.monotonic())
            flow = self.flow
            if isinstance(flow, HeritageGateFlow):
                verdict = flow.present(presentation)
            elif isinstance(flow, HospitalFlow):
                verdict = flow.visit(presentation)
            else:
                self.kiosk.show(VerdictView(accepted=True, title="Đã đọc thẻ",
                                            message="Chọn nhận phòng hoặc trả phòng / "
                                                    "Choose check-in or check-out",
                                            warning=True))
                return None
        method = "chip" if isinstance(presentation, ChipPresentation) else "qr"
        self.metrics.presentations.labels(method=method, outcome=verdict.outcome.value).inc()
        self._show(verdict)
        return verdict

    def desk(self, action: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A desk action from the kiosk's desk page; ValueError for the receptionist."""
        if action not in DESK_ACTIONS[self.config.device.site_kind]:
            raise ValueError(f"'{action}' is not done at this desk")
        try:
            verdict = self._desk(action, fields)
        except FlowError as exc:
            raise ValueError(str(exc)) from None
        self._show(verdict)
        return {"accepted": verdict.accepted, "outcome": verdict.outcome.value,
                "title": verdict.title, "message": verdict.message,
                "masked_id": verdict.masked_id}

    def _desk(self, action: str, fields: dict[str, Any]) -> Verdict:
        flow = self.flow
        if action == "manual":
            try:
                reason = ManualReason(str(fields.get("reason", "")))
                count = int(fields.get("count", 1))
            except ValueError:
                raise ValueError("reason must be child, paper-insurance, no-card or other, "
                                 "count a whole number") from None
            manual = ManualPresentation(reason, count)
            with self._lock:
                if isinstance(flow, HeritageGateFlow):
                    return flow.present(manual)
                if isinstance(flow, HospitalFlow):
                    return flow.visit(manual)
            raise ValueError("no manual count at this desk")
        with self._lock:
            held = self._held
            if held is None or time.monotonic() - held[1] > HOLD_S:
                raise ValueError("Chạm thẻ hoặc quét mã QR trước / Tap or scan the card first")
            person = held[0]
            if action in ("admit", "check_in"):
                room = str(fields.get("room", "")).strip()
                try:
                    departure = date.fromisoformat(str(fields.get("expected_departure", "")))
                except ValueError:
                    raise ValueError("expected_departure must be a date (YYYY-MM-DD)") from None
                if not room:
                    raise ValueError("room / ward is required")
                if action == "admit" and isinstance(flow, HospitalFlow):
                    return flow.admit(person, ward=room, expected_departure=departure)
                if isinstance(flow, AccommodationFlow):
                    return flow.check_in(person, room=room, expected_departure=departure)
            if action == "discharge" and isinstance(flow, HospitalFlow):
                return flow.discharge(person)
            if action == "check_out" and isinstance(flow, AccommodationFlow):
                return flow.check_out(person)
        raise ValueError(f"'{action}' is not done at this desk")

    def _reader_loop(self, uri: str) -> None:
        while not self._stop.is_set():
            try:
                reader = self.readers.get(uri) or open_reader(uri)
            except ReaderError as exc:
                self.health_state[f"reader {uri}"] = f"unavailable: {exc}"
                self.metrics.reader_up.labels(device=uri).set(0)
                self._stop.wait(2.0)
                continue
            if uri not in self.readers:
                self.readers[uri] = reader
                removed = self._removed[uri] = threading.Event()

                def on_event(event: CardEvent, _name: str, flag: threading.Event = removed) -> None:
                    if event in (CardEvent.REMOVED, CardEvent.READER_REMOVED):
                        flag.set()

                reader.add_listener(on_event)
            self.health_state[f"reader {uri}"] = "ok"
            self.metrics.reader_up.labels(device=uri).set(1)
            try:
                reader.connect(timeout=0.5)
            except NoCardError:
                continue
            except ReaderError as exc:
                self.health_state[f"reader {uri}"] = f"unavailable: {exc}"
                self.metrics.reader_up.labels(device=uri).set(0)
                self._stop.wait(1.0)
                continue
            removed = self._removed[uri]
            removed.clear()
            self._tap(reader)
            reader.disconnect()
            # One read per presentation: wait until the card leaves the field.
            while not self._stop.is_set() and not removed.wait(0.2):
                pass

    def _tap(self, reader: CardReader) -> None:
        with self._lock:
            armed, self._armed = self._armed, None
        try:
            keys = KeyMaterial.from_qr(armed.qr) if armed else None
        except NoKeyMaterialError:
            keys = None
        if keys is None:
            self.kiosk.show(VerdictView(accepted=False, title="Quét mã QR trên thẻ trước",
                                        message="Scan the card's QR code, then tap the card",
                                        reason="no-key-material", warning=True))
            self.outputs.signal("warn")
            return
        started = time.perf_counter()
        result = read_chip(reader, keys, self.policy, self.trust, connect=False)
        self.metrics.read_seconds.observe(time.perf_counter() - started)
        self.present(ChipPresentation(result, qr=armed.qr if armed else None))

    def _scanner_loop(self, uri: str) -> None:
        while not self._stop.is_set():
            try:
                scanner = self.scanners.get(uri) or open_scanner(uri)
            except (ScannerError, OSError) as exc:
                self.health_state[f"scanner {uri}"] = f"unavailable: {exc}"
                self._stop.wait(2.0)
                continue
            self.scanners[uri] = scanner
            self.health_state[f"scanner {uri}"] = "ok"
            try:
                scan = scanner.read(timeout=0.5)
            except ScannerError as exc:
                self.health_state[f"scanner {uri}"] = f"error: {exc}"
                self._stop.wait(1.0)
                continue
            if scan is not None:
                self.on_scan(scan)

    def on_scan(self, scan: Scan) -> None:
        """A scanned code: arm the chip read when this device has a reader, else record it."""
        if self.config.readers:
            try:
                qr = parse_qr(scan.payload)
            except CccdError:
                qr = None
            if qr is not None and qr.format is not QrFormat.PERSONAL_QR and qr.can:
                with self._lock:
                    self._armed = _Armed(qr, scan.payload, time.monotonic())
                self.kiosk.show(VerdictView(accepted=True, title="Mời chạm thẻ",
                                            message="Tap the card on the reader",
                                            masked_id=mask_id(qr.id_text), warning=True))
                return
        self.present(QrPresentation(scan.payload))

    def _armed_loop(self) -> None:
        """A QR that was not followed by a tap is recorded on its own."""
        while not self._stop.wait(0.2):
            with self._lock:
                armed = self._armed
                if armed is None or time.monotonic() - armed.at < self.tap_window_s:
                    continue
                self._armed = None
            self.present(QrPresentation(armed.payload))


def run(config: Config, *, stop: threading.Event) -> int:
    """Run until ``stop`` is set."""
    agent = Agent(config)
    agent.start()
    try:
        stop.wait()
    finally:
        agent.stop()
    return 0
