"""The presentation state machine (edge_agent/presentation.py): every ordering of QR, tap, CAN,
removal, end of read and time-out, on one lane and on several. Pure: time is passed in."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from edge_agent.cccd import Sex, mask_id
from edge_agent.cccd.qr import format_card_qr
from edge_agent.presentation import (
    Action,
    DecideQr,
    Lane,
    PresentationError,
    Presentations,
    PresentationSettings,
    Prompt,
    PromptKind,
    ReadChip,
    card_qr_with_keys,
    is_can,
)


def qr(serial: int) -> bytes:
    number = f"079193{serial:06d}"
    return format_card_qr(number, "Nguyễn Thị Mai", date(1993, 4, 5), Sex.FEMALE,
                          "Phường 1, Quận 3, TP Hồ Chí Minh", date(2021, 6, 1)).encode("utf-8")


QR_A, QR_B, QR_C = qr(1), qr(2), qr(3)
JUNK = b"https://example.vn/not-a-card"
WINDOW = 4.0


def machine(*lanes: Lane, **settings: object) -> Presentations:
    lanes = lanes or (Lane("1", readers=("r1",), scanners=("s1",)),)
    return Presentations(lanes, PresentationSettings(tap_window_s=WINDOW, **settings))  # type: ignore[arg-type]


def kinds(actions: list[Action]) -> list[str]:
    out = []
    for a in actions:
        if isinstance(a, DecideQr):
            out.append(f"qr:{a.lane}")
        elif isinstance(a, ReadChip):
            out.append(f"read:{a.reader}")
        else:
            out.append(f"prompt:{a.kind}")
    return out


def only(actions: list[Action], kind: type) -> list:  # type: ignore[type-arg]
    return [a for a in actions if isinstance(a, kind)]


# -- the QR alone is decided at once when no chip read is expected --------------------------------

def test_a_qr_at_a_lane_without_reader_is_decided_at_once() -> None:
    pm = machine(Lane("1", scanners=("s1",)))
    assert pm.scanned("s1", QR_A, 0.0) == [DecideQr("1", QR_A)]
    assert pm.next_deadline() is None


def test_a_qr_is_decided_at_once_when_policy_asks_for_no_chip_read() -> None:
    pm = machine(chip_after_qr=False)
    assert pm.scanned("s1", QR_A, 0.0) == [DecideQr("1", QR_A)]


def test_junk_and_vneid_codes_are_decided_at_once_and_leave_an_armed_qr_alone() -> None:
    pm = machine()
    assert kinds(pm.scanned("s1", QR_A, 0.0)) == ["prompt:tap"]
    assert pm.scanned("s1", JUNK, 0.1) == [DecideQr("1", JUNK)]
    actions = pm.card_present("r1", 0.2)
    assert only(actions, ReadChip)[0].payload == QR_A


def test_an_armed_qr_waits_the_window_then_is_decided_alone() -> None:
    pm = machine()
    actions = pm.scanned("s1", QR_A, 10.0)
    assert actions == [Prompt("1", PromptKind.TAP, mask_id("079193000001"))]
    assert "079193" not in str(actions)
    assert pm.next_deadline() == 10.0 + WINDOW
    assert pm.tick(10.0 + WINDOW - 0.01) == []
    assert pm.tick(10.0 + WINDOW) == [DecideQr("1", QR_A)]
    assert pm.tick(100.0) == []
    assert not pm.pending("1")


# -- scan then tap, card already on the reader ----------------------------------------------------

def test_scan_then_tap_reads_with_the_qr_keys() -> None:
    pm = machine()
    pm.scanned("s1", QR_A, 0.0)
    (read,) = pm.card_present("r1", 1.0)
    assert isinstance(read, ReadChip) and read.reader == "r1" and read.payload == QR_A
    assert read.qr is not None and read.qr.can == "000001"  # the last 6 digits of the ID
    assert pm.tick(100.0) == []  # nothing left to decide alone
    assert pm.read_finished("r1", 2.0) == []
    assert not pm.pending("1")


def test_a_card_already_on_the_reader_is_read_as_soon_as_the_qr_arrives() -> None:
    pm = machine()
    assert kinds(pm.card_present("r1", 0.0)) == ["prompt:can"]
    (read,) = pm.scanned("s1", QR_A, 0.5)
    assert isinstance(read, ReadChip) and read.payload == QR_A


def test_a_card_already_on_the_reader_is_read_at_once_without_can_pad() -> None:
    pm = machine(can_pad=False)
    assert kinds(pm.card_present("r1", 0.0)) == ["prompt:scan-first"]
    assert kinds(pm.scanned("s1", QR_A, 0.5)) == ["read:r1"]


def test_one_read_per_presentation_a_read_card_is_not_read_again() -> None:
    pm = machine()
    pm.scanned("s1", QR_A, 0.0)
    pm.card_present("r1", 0.1)
    pm.read_finished("r1", 1.0)
    # The card still lies there; the next visitor's QR arms the lane instead of re-reading it.
    assert kinds(pm.scanned("s1", QR_B, 2.0)) == ["prompt:tap"]
    assert pm.card_removed("r1", 2.5) == []
    (read,) = pm.card_present("r1", 3.0)
    assert isinstance(read, ReadChip) and read.payload == QR_B


# -- tap first: the CAN pad --------------------------------------------------------------------

def test_tap_first_offers_the_can_pad_and_reads_with_the_can() -> None:
    pm = machine()
    assert pm.card_present("r1", 0.0) == [Prompt("1", PromptKind.CAN)]
    assert pm.can_entered("1", "12a456", 1.0) == [Prompt("1", PromptKind.BAD_CAN)]
    (read,) = pm.can_entered("1", "123456", 2.0)
    assert read == ReadChip("1", "r1", can="123456")
    assert pm.read_finished("r1", 3.0) == []


def test_a_can_typed_before_the_tap_is_armed_and_expires_silently() -> None:
    pm = machine()
    assert pm.can_entered("1", "123456", 0.0) == [Prompt("1", PromptKind.TAP)]
    assert pm.card_present("r1", 1.0) == [ReadChip("1", "r1", can="123456")]
    pm.read_finished("r1", 2.0)
    pm.card_removed("r1", 3.0)
    assert pm.can_entered("1", "654321", 4.0) == [Prompt("1", PromptKind.TAP)]
    assert pm.tick(4.0 + WINDOW) == [Prompt("1", PromptKind.IDLE)]  # not a visit: no verdict


def test_removing_the_card_while_the_pad_is_shown_goes_back_to_idle() -> None:
    pm = machine()
    pm.card_present("r1", 0.0)
    assert pm.card_removed("r1", 1.0) == [Prompt("1", PromptKind.IDLE)]
    assert not pm.pending("1")


def test_a_can_on_a_lane_that_does_not_exist_is_refused() -> None:
    with pytest.raises(PresentationError):
        machine().can_entered("9", "123456", 0.0)


# -- consecutive visitors -----------------------------------------------------------------------

def test_a_second_qr_decides_the_first_as_qr_only_never_drops_it() -> None:
    pm = machine()
    pm.scanned("s1", QR_A, 0.0)
    actions = pm.scanned("s1", QR_B, 0.3)
    assert actions[0] == DecideQr("1", QR_A)
    assert kinds(actions) == ["qr:1", "prompt:tap"]
    (read,) = pm.card_present("r1", 0.5)
    assert isinstance(read, ReadChip) and read.payload == QR_B


def test_qrs_during_a_read_wait_their_turn_and_a_third_decides_the_queued_one() -> None:
    pm = machine()
    pm.scanned("s1", QR_A, 0.0)
    pm.card_present("r1", 0.1)
    assert pm.scanned("s1", QR_B, 0.2) == []                    # queued behind the read
    assert pm.scanned("s1", QR_C, 0.3) == [DecideQr("1", QR_B)]  # B alone, C queued
    actions = pm.read_finished("r1", 0.9)
    assert kinds(actions) == ["prompt:tap"]                      # C armed for its tap
    assert pm.tick(0.9 + WINDOW) == [DecideQr("1", QR_C)]


# -- several readers and scanners ----------------------------------------------------------------

def test_lanes_are_independent() -> None:
    pm = machine(Lane("a", readers=("r1",), scanners=("s1",)),
                 Lane("b", readers=("r2",), scanners=("s2",)))
    pm.scanned("s1", QR_A, 0.0)
    pm.scanned("s2", QR_B, 0.1)
    (read_b,) = pm.card_present("r2", 0.2)
    (read_a,) = pm.card_present("r1", 0.3)
    assert isinstance(read_a, ReadChip) and (read_a.lane, read_a.payload) == ("a", QR_A)
    assert isinstance(read_b, ReadChip) and (read_b.lane, read_b.payload) == ("b", QR_B)


def test_a_lane_with_two_readers_reads_the_waiting_card_after_the_first() -> None:
    pm = machine(Lane("a", readers=("r1", "r2"), scanners=("s1",)))
    pm.scanned("s1", QR_A, 0.0)
    pm.card_present("r1", 0.1)                 # read with A
    assert pm.card_present("r2", 0.2) == []    # waits for the lane
    assert kinds(pm.read_finished("r1", 0.8)) == ["prompt:can"]
    (read,) = pm.scanned("s1", QR_B, 1.0)
    assert isinstance(read, ReadChip) and (read.reader, read.payload) == ("r2", QR_B)


def test_a_device_in_two_lanes_or_in_none_is_refused() -> None:
    with pytest.raises(PresentationError):
        Presentations([Lane("a", readers=("r1",)), Lane("b", readers=("r1",))])
    with pytest.raises(PresentationError):
        Presentations([Lane("a", scanners=("s1",)), Lane("a", scanners=("s2",))])
    with pytest.raises(PresentationError):
        Presentations([])
    with pytest.raises(PresentationError):
        machine().scanned("s9", QR_A, 0.0)
    with pytest.raises(PresentationError):
        PresentationSettings(tap_window_s=0)


# -- every ordering --------------------------------------------------------------------------

STEPS = ("qr_a", "tap", "qr_b", "remove", "tick", "finish")


def run(order: tuple[str, ...]) -> tuple[list[bytes | str], list[bytes | str], int]:
    """Play ``order`` then drain: every QR must end up read or decided, exactly once."""
    pm = machine()
    decided: list[bytes | str] = []
    read: list[bytes | str] = []
    reads_started = 0
    now = 0.0
    reading = False

    def apply(actions: list[Action]) -> None:
        nonlocal reads_started, reading
        for action in actions:
            if isinstance(action, DecideQr):
                decided.append(action.payload)
            elif isinstance(action, ReadChip):
                reads_started += 1
                reading = True
                if action.payload is not None:
                    read.append(action.payload)

    for step in order:
        now += 0.5
        if step == "qr_a":
            apply(pm.scanned("s1", QR_A, now))
        elif step == "qr_b":
            apply(pm.scanned("s1", QR_B, now))
        elif step == "tap":
            apply(pm.card_present("r1", now))
        elif step == "remove":
            apply(pm.card_removed("r1", now))
        elif step == "tick":
            apply(pm.tick(now + WINDOW))
        elif step == "finish" and reading:
            reading = False
            apply(pm.read_finished("r1", now))
    for _ in range(3):  # drain: the read ends, the card leaves, the windows close
        if reading:
            reading = False
            apply(pm.read_finished("r1", now))
        apply(pm.card_removed("r1", now))
        now += WINDOW + 1
        apply(pm.tick(now))
    return decided, read, reads_started


@pytest.mark.parametrize("order", list(itertools.permutations(STEPS)))
def test_every_ordering_accounts_for_every_visitor_exactly_once(order: tuple[str, ...]) -> None:
    decided, read, reads_started = run(order)
    assert sorted(decided + read) == sorted([QR_A, QR_B]), order
    assert reads_started <= 1, order  # one card, one tap: at most one chip read


def test_card_qr_and_can_checks() -> None:
    assert card_qr_with_keys(QR_A) is not None
    assert card_qr_with_keys(JUNK) is None
    assert card_qr_with_keys(b"") is None
    assert is_can("123456") and not is_can("12345") and not is_can("１２３４５６")
