"""The agent on a gate or desk: readers and scanners in, verdicts on the kiosk, events out.

One :class:`Agent` per device (docs/design.md §2.1), built from the configuration by
:func:`create_agent` (tests pass fakes for the outputs, drivers, clock and insurance). Each reader
and scanner has a thread; what they see is fed to the pure presentation state machine
(:mod:`edge_agent.presentation`), whose actions the agent carries out: a QR decided alone, a chip
read with the QR's or the kiosk pad's keys, a prompt on the kiosk. Every presentation goes
through the site's flow, which commits its events to the outbox (SQLite, fsync) before the
verdict is shown and the outputs are driven (:mod:`edge_agent.signals`); the uplink drains the
outbox to the broker and signs every status. The kiosk and the metrics listen on loopback.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from drivers.card_reader import CardEvent, CardReader, NoCardError, ReaderError
from drivers.code_scanner import CodeScanner, Scan, ScannerError
from drivers.outputs import (
    OutputError,
    Outputs,
    SimulatedOutputs,
    check_verdict,
    open_outputs,
)
from drivers.uri import open_reader, open_scanner
from edge_agent import __version__
from edge_agent.cccd import mask_id
from edge_agent.config import (
    Config,
    Direction,
    LaneConfig,
    OutputsBackend,
    SiteKind,
    load_keys,
)
from edge_agent.desk import parse_department, parse_manual, parse_stay
from edge_agent.events.local_subject import SubjectKeyring
from edge_agent.events.model import EventDraft, EventKind
from edge_agent.flows import (
    AccommodationFlow,
    ChipPresentation,
    FlowBase,
    FlowError,
    HeritageGateFlow,
    HospitalFlow,
    QrPresentation,
    StayFlow,
    StayReason,
    Verdict,
    VneidDecoder,
    make_flow,
)
from edge_agent.flows.base import display_name
from edge_agent.flows.identify import Person, Unidentified, from_chip, from_qr
from edge_agent.flows.model import Outcome
from edge_agent.health import Health, HealthState, wire_health
from edge_agent.icao import ec
from edge_agent.identity import make_verifier
from edge_agent.insurance import InsuranceAdapter, InsuranceStatus, make_adapter
from edge_agent.insurance_checks import RETRY_DELAYS_S, InsuranceChecks, Recheck
from edge_agent.junk import RejectedBudget, is_junk
from edge_agent.kiosk import KioskState, VerdictView, create_app
from edge_agent.kiosk.app import ALLOWED_HOSTS, QuietRequestHandler, loopback_hosts
from edge_agent.metrics import AgentMetrics
from edge_agent.outbox import Outbox
from edge_agent.outbox.builder import payload_builder
from edge_agent.presentation import (
    Action,
    DecideQr,
    Lane,
    Presentations,
    PresentationSettings,
    Prompt,
    PromptKind,
    ReadChip,
)
from edge_agent.private_files import replace_private_file
from edge_agent.reading import KeyMaterial, NoKeyMaterialError, ReadPolicy, read_chip
from edge_agent.reading.policy import CloneCheck
from edge_agent.runtime_config import RuntimeConfigError, accept, parse_config_message
from edge_agent.runtime_config import apply as apply_runtime
from edge_agent.signals import plan_for
from edge_agent.stay_register import StayRegister
from edge_agent.trust_folder import load_trust_folder
from edge_agent.uplink import DeviceHealth, Uplink
from wire.signing import sign_event

log = logging.getLogger(__name__)

SITE_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
HOLD_S = 300.0
"""How long the person last presented at a desk stays selected for a desk action."""
TICK_S = 0.05
"""How often the tap windows are checked (the verdict of a QR alone is at most this late)."""

ReaderOpener = Callable[[str], CardReader]
ScannerOpener = Callable[[str], CodeScanner]

PROMPTS: dict[PromptKind, tuple[str, str, str | None]] = {
    PromptKind.TAP: ("Mời chạm thẻ", "Tap the card on the reader", None),
    PromptKind.CAN: ("Nhập 6 số cuối CCCD", "Type the last 6 digits of the ID number, "
                     "or scan the card's QR code", "no-key-material"),
    PromptKind.SCAN_FIRST: ("Quét mã QR trên thẻ trước",
                            "Scan the card's QR code, then tap the card", "no-key-material"),
    PromptKind.BAD_CAN: ("Cần đúng 6 chữ số", "The CAN is 6 digits", "bad-can"),
}


def site_clock() -> datetime:
    """Now in the site's time zone (Vietnam, UTC+07:00, no daylight saving)."""
    return datetime.now(SITE_TZ)


def _outputs_from(config: Config) -> Outputs:
    """The ``[outputs]`` table: gpiozero pins, or recorded calls (``none`` / ``simulated``)."""
    cfg = config.outputs
    if cfg.backend is not OutputsBackend.GPIOZERO:
        return SimulatedOutputs(name=cfg.backend.value)
    try:
        return open_outputs({"backend": "gpiozero", "pins": cfg.pins()})
    except OutputError as exc:
        log.error("outputs: %s; the turnstile relay, buzzer and LEDs are NOT driven", exc)
        return SimulatedOutputs(name="unavailable")


def create_agent(config: Config, *, outputs: Outputs | None = None,
                 reader_opener: ReaderOpener = open_reader,
                 scanner_opener: ScannerOpener = open_scanner,
                 clock: Callable[[], datetime] = site_clock,
                 insurance: InsuranceAdapter | None = None,
                 vneid: VneidDecoder | None = None,
                 tap_window_s: float | None = None,
                 insurance_retry_s: Sequence[float] = RETRY_DELAYS_S) -> Agent:
    """The agent ``config`` describes; every keyword replaces one part (tests pass fakes).

    Outputs come from ``[outputs]``, the insurance adapter from ``[insurance]`` (hospital
    reception only), the tap window from ``chip.tap_window_s``.
    """
    if insurance is None and config.device.site_kind is SiteKind.HOSPITAL_RECEPTION:
        insurance = make_adapter(config.insurance.adapter.value, config.insurance.url,
                                 config.insurance.timeout_s)
    return Agent(config, outputs=outputs if outputs is not None else _outputs_from(config),
                 reader_opener=reader_opener, scanner_opener=scanner_opener, clock=clock,
                 insurance=insurance, vneid=vneid, tap_window_s=tap_window_s,
                 insurance_retry_s=insurance_retry_s)


PRUNE_KEYS_S = 3600.0
"""How often the running agent deletes retired local subject keys."""


class Agent:
    """Everything one device runs. ``start()`` then ``stop()``; safe to stop twice.

    Prefer :func:`create_agent`; ``Agent(config)`` builds the same agent except that the outputs
    default to simulated ones.
    """

    def __init__(self, config: Config, *, tap_window_s: float | None = None,
                 outputs: Outputs | None = None,
                 clock: Callable[[], datetime] = site_clock,
                 reader_opener: ReaderOpener = open_reader,
                 scanner_opener: ScannerOpener = open_scanner,
                 insurance: InsuranceAdapter | None = None,
                 vneid: VneidDecoder | None = None,
                 insurance_retry_s: Sequence[float] = RETRY_DELAYS_S) -> None:
        self.base_config = config
        """The device's own (TOML) configuration; the centre's runtime settings are laid over
        it (docs/protocol.md §8)."""
        self.runtime_path = config.outbox.path.with_name(config.outbox.path.name
                                                         + ".runtime.json")
        """The last runtime configuration applied (0600, beside the outbox)."""
        self.runtime_revision = 0
        """The revision of the runtime configuration held (0: none)."""
        config = self._restore_runtime(config)
        self.config = config
        self.keys = load_keys(config.keys)
        if self.keys.subject_key is not None:
            log.warning("keys.subject_key (the province subject key) is configured but no longer "
                        "used: remove it and delete the file from this device")
        self.clock = clock
        self._open_reader = reader_opener
        self._open_scanner = scanner_opener
        self.metrics = AgentMetrics()
        self.outputs = outputs or open_outputs()
        self.outbox = Outbox(config.outbox.path, max_rows=config.outbox.max_rows,
                             max_bytes=config.outbox.max_bytes,
                             retention=timedelta(days=config.outbox.retention_days))
        self.rejected_budget = RejectedBudget(config.outbox.rejected_per_minute,
                                              config.outbox.max_rejected)
        self.rejected_dropped = 0
        """Junk-scan rejections shown but not stored (rate or bound reached)."""
        if insurance is None and config.device.site_kind is SiteKind.HOSPITAL_RECEPTION:
            insurance = make_adapter(config.insurance.adapter.value, config.insurance.url,
                                     config.insurance.timeout_s)
        if vneid is None:
            vneid = make_verifier(config.vneid.adapter.value, config.vneid.url,
                                  terminal_id=config.device.id, timeout_s=config.vneid.timeout_s,
                                  retries=config.vneid.retries, deadline_s=config.vneid.deadline_s,
                                  breaker_failures=config.vneid.breaker_failures,
                                  breaker_reset_s=config.vneid.breaker_reset_s)
        self._vneid = vneid
        self.insurance: InsuranceChecks | None = None
        """Look-ups off the readers' path: bounded wait, background re-checks."""
        if insurance is not None:
            self.insurance = InsuranceChecks(insurance, wait_s=config.insurance.wait_s,
                                             retry_delays_s=insurance_retry_s,
                                             on_answer=self._insurance_answer)
        self._committed: list[tuple[EventDraft, str]] = []
        """The drafts of the last commit and their event_ids (for a visit's re-check)."""
        self.training = config.device.training
        """Training mode (``[device] training``, or the desk's PIN-protected toggle)."""
        self._department: str | None = None
        """The department the desk set for the next visits (``details.department``)."""
        self._for_stay: tuple[str, float] | None = None
        """The desk's "next card is for" choice (admit / discharge) and when it was made."""
        self.subject_keys = SubjectKeyring(
            config.outbox.path.with_name(config.outbox.path.name + ".subject-keys"),
            clock=clock)
        """The device-local subject keys (docs/privacy.md §3): never sent anywhere."""
        self.flow: FlowBase = make_flow(config, self.subject_keys, clock=clock,
                                        commit=self._commit, insurance=self.insurance,
                                        vneid=vneid, recheck=self._recheck)
        self.stays: StayRegister | None = None
        if isinstance(self.flow, StayFlow):
            self.stays = StayRegister(config.outbox.path.with_name(
                config.outbox.path.name + ".stays"))
            self.stays.reconcile(self.outbox)
            self.flow.restore_stays(self.stays.open_stays())
        if isinstance(self.flow, HospitalFlow):
            self.flow.restore_visits(self._visits_today())
        self._prune_subject_keys()
        self.trust = (load_trust_folder(config.chip.trust_dir)
                      if config.chip.trust_dir else None)
        self.policy = ReadPolicy(read_dg2=config.chip.dg2,
                                 clone_check=CloneCheck(config.chip.clone_check.value),
                                 require_csca_chain=config.chip.require_csca_chain,
                                 max_chunk=config.chip.max_chunk)
        lanes = config.lanes or (_one_lane(config),)
        self.presentations = Presentations(
            [Lane(lane.name, lane.readers, lane.scanners, lane.direction) for lane in lanes],
            PresentationSettings(tap_window_s=(tap_window_s if tap_window_s is not None
                                               else config.chip.tap_window_s),
                                 chip_after_qr=config.chip.after_qr,
                                 can_pad=config.chip.can_pad))
        self.both_way = config.device.direction is Direction.BOTH
        self.chosen_direction = Direction.ENTRY
        """At a both-way gate: the direction the gatekeeper chose on the kiosk."""
        self.kiosk = KioskState(device_name=config.device.name or config.device.id,
                                site_name=config.device.site_id,
                                direction=self._direction_label(),
                                choose_direction=self.both_way,
                                site_kind=config.device.site_kind.value,
                                language=config.device.language.value,
                                training=config.device.training)
        tls = ((config.broker.ca, config.broker.cert, config.broker.key)
               if config.broker.tls else None)
        signing_key = self.keys.signing_key
        self.uplink = Uplink(config.device.id, config.device.site_id, config.broker.url, tls,
                             self.outbox, heartbeat_s=config.broker.heartbeat_s,
                             status_provider=self._health, on_occupancy=self._on_occupancy,
                             on_config=self._on_config, on_delivered=self._on_delivered,
                             status_signer=lambda message: sign_event(message, signing_key),
                             version=__version__,
                             receipt_timeout_s=config.broker.receipt_timeout_s,
                             on_settled=lambda _n: self._refresh_screen())
        self.readers: dict[str, CardReader] = {}
        self._removed: dict[str, threading.Event] = {}
        self._reads: dict[str, queue.Queue[ReadChip]] = {
            uri: queue.Queue() for uri in config.readers}
        self.scanners: dict[str, CodeScanner] = {}
        self.health_state: dict[str, Health] = {}
        self._held: tuple[ChipPresentation | QrPresentation, float] | None = None
        self._lock = threading.RLock()
        """Serialises the flow (one presentation at a time)."""
        self._pm_lock = threading.Lock()
        """Serialises the presentation state machine; held only while it decides."""
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
        self._spawn("tap window", self._tick_loop)
        if self.insurance is not None:
            self.insurance.start()
        self.uplink.start()
        app = create_app(self.kiosk, desk=self.desk, desk_actions=self.flow.ACTIONS,
                         can=self.enter_can, choose_direction=self.choose_direction,
                         desk_pin=self.config.kiosk.desk_pin, selected=self.selected,
                         stays=self.stay_list,
                         training=self.set_training if self.config.kiosk.desk_pin else None)
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
        if self.insurance is not None:
            self.insurance.stop()
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
        except Exception as exc:
            log.exception("%s stopped with an error", name)
            self.health_state[name] = Health.error(f"stopped: {type(exc).__name__}: {exc}")

    # -- outbox and uplink ------------------------------------------------------------------------

    def _commit(self, drafts: Sequence[EventDraft], training: bool | None = None) -> None:
        if is_junk(drafts) and not self.rejected_budget.admit(
                time.monotonic(), self.outbox.undelivered_of_kind("rejected")):
            self.rejected_dropped += len(drafts)
            self.metrics.rejected_dropped.inc(len(drafts))
            return  # shown and counted, not stored: junk must not fill the outbox
        device = self.config.device
        items = [(draft, payload_builder(draft, device_id=device.id, site_id=device.site_id,
                                         signing_key=self.keys.signing_key,
                                         centre_key=self.keys.centre_public_key,
                                         training=(self.training if training is None
                                                   else training)))
                 for draft in drafts]
        entries = self.outbox.commit_all(items)
        self._committed = [(draft, str(entry.event_id))
                           for draft, entry in zip(drafts, entries, strict=True)]
        if self.stays is not None:
            for draft, entry in zip(drafts, entries, strict=True):
                if entry.is_stay:
                    self.stays.apply(entry.seq, json.loads(entry.payload), draft.subject)
                elif draft.kind is EventKind.VISIT and draft.subject is not None:
                    self.stays.add_visit(entry.seq, draft.subject,
                                         entry.committed_at.astimezone(
                                             self.clock().tzinfo).date())
        for draft in drafts:
            self.metrics.events_committed.labels(kind=draft.kind.value).inc()
        self.uplink.wake()

    def _prune_subject_keys(self) -> None:
        """Delete local subject keys no longer needed (edge_agent/events/local_subject.py)."""
        in_use = self.stays.subjects_in_use() if self.stays is not None else []
        dropped = self.subject_keys.prune(in_use)
        if dropped:
            log.info("local subject keys retired and deleted: generations %s", dropped)

    def _visits_today(self, limit: int = 20_000) -> list[str]:
        """The local subjects of today's visits (the stay register), and the clear subjects of
        older agents' visits still in the outbox (one visit per person and day survives a
        restart, docs/presentations.md)."""
        now = self.clock()
        today = now.date()
        subjects: list[str] = self.stays.visits(today) if self.stays is not None else []
        seq = self.outbox.last_seq()
        while seq > 0 and limit > 0:
            entry = self.outbox.get(seq)
            seq, limit = seq - 1, limit - 1
            if entry is None:
                continue
            if entry.committed_at.astimezone(now.tzinfo).date() < today:
                break
            if entry.kind == EventKind.VISIT.value:
                subject = json.loads(entry.payload).get("subject")
                if isinstance(subject, str):
                    subjects.append(subject)
        return subjects

    # -- insurance re-checks (edge_agent/insurance_checks.py) --------------------------------

    def _recheck(self, draft: EventDraft, person: Person) -> None:
        """A visit just committed with ``unknown``: look it up again later (flow's thread,
        under the agent's lock, right after the commit)."""
        event_id = next((eid for d, eid in self._committed if d is draft), None)
        if self.insurance is None or event_id is None:
            return
        self.insurance.schedule(Recheck(event_id, person.id_number, person.full_name,
                                        person.date_of_birth, context=(draft, self.training)))

    def _insurance_answer(self, recheck: Recheck, status: InsuranceStatus) -> None:
        """The re-check's answer: a ``visit.insurance`` follow-up (docs/protocol.md §4.12)."""
        context = recheck.context
        assert isinstance(context, tuple) and len(context) == 2
        visit, training = context[0], context[1]
        assert isinstance(visit, EventDraft) and isinstance(training, bool)
        follow_up = EventDraft(
            kind=EventKind.VISIT_INSURANCE, method=visit.method, assurance=visit.assurance,
            occurred_at=self.clock(), subject=visit.subject, subject_ref=visit.subject_ref,
            count=1,
            demographics=visit.demographics, reason=None,
            details={"insurance": status.state.value, "visit_event_id": recheck.event_id})
        with self._lock:  # marked like the visit it answers, whatever the mode is now
            self._commit((follow_up,), training)
        log.info("insurance of visit %s: %s (follow-up committed)", recheck.event_id,
                 status.state.value)

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

    # -- runtime configuration from the centre (docs/protocol.md §8) ----------------------------

    def _restore_runtime(self, base: Config) -> Config:
        """``base`` with the runtime configuration persisted by an earlier run laid over it."""
        try:
            raw = self.runtime_path.read_bytes()
        except FileNotFoundError:
            return base
        except OSError as exc:
            log.warning("runtime configuration %s not read (%s): the local configuration "
                        "applies until the centre's arrives", self.runtime_path, exc)
            return base
        try:
            runtime = parse_config_message(_json_object(raw), base.device.id)
            config = apply_runtime(base, runtime.settings)
        except RuntimeConfigError as exc:
            log.warning("runtime configuration %s ignored: %s", self.runtime_path, exc.reason)
            return base
        self.runtime_revision = runtime.revision
        log.info("runtime configuration revision %d restored: %s", runtime.revision,
                 runtime.settings.as_dict())
        return config

    def _on_config(self, message: dict[str, Any]) -> None:
        """The centre's retained configuration: applied live if it is valid, for this device
        and newer than the revision held; persisted first so a restart keeps it."""
        with self._lock:
            try:
                runtime = parse_config_message(message, self.config.device.id)
                accept(runtime, self.runtime_revision)
                config = apply_runtime(self.base_config, runtime.settings)
            except RuntimeConfigError as exc:
                log.warning("configuration message ignored: %s", exc.reason)
                return
            try:
                replace_private_file(self.runtime_path, json.dumps(
                    runtime.message, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
            except OSError as exc:
                log.error("runtime configuration revision %d not saved (%s): applied until "
                          "the next restart only", runtime.revision, exc)
            self.runtime_revision = runtime.revision
            self._apply_config(config)
        log.info("runtime configuration revision %d applied: %s", runtime.revision,
                 runtime.settings.as_dict())

    def _apply_config(self, config: Config) -> None:
        """Carry a new configuration (only the keys of docs/protocol.md §8 differ) into the
        flow, the kiosk and the uplink (under the flow's lock)."""
        self.config = config
        device = config.device
        self.flow.settings = replace(self.flow.settings, direction=device.direction,
                                     language=device.language,
                                     name_display=device.name_display,
                                     capacity_policy=config.capacity.policy,
                                     dedupe_window_s=config.capacity.dedupe_window_s)
        both_way = device.direction is Direction.BOTH
        if both_way and not self.both_way:
            self.chosen_direction = Direction.ENTRY  # as at start: until the gatekeeper chooses
        self.both_way = both_way
        self.kiosk.update(language=device.language.value, direction=self._direction_label(),
                          choose_direction=self.both_way)
        self.uplink.set_heartbeat_s(config.broker.heartbeat_s)
        self._refresh_screen()

    def _health(self) -> DeviceHealth:
        starting = Health(HealthState.STARTING)
        readers = {uri: self.health_state.get(f"reader {uri}", starting)
                   for uri in self.config.readers}
        scanners = {uri: self.health_state.get(f"scanner {uri}", starting)
                    for uri in self.config.scanners}
        return DeviceHealth(readers=wire_health(readers), scanners=wire_health(scanners))

    def _set_health(self, name: str, health: Health) -> None:
        if self.health_state.get(name) != health:
            (log.info if health.state is HealthState.OK else log.warning)(
                "%s: %s %s", name, health.state.value, health.detail)
        self.health_state[name] = health
        if name.startswith("reader "):
            self.metrics.reader_up.labels(device=name[7:]).set(
                1 if health.state is HealthState.OK else 0)
        elif name.startswith("scanner "):
            self.metrics.reader_up.labels(device=name[8:]).set(
                1 if health.state is HealthState.OK else 0)

    # -- direction --------------------------------------------------------------------------------

    def _direction_label(self) -> str:
        device = self.config.device.direction
        if device is None:
            return ""
        return (self.chosen_direction if device is Direction.BOTH else device).value

    def direction_for(self, lane: str | None) -> Direction | None:
        """The lane's fixed direction, else the device's, else (both-way) the kiosk's choice."""
        device = self.config.device.direction
        if device is None:
            return None
        fixed = self.presentations.lane(lane).direction if lane is not None else None
        direction = fixed or device
        return self.chosen_direction if direction is Direction.BOTH else direction

    def choose_direction(self, value: str) -> dict[str, Any]:
        """The gatekeeper's choice on the kiosk (VÀO / RA) at a both-way gate."""
        if not self.both_way:
            raise ValueError("Cổng này chỉ một chiều / this gate serves one direction")
        try:
            direction = Direction(value)
        except ValueError:
            raise ValueError("direction must be entry or exit") from None
        if direction is Direction.BOTH:
            raise ValueError("direction must be entry or exit")
        self.chosen_direction = direction
        self.kiosk.update(direction=direction.value)
        return {"direction": direction.value}

    # -- presentations ----------------------------------------------------------------------------

    def _show(self, verdict: Verdict, face: tuple[bytes, str] | None = None) -> None:
        """The verdict goes on screen after the flow committed (flows commit first); with the
        chip's face image when DG2 was read and someone was identified."""
        outcome = verdict.outcome
        warning = bool(verdict.warnings) or outcome is Outcome.ALREADY_COUNTED
        photo = self.kiosk.keep_photo(*(face if face and verdict.masked_id else (None, None)))
        self.kiosk.show(VerdictView(accepted=verdict.accepted, title=verdict.title,
                                    message=verdict.message, masked_id=verdict.masked_id,
                                    name=verdict.name, reason=verdict.reason, warning=warning,
                                    assurance=_assurance(verdict), photo=photo,
                                    recorded=verdict.accepted and bool(verdict.drafts)))
        plan = plan_for(verdict, gate=isinstance(self.flow, HeritageGateFlow))
        try:
            self.outputs.signal(check_verdict(plan.signal))
            if plan.relay:
                self.outputs.pulse_relay(self.config.outputs.relay_pulse_s)
        except OutputError as exc:
            log.error("outputs: %s", exc)
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
        stays = len(self.flow.open_stays) if isinstance(self.flow, StayFlow) else 0
        self.kiosk.update(entries_today=counts.entries, exits_today=counts.exits,
                          visits_today=counts.visits, open_stays=stays,
                          occupancy=counts.occupancy, capacity=counts.capacity,
                          occupancy_estimated=counts.occupancy_estimated,
                          online=stats.connected,
                          backlog=unreceipted if self.uplink.receipts_enabled else depth)

    def present(self, presentation: ChipPresentation | QrPresentation,
                lane: str | None = None) -> Verdict | None:
        """Run one presentation through the site's flow and show the verdict.

        At an accommodation desk a presentation only selects the guest for the desk's
        check-in or check-out (no event, so None); at a hospital desk it records the visit and
        also selects the patient for admission or discharge. A flow error is logged and shown;
        it never stops the reader or scanner thread that presented.
        """
        self._prefetch_insurance(presentation)
        try:
            with self._lock:
                self._held = (presentation, time.monotonic())
                flow = self.flow
                if isinstance(flow, HeritageGateFlow):
                    verdict = flow.present(presentation, direction=self.direction_for(lane))
                elif isinstance(flow, HospitalFlow):
                    verdict = flow.visit(presentation, for_stay=self._for_stay_chosen(),
                                         department=self._department)
                else:
                    found = flow.identify(presentation)
                    if isinstance(found, Unidentified):  # a failed read: say so at once
                        self._held = None
                        self.kiosk.show(VerdictView(
                            accepted=False, title="Không đọc được thẻ / Card not read",
                            message="Chạm lại thẻ hoặc quét mã QR / Tap again or scan the QR",
                            reason=found.reason))
                        self.outputs.signal("reject")
                        return None
                    self.kiosk.show(VerdictView(
                        accepted=True, title="Đã chọn khách / Guest selected",
                        message="Chọn nhận phòng hoặc trả phòng / Choose check-in or "
                                "check-out",
                        masked_id=mask_id(found.id_number),
                        name=display_name(found.full_name, self.config.device.name_display),
                        warning=True))
                    return None
        except FlowError as exc:
            log.error("presentation not handled: %s", exc)
            self.kiosk.show(VerdictView(accepted=False, title="Không xử lý được",
                                        message=f"Báo nhân viên / Call staff: {exc}",
                                        reason="flow-error"))
            self.outputs.signal("reject")
            return None
        method = "chip" if isinstance(presentation, ChipPresentation) else "qr"
        self.metrics.presentations.labels(method=method, outcome=verdict.outcome.value).inc()
        face = None
        if isinstance(presentation, ChipPresentation) and presentation.result.face_image:
            face = (presentation.result.face_image, presentation.result.face_mime or "")
        self._show(verdict, face)
        return verdict

    def _prefetch_insurance(self, presentation: ChipPresentation | QrPresentation) -> None:
        """Hospital desk: the look-up started, and waited for, before the agent's lock (so a
        slow gateway never holds another lane). Only for a chip or a card QR, identified here
        without the network; a VNeID token is looked up under the lock as before, within
        ``wait_s``. Skipped when the desk chose a stay action (no visit, no look-up)."""
        if self.insurance is None or not isinstance(self.flow, HospitalFlow) or \
                self._for_stay_chosen():
            return
        try:
            today = self.clock().date()
            person = (from_chip(presentation, today)
                      if isinstance(presentation, ChipPresentation)
                      else from_qr(presentation, None, today, self.config.qr.expiry_policy))
        except Exception:  # the flow identifies again and reports the problem
            log.exception("insurance prefetch: identification failed")
            return
        if isinstance(person, Person) and self.flow.would_look_up(person):
            self.insurance.prefetch(person.id_number, person.full_name, person.date_of_birth)

    def _for_stay_chosen(self) -> bool:
        """The receptionist chose "the next card is for an admission / a discharge" within
        the hold window (docs/design.md §2.1: such a card records no visit)."""
        chosen = self._for_stay
        return chosen is not None and time.monotonic() - chosen[1] <= HOLD_S

    def selected(self) -> dict[str, Any] | None:
        """Who the desk's next action is for: masked ID and name as the kiosk may show them."""
        with self._lock:
            held = self._held
        if held is None or time.monotonic() - held[1] > HOLD_S:
            return None
        presentation, at = held
        with self._lock:
            person = self.flow.identify(presentation)
        if not isinstance(person, Person):
            return None
        return {"masked_id": mask_id(person.id_number),
                "name": display_name(person.full_name, self.config.device.name_display),
                "age_s": round(time.monotonic() - at, 1)}

    def desk(self, action: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A desk action from the kiosk's desk page; ValueError for the receptionist."""
        if action not in self.flow.ACTIONS:
            raise ValueError(f"'{action}' is not done at this desk")
        if action == "next":
            return self._choose_next(str(fields.get("for", "")), parse_department(fields))
        try:
            verdict = self._desk(action, fields)
        except FlowError as exc:
            raise ValueError(str(exc)) from None
        self._show(verdict)
        return {"accepted": verdict.accepted, "outcome": verdict.outcome.value,
                "title": verdict.title, "message": verdict.message,
                "masked_id": verdict.masked_id}

    def _choose_next(self, value: str, department: str | None) -> dict[str, Any]:
        """Hospital desk: what the next card shown is for (``visit`` | ``admit`` |
        ``discharge``; for a stay action it selects the patient and records no visit), and
        the department of the next visits."""
        if value not in ("visit", "admit", "discharge"):
            raise ValueError("for must be visit, admit or discharge")
        self._department = department
        self._for_stay = None if value == "visit" else (value, time.monotonic())
        title = {"visit": "Thẻ tiếp theo: khám bệnh / Next card: visit",
                 "admit": "Thẻ tiếp theo: nhập viện / Next card: admission",
                 "discharge": "Thẻ tiếp theo: ra viện / Next card: discharge"}[value]
        return {"accepted": True, "outcome": "next", "title": title, "message": "",
                "masked_id": None, "next": value}

    def _desk(self, action: str, fields: dict[str, Any]) -> Verdict:
        flow = self.flow
        if action == "manual":
            manual = parse_manual(fields)
            with self._lock:
                if isinstance(flow, HeritageGateFlow):
                    return flow.present(manual, direction=self.direction_for(None))
                if isinstance(flow, HospitalFlow):
                    return flow.visit(manual)
            raise ValueError("no manual count at this desk")
        form = parse_stay(fields) if action in ("admit", "check_in") else None
        with self._lock:
            if action in ("discharge", "check_out") and fields.get("stay_id"):
                # Picked from the desk's list of open stays: no card needed.
                if isinstance(flow, HospitalFlow):
                    self._for_stay = None
                    return flow.discharge_stay(str(fields["stay_id"]))
                if isinstance(flow, AccommodationFlow):
                    return flow.check_out_stay(str(fields["stay_id"]))
            held = self._held
            if held is None or time.monotonic() - held[1] > HOLD_S:
                raise ValueError("Chạm thẻ hoặc quét mã QR trước / Tap or scan the card first")
            person = held[0]
            if form is not None:
                if action == "admit" and isinstance(flow, HospitalFlow):
                    self._for_stay = None
                    return flow.admit(person, ward=form.room,
                                      expected_departure=form.expected_departure,
                                      reason_code=form.reason_code or StayReason.TREATMENT)
                if isinstance(flow, AccommodationFlow):
                    return flow.check_in(person, room=form.room,
                                         expected_departure=form.expected_departure,
                                         reason_code=form.reason_code or StayReason.TOURISM)
            if action == "discharge" and isinstance(flow, HospitalFlow):
                self._for_stay = None
                return flow.discharge(person)
            if action == "check_out" and isinstance(flow, AccommodationFlow):
                return flow.check_out(person)
        raise ValueError(f"'{action}' is not done at this desk")

    def set_training(self, on: bool) -> dict[str, Any]:
        """The desk's training toggle (only with a desk PIN): the events committed from now on
        carry ``"training": true`` (docs/protocol.md §4.13) and the banner shows."""
        with self._lock:
            self.training = on
        self.kiosk.update(training=on)
        log.warning("training mode %s from the desk", "on" if on else "off")
        return {"training": on}

    def stay_list(self) -> list[dict[str, Any]]:
        """The desk's open stays (masked ID and name only when known)."""
        if not isinstance(self.flow, StayFlow):
            return []
        with self._lock:
            return self.flow.stay_list()

    # -- the presentation state machine ------------------------------------------------------

    def _feed(self, event: Callable[[float], list[Action]]) -> None:
        """Feed one event to the state machine; chip reads go to their reader's thread (under
        the machine's lock, so a read is never queued for a card that has gone), the rest is
        carried out here, in order."""
        with self._pm_lock:
            actions = event(time.monotonic())
            for action in actions:
                if isinstance(action, ReadChip):
                    self._reads[action.reader].put(action)
        for action in actions:
            if isinstance(action, ReadChip):
                if self.kiosk.snapshot.can_lane == action.lane:
                    self.kiosk.update(can_lane=None)  # the CAN was taken: no pad during the read
            elif isinstance(action, DecideQr):
                self.present(QrPresentation(action.payload), action.lane)
            elif isinstance(action, Prompt):
                self._prompt(action)

    def _prompt(self, prompt: Prompt) -> None:
        if prompt.kind is PromptKind.IDLE:
            self.kiosk.update(verdict=None, can_lane=None)
            return
        title, message, reason = PROMPTS[prompt.kind]
        self.kiosk.update(verdict=VerdictView(accepted=prompt.kind is not PromptKind.BAD_CAN,
                                              title=title, message=message,
                                              masked_id=prompt.masked_id, reason=reason,
                                              warning=True),
                          can_lane=(prompt.lane if prompt.kind in (PromptKind.CAN,
                                                                    PromptKind.BAD_CAN)
                                    else None))
        if prompt.kind is not PromptKind.TAP:
            self.outputs.signal("warn")

    def on_scan(self, scan: Scan, scanner: str | None = None) -> None:
        """A scanned code from ``scanner`` (default: the first scanner of the first lane)."""
        uri = scanner or next((s for lane in self.presentations.lanes for s in lane.scanners),
                              None)
        if uri is None:
            self.present(QrPresentation(scan.payload))
            return
        self._feed(lambda now: self.presentations.scanned(uri, scan.payload, now))

    def enter_can(self, lane: str, can: str) -> dict[str, Any]:
        """The kiosk's CAN pad (tap first): six digits for ``lane``."""
        if lane not in {lane.name for lane in self.presentations.lanes}:
            raise ValueError("no such lane")
        self._feed(lambda now: self.presentations.can_entered(lane, can, now))
        return {"lane": lane}

    def _tick_loop(self) -> None:
        next_prune = time.monotonic() + PRUNE_KEYS_S
        while not self._stop.wait(TICK_S):
            self._feed(self.presentations.tick)
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_KEYS_S
                try:
                    self._prune_subject_keys()
                except Exception:  # a full disk must not end the tick loop
                    log.exception("pruning the local subject keys failed")

    def _reader_loop(self, uri: str) -> None:
        name = f"reader {uri}"
        while not self._stop.is_set():
            try:
                self._reader_once(uri)
            except ReaderError as exc:
                self._set_health(name, Health.error(exc))
                self._stop.wait(1.0)
            except Exception as exc:  # a driver bug must not end the reader for good
                health = Health.error(f"{type(exc).__name__}: {exc}")
                if self.health_state.get(name) != health:
                    log.exception("%s", name)
                self._set_health(name, health)
                self._stop.wait(1.0)

    def _reader_once(self, uri: str) -> None:
        name = f"reader {uri}"
        try:
            reader = self.readers.get(uri) or self._open_reader(uri)
        except Exception as exc:  # ReaderError, or a driver that cannot even load (bad URI)
            self._set_health(name, Health.absent(exc))
            self._stop.wait(2.0)
            return
        if uri not in self.readers:
            self.readers[uri] = reader
            removed = self._removed[uri] = threading.Event()

            def on_event(event: CardEvent, _name: str, flag: threading.Event = removed) -> None:
                if event in (CardEvent.REMOVED, CardEvent.READER_REMOVED):
                    flag.set()
                    # At once, not at the reader thread's next poll: a QR scanned right after
                    # must not be sent to a card that has gone.
                    try:
                        self._card_gone(uri)
                    except Exception:
                        log.exception("card removal on %s", uri)

            reader.add_listener(on_event)
        self._set_health(name, Health.ok())
        try:
            reader.connect(timeout=0.5)
        except NoCardError:
            return
        removed = self._removed[uri]
        removed.clear()
        requests = self._reads[uri]
        self._feed(lambda now: self.presentations.card_present(uri, now))
        try:
            while not self._stop.is_set() and not removed.is_set():
                try:
                    request = requests.get(timeout=0.05)
                except queue.Empty:
                    continue
                if removed.is_set():
                    requests.put(request)  # decided without the chip by _card_gone below
                    break
                self._read(reader, request)
                reader.disconnect()
                self._feed(lambda now: self.presentations.read_finished(uri, now))
                break
            # One read per presentation: wait until the card leaves the field.
            while not self._stop.is_set() and not removed.wait(0.1):
                pass
        finally:
            self._card_gone(uri)

    def _card_gone(self, uri: str) -> None:
        """The card left: requests for it are decided without the chip (never dropped)."""
        with self._pm_lock:
            actions = self.presentations.card_removed(uri, time.monotonic())
            stale: list[ReadChip] = []
            while True:
                try:
                    stale.append(self._reads[uri].get_nowait())
                except queue.Empty:
                    break
            for request in stale:
                actions += self.presentations.read_finished(uri, time.monotonic())
                if request.payload is not None:
                    actions.insert(0, DecideQr(request.lane, request.payload))
        for action in actions:
            if isinstance(action, ReadChip):
                self._reads[action.reader].put(action)
            elif isinstance(action, DecideQr):
                self.present(QrPresentation(action.payload), action.lane)
            else:
                self._prompt(action)

    def _read(self, reader: CardReader, request: ReadChip) -> None:
        try:
            keys = (KeyMaterial.from_can(request.can) if request.can
                    else KeyMaterial.from_qr(request.qr) if request.qr else None)
        except (NoKeyMaterialError, ValueError):
            keys = None
        if keys is None:
            if request.payload is not None:
                self.present(QrPresentation(request.payload), request.lane)
            return
        started = time.perf_counter()
        result = read_chip(reader, keys, self.policy, self.trust, connect=False)
        self.metrics.read_seconds.observe(time.perf_counter() - started)
        self.present(ChipPresentation(result, qr=request.qr), request.lane)

    def _scanner_loop(self, uri: str) -> None:
        name = f"scanner {uri}"
        while not self._stop.is_set():
            try:
                scanner = self.scanners.get(uri) or self._open_scanner(uri)
            except Exception as exc:  # ScannerError, OSError, or a bad URI
                self._set_health(name, Health.absent(exc))
                self._stop.wait(2.0)
                continue
            self.scanners[uri] = scanner
            self._set_health(name, Health.ok())
            try:
                scan = scanner.read(timeout=0.5)
            except ScannerError as exc:
                if self._stop.is_set():
                    break  # closed by stop()
                self._set_health(name, Health.error(exc))
                self._stop.wait(1.0)
                continue
            if scan is not None:
                try:
                    self.on_scan(scan, uri)
                except Exception:  # one bad presentation must not end the scanner for good
                    log.exception("scan from %s", uri)


def _assurance(verdict: Verdict) -> str | None:
    """The assurance of what the verdict recorded (none for a rejection or a repeat)."""
    for draft in verdict.drafts:
        if draft.kind is not EventKind.REJECTED:
            return draft.assurance.value
    return None


def _json_object(raw: bytes) -> Any:
    """A persisted message's JSON (anything undecodable becomes a refusal with a reason)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RuntimeConfigError(f"not JSON ({exc})") from None


def _one_lane(config: Config) -> LaneConfig:
    return LaneConfig(name="1", readers=config.readers, scanners=config.scanners)


def run(config: Config, *, stop: threading.Event) -> int:
    """Run until ``stop`` is set."""
    agent = create_agent(config)
    agent.start()
    try:
        stop.wait()
    finally:
        agent.stop()
    return 0
