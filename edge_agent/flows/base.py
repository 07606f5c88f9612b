"""What every flow shares: identification, the subject, the debounce window, today's counts,
rejected and manual events, and the commit-before-verdict rule (docs/design.md §2.1 "Outbox").

No I/O: the clock, the outbox commit and (for hospitals) the insurance adapter are injected.
State (the debounce window, counts, occupancy, open stays) lives in memory; the agent rebuilds it
after a restart from the outbox and the centre's retained messages.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import ClassVar

from edge_agent.cccd import BhytCard, VneidToken, mask_id
from edge_agent.config import NameDisplay
from edge_agent.events.model import (
    Demographics,
    EventAssurance,
    EventDraft,
    EventKind,
    Method,
)
from edge_agent.flows import messages as msg
from edge_agent.flows.identify import Person, Unidentified, from_chip, from_qr
from edge_agent.flows.messages import Text
from edge_agent.flows.model import (
    ChipPresentation,
    Clock,
    Commit,
    Counts,
    FlowError,
    FlowInputError,
    FlowSettings,
    ManualPresentation,
    ManualReason,
    Outcome,
    QrPresentation,
    Verdict,
    VneidDecoder,
)
from edge_agent.identity import IdentityAnswer, IdentityState

log = logging.getLogger(__name__)

_KIND_COUNTER = {
    EventKind.ENTRY: "entries", EventKind.EXIT: "exits", EventKind.VISIT: "visits",
    EventKind.STAY_START: "stays_started", EventKind.STAY_END: "stays_ended",
    EventKind.MANUAL: "manual", EventKind.REJECTED: "rejected",
}


def display_name(full_name: str, policy: NameDisplay) -> str | None:
    """The holder's name as the kiosk may show it (``device.name_display``)."""
    words = full_name.split()
    if policy is NameDisplay.NONE or not words:
        return None
    if policy is NameDisplay.GIVEN:
        return words[-1]
    if policy is NameDisplay.INITIALS:
        return " ".join(f"{word[0].upper()}." for word in words)
    return " ".join(words)


class RememberedTokens:
    """A VNeID identity token resolves once on the platform (a second use is a replay), but a
    desk identifies its held presentation again for admission, discharge or check-out. A token
    verified here a moment ago is answered from memory for :data:`TOKEN_MEMORY` (the token's own
    validity, docs/cccd.md §5), then forgotten; rejections and failures are never remembered."""

    MAX_TOKENS = 32

    def __init__(self, verifier: VneidDecoder, clock: Clock) -> None:
        self._verifier = verifier
        self._clock = clock
        self._recent: dict[str, tuple[IdentityAnswer, datetime]] = {}

    def verify(self, token: VneidToken) -> IdentityAnswer:
        now = self._clock()
        for value in [v for v, (_, at) in self._recent.items() if now - at >= TOKEN_MEMORY]:
            del self._recent[value]
        if token.value in self._recent:
            return self._recent[token.value][0]
        answer = self._verifier.verify(token)
        if answer.state is IdentityState.VERIFIED:
            if len(self._recent) >= self.MAX_TOKENS:
                del self._recent[next(iter(self._recent))]
            self._recent[token.value] = (answer, now)
        return answer


TOKEN_MEMORY = timedelta(minutes=5)


class FlowBase:
    """Base of the three site flows; subclasses add their presentations."""

    ACTIONS: ClassVar[tuple[str, ...]] = ()
    """The desk actions this flow accepts (the kiosk's desk page offers exactly these)."""

    def __init__(self, settings: FlowSettings, *, clock: Clock, commit: Commit,
                 vneid: VneidDecoder | None = None) -> None:
        self.settings = settings
        self._clock = clock
        self._commit = commit
        self._vneid = RememberedTokens(vneid, clock) if vneid is not None else None
        self._recent: dict[tuple[str, EventKind], datetime] = {}
        self._counts = Counts(day=date.min)

    # -- time and counts ---------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise FlowError("the clock must return an aware datetime (RFC 3339 needs the offset)")
        if now.date() != self._counts.day:
            self._counts = replace(Counts(day=now.date()), occupancy=self._counts.occupancy,
                                   capacity=self._counts.capacity,
                                   occupancy_estimated=self._counts.occupancy_estimated)
        return now

    @property
    def counts(self) -> Counts:
        """Today's counts (reset at local midnight of the clock's time zone)."""
        self._now()
        return self._occupancy_view(self._counts)

    def _occupancy_view(self, counts: Counts) -> Counts:
        return counts

    def _add_counts(self, drafts: Sequence[EventDraft]) -> None:
        counts = self._counts
        for draft in drafts:
            name = _KIND_COUNTER[draft.kind]
            counts = replace(counts, **{name: getattr(counts, name) + draft.count})
        self._counts = counts

    # -- identification, dedupe ----------------------------------------------------------------

    def identify(self, presentation: ChipPresentation | QrPresentation) -> Person | Unidentified:
        """Who ``presentation`` shows, without an event (a desk's selection); a VNeID token
        verified a moment ago is answered from memory, so this is never a replay."""
        return self._identify(presentation, self._now())

    def _identify(self, presentation: ChipPresentation | QrPresentation,
                  now: datetime) -> Person | Unidentified:
        found = self._identify_any(presentation, now)
        if isinstance(found, BhytCard):
            # An insurance card is not an identity document: only a hospital visit takes it.
            return Unidentified("bhyt-not-accepted", Method.BHYT_QR)
        return found

    def _identify_any(self, presentation: ChipPresentation | QrPresentation,
                      now: datetime) -> Person | Unidentified | BhytCard:
        if isinstance(presentation, ChipPresentation):
            return from_chip(presentation, now.date())
        return from_qr(presentation, self._vneid, now.date(), self.settings.qr_expiry)

    def _subject(self, person: Person) -> str:
        """The device-local subject under the current local key (never sent)."""
        return self.settings.local.subject(person.id_number, self._clock())

    def _subjects(self, person: Person) -> frozenset[str]:
        """``person`` under every retained local key: what a remembered subject may equal."""
        return self.settings.local.candidates(person.id_number, self._clock())

    def _last_seen(self, subjects: frozenset[str], kind: EventKind) -> datetime | None:
        times = [at for s in subjects if (at := self._recent.get((s, kind))) is not None]
        return max(times, default=None)

    def _is_repeat(self, subjects: frozenset[str], kind: EventKind, now: datetime) -> bool:
        """The same card for the same kind within ``dedupe_window_s`` counts once (whichever
        retained local key it was remembered under)."""
        window = timedelta(seconds=self.settings.dedupe_window_s)
        for key in [k for k, at in self._recent.items() if now - at >= window]:
            del self._recent[key]
        last = self._last_seen(subjects, kind)
        return last is not None and now - last < window

    def _check_count(self, count: int, *, allow_group: bool) -> None:
        if not 1 <= count <= self.settings.max_group:
            raise FlowInputError("count", f"must be within 1..{self.settings.max_group}")
        if count > 1 and not allow_group:
            raise FlowInputError("count", "group entries exist at heritage gates only; "
                                 "a visit or a stay is one person")

    # -- verdicts -----------------------------------------------------------------------------

    def _verdict(self, outcome: Outcome, title: Text, message: Text, *,
                 person: Person | None = None, reason: str | None = None,
                 warnings: Sequence[str] = (), drafts: Sequence[EventDraft] = (),
                 **extra: object) -> Verdict:
        accepted = outcome in (Outcome.ACCEPTED, Outcome.ALREADY_COUNTED, Outcome.SELECTED)
        if person is not None and person.qr_mismatch:
            message = message + msg.M_QR_MISMATCH.format(fields=", ".join(person.qr_mismatch))
            warnings = (*warnings, "qr-mismatch")
        if person is not None and person.qr_flags:
            labels = [msg.QR_FLAGS[flag] for flag in person.qr_flags]
            message = message + Text(
                msg.M_QR_FLAGS.vi.format(flags=", ".join(t.vi for t in labels)),
                msg.M_QR_FLAGS.en.format(flags=", ".join(t.en for t in labels)))
            warnings = (*warnings, *(f"qr-{flag}" for flag in person.qr_flags))
        return Verdict(
            accepted=accepted, outcome=outcome, text_title=title, text_message=message,
            counts=self._occupancy_view(self._counts), language=self.settings.language,
            masked_id=mask_id(person.id_number) if person else None,
            name=display_name(person.full_name, self.settings.name_display) if person else None,
            reason=reason, warnings=tuple(warnings), drafts=tuple(drafts),
            **extra,  # type: ignore[arg-type]
        )

    def _record(self, drafts: Sequence[EventDraft], verdict: Verdict,
                person: Person | None = None) -> Verdict:
        """Commit, then count; a failed commit shows "not recorded" and changes nothing."""
        try:
            self._commit(tuple(drafts))
        except Exception:
            log.exception("outbox commit failed; the gatekeeper is told to try again")
            return self._verdict(Outcome.NOT_RECORDED, msg.T_NOT_RECORDED, msg.M_NOT_RECORDED,
                                 person=None, reason="not-recorded")
        self._add_counts(drafts)
        for draft in drafts:
            if draft.subject is not None:
                self._recent[(draft.subject, draft.kind)] = draft.occurred_at
        self._after_commit(drafts)
        return replace(verdict, counts=self._occupancy_view(self._counts))

    def _after_commit(self, drafts: Sequence[EventDraft]) -> None:
        """Subclasses update their own state (occupancy, open stays)."""

    def _reject(self, reason: str, method: Method, now: datetime, *, attempted: EventKind,
                count: int = 1, message: Text | None = None,
                title: Text = msg.T_REJECTED) -> Verdict:
        """A ``rejected`` event: reason code only, no subject, no demographics."""
        draft = EventDraft(kind=EventKind.REJECTED, method=method,
                           assurance=EventAssurance.NONE, occurred_at=now, subject=None,
                           count=count, demographics=Demographics(), reason=reason,
                           details={"attempted": attempted.value})
        verdict = self._verdict(Outcome.REJECTED, title, message or msg.rejected_text(reason),
                                reason=reason, drafts=(draft,))
        return self._record((draft,), verdict)

    def _manual(self, presentation: ManualPresentation, counts_as: EventKind, now: datetime,
                *, allow_group: bool, warnings: Sequence[str] = (),
                extra: Text = msg.EMPTY) -> Verdict:
        self._check_count(presentation.count, allow_group=allow_group)
        reason = ManualReason(presentation.reason)
        draft = EventDraft(kind=EventKind.MANUAL, method=Method.MANUAL,
                           assurance=EventAssurance.MANUAL, occurred_at=now, subject=None,
                           count=presentation.count, demographics=Demographics(),
                           reason=reason.value, details={"counts_as": counts_as.value})
        label = msg.MANUAL_REASONS[reason.value]
        text = Text(msg.M_MANUAL.vi.format(count=presentation.count, reason=label.vi),
                    msg.M_MANUAL.en.format(count=presentation.count, reason=label.en))
        verdict = self._verdict(Outcome.ACCEPTED, msg.T_MANUAL, text + extra,
                                reason=reason.value, warnings=warnings, drafts=(draft,))
        return self._record((draft,), verdict)

    def _draft(self, kind: EventKind, person: Person, subject: str, now: datetime, *,
               count: int = 1, details: dict[str, object] | None = None,
               personal: bool = False) -> EventDraft:
        body: dict[str, object] = dict(details or {})
        if person.qr_mismatch:
            body["qr_mismatch"] = list(person.qr_mismatch)
        if person.qr_flags:
            body["qr_flags"] = list(person.qr_flags)
        if person.vneid_level is not None:
            body["vneid_level"] = person.vneid_level
        return EventDraft(kind=kind, method=person.method, assurance=person.assurance,
                          occurred_at=now, subject=subject, count=count,
                          demographics=person.demographics(now.date()), reason=None,
                          details=body,
                          personal=person.sealed_payload() if personal else None,
                          subject_ref=person.id_number)
