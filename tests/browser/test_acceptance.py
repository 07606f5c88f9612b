"""Acceptance: every site kind from its shipped example configuration (deploy/examples/), run as
``edge-agent run`` and used as its gatekeeper or receptionist would, through the kiosk and desk
pages in headless Chromium.

Each example is copied and changed only in the keys docs/configuration.md says an operator
changes (device id, key files, broker URL and certificates, reader and scanner URIs, ports,
outbox path). The real stacks: the chip through nfcpy's UDP transport
(firmware_sim/bridges/nfc_udp.py), QR scanners as pseudo-terminal serial devices, mosquitto with
TLS client certificates and the dynamic-security plugin, the simulated insurance gateway and
identity platform. Every verdict is read on the screen, every event on the wire (a collector
identity subscribes; signatures and the event schema are checked with the wire package), every count
on the screen; expected numbers are written by hand.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from firmware_sim.bridges.nfc_udp import UdpTagBridge
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.card import issue_cards, load_card
from firmware_sim.identity_platform import IdentityPlatform
from firmware_sim.insurance_gateway import InsuranceGateway
from tests.browser.chromium import ARGS, CHROMIUM
from tests.hil.scanner_fixtures import slave_opened_by
from tests.integration.agent_setup import write_device_keys
from tests.integration.broker_fixtures import (
    Broker,
    Recorder,
    env_for_child,
    free_port,
    make_pki,
    running_broker,
)
from wire.schemas import validate
from wire.signing import verify_event

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "examples"
DEVICES = {"entry-gate": "gate-ngo-mon-01", "exit-gate": "gate-hien-nhon-01",
           "both-way-gate": "gate-chuong-duc-01", "hospital-reception": "reception-01",
           "ward-admission": "ward-noi-3", "accommodation-desk": "desk-nha-nghi-01"}
"""The shipped device ids (kept: the test PKI issues a certificate for each)."""
SLOW = 20_000
"""Milliseconds a verdict may take on a loaded 2-core machine (never asserted as a timing)."""


# -- shared parts --------------------------------------------------------------------------


@dataclass
class Stack:
    root: Path
    broker: Broker
    recorder: Recorder
    cards: Path
    browser: Browser

    def card(self, n: int) -> Path:
        return self.cards / "cards" / f"{n:04d}"

    def info(self, n: int) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.card(n) / "card.json").read_text("utf-8"))
        return data


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is required for the browser tests"
    root = tmp_path_factory.mktemp("acceptance")
    issue_cards(root / "cards", 4, seed=1313)
    pki = make_pki(root / "pki", devices=tuple(DEVICES.values()))
    with running_broker(root / "broker", pki) as broker:
        recorder = Recorder(broker).start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                yield Stack(root, broker, recorder, root / "cards", browser)
            finally:
                browser.close()
                recorder.stop()


def operator_copy(text: str, changes: dict[str, str]) -> str:
    """``text`` with each ``table.key`` of ``changes`` set to the given TOML literal; every key
    must already be in the shipped file (the operator edits, never adds)."""
    table = ""
    out = []
    done = set()
    for line in text.splitlines():
        header = re.match(r"^\[([a-z_]+)\]", line)
        if header:
            table = header.group(1)
        item = re.match(r"^([a-z_]+)\s*=", line)
        if item and f"{table}.{item.group(1)}" in changes:
            key = f"{table}.{item.group(1)}"
            done.add(key)
            out.append(f"{item.group(1)} = {changes[key]}")
        else:
            out.append(line)
    missing = set(changes) - done
    assert not missing, f"not in the shipped example: {sorted(missing)}"
    return "\n".join(out) + "\n"


@dataclass
class Site:
    kind: str
    device: str
    process: subprocess.Popen[bytes]
    base: str
    pty: PtySerialScanner
    tag: UdpTagBridge | None
    folder: Path

    def public_key(self) -> Ed25519PublicKey:
        key = serialization.load_pem_private_key(
            (self.folder / "keys" / "device.pem").read_bytes(), None).public_key()
        assert isinstance(key, Ed25519PublicKey)
        return key

    def log(self) -> str:
        return (self.folder / "agent.log").read_text("utf-8", errors="replace")[-4000:]


@contextlib.contextmanager
def run_site(stack: Stack, kind: str, *, reader: bool = True,
             extra: dict[str, str] | None = None) -> Iterator[Site]:
    """``edge-agent run`` on the shipped example of ``kind``, changed as an operator would."""
    folder = stack.root / kind
    folder.mkdir()
    write_device_keys(folder)
    (folder / "trust").symlink_to(stack.cards / "trust")
    device = DEVICES[kind]
    ca, cert, key = stack.broker.pki.tls(device)
    pty = PtySerialScanner(terminator=b"\r")
    tag = UdpTagBridge(stack.card(1)).start() if reader else None
    if tag is not None:
        tag.remove_card()
    port = free_port()
    changes = {
        "device.id": json.dumps(device),
        "keys.signing_key": '"keys/device.pem"',
        "keys.centre_public_key": '"keys/centre.pub.pem"',
        "scanners.uris": json.dumps([f"serial:{pty.path}?baud=9600&terminator=cr"]),
        "broker.url": json.dumps(stack.broker.url),
        "broker.ca": json.dumps(str(ca)), "broker.cert": json.dumps(str(cert)),
        "broker.key": json.dumps(str(key)),
        "outbox.path": json.dumps(str(folder / "outbox.sqlite3")),
        "kiosk.port": str(port), "metrics.port": str(free_port()),
        **(extra or {})}
    if tag is not None:
        changes["readers.uris"] = json.dumps([f"nfc:udp:127.0.0.1:{tag.port}"])
    config = folder / "agent.toml"
    config.write_text(operator_copy((EXAMPLES / f"{kind}.toml").read_text("utf-8"), changes),
                      encoding="utf-8")
    script = Path(sys.executable).with_name("edge-agent")
    log = (folder / "agent.log").open("wb")
    process = subprocess.Popen([str(script), "run", "--config", str(config)], stdout=log,
                               stderr=subprocess.STDOUT, env=env_for_child(), cwd=folder)
    site = Site(kind, device, process, f"http://127.0.0.1:{port}", pty, tag, folder)
    try:
        deadline = time.monotonic() + 30
        while not slave_opened_by(process.pid, pty.path):
            assert process.poll() is None, f"edge-agent exited: {site.log()}"
            assert time.monotonic() < deadline, f"the scanner was never opened: {site.log()}"
            time.sleep(0.05)
        yield site
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        pty.close()
        if tag is not None:
            tag.stop()


def open_kiosk(stack: Stack, site: Site) -> Page:
    page = stack.browser.new_page(viewport={"width": 800, "height": 480})
    page.goto(site.base + "/")
    expect(page.locator("#verdict-title")).to_be_visible(timeout=SLOW)
    return page


def verdict(page: Page, title: str, assurance: str | None = None) -> None:
    """The screen shows ``title``, seen within 50 ms of the page showing it (the visitor who
    waits for "Mời chạm thẻ" taps at once: the tap window is the shipped 4 s, and Playwright's
    own polling slows to once a second)."""
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function("t => document.getElementById('verdict-title').textContent === t",
                               arg=title, polling=50, timeout=SLOW)
    expect(page.locator("#verdict-title")).to_have_text(title, timeout=1000)
    if assurance is not None:
        expect(page.locator("#verdict-assurance")).to_have_class(f"assurance {assurance}")


def wire_events(stack: Stack, site: Site, count: int) -> list[dict[str, Any]]:
    """The site's events the collector received (exactly ``count``), checked and in order."""
    topic = f"checkin/v1/{site.device}/events"

    def arrived(messages: list[Any]) -> bool:
        return len({m.json()["seq"] for m in messages if m.topic == topic}) >= count

    assert stack.recorder.wait_for(arrived, 30), site.log()
    time.sleep(1.0)  # a late extra event would show up here
    bodies = {m.json()["seq"]: m.json() for m in stack.recorder.snapshot() if m.topic == topic}
    events = [bodies[seq] for seq in sorted(bodies)]
    public = site.public_key()
    for event in events:
        validate("event", event)
        verify_event(event, public)
        outside = json.dumps({k: v for k, v in event.items() if k != "sealed"},
                             ensure_ascii=False)
        assert not re.search(r"\d{12}", outside), event
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    statuses = [m.json() for m in stack.recorder.snapshot()
                if m.topic == f"checkin/v1/{site.device}/status" and m.payload]
    published = [s for s in statuses if s.get("reason") != "connection-lost"]  # not the will
    assert any(s["state"] == "online" for s in published)
    for status in published:
        validate("status", status)
        verify_event(status, public)
    return events


def lift(site: Site) -> None:
    """The card leaves the reader, at a person's pace: the reader notices a removal on its next
    presence check (drivers/nfc.py, every 0.5 s), not one that lasts a few milliseconds."""
    assert site.tag is not None
    site.tag.remove_card()
    time.sleep(1.5)


def tap(site: Site, card: Path) -> None:
    assert site.tag is not None
    site.tag.swap_card(load_card(card))
    site.tag.present_card()


def can_pad(page: Page, can: str) -> None:
    expect(page.locator("#canpad")).to_be_visible(timeout=SLOW)
    for digit in can:
        page.locator(f'button.key[data-key="{digit}"]').click()
    page.locator('button.key[data-key="ok"]').click()
    expect(page.locator("#canpad")).to_be_hidden(timeout=SLOW)  # the read has the CAN


# -- heritage gates ------------------------------------------------------------------------


def gate_visitors(stack: Stack, site: Site, page: Page, title: str) -> None:
    """QR only; scan then tap; the same card again (already counted); tap first with the CAN
    pad; a junk scan."""
    assert site.tag is not None
    site.pty.scan(stack.info(1)["qr"].encode("utf-8"))  # QR only: recorded when no tap follows
    verdict(page, title, "qr")
    site.pty.scan(stack.info(2)["qr"].encode("utf-8"))
    verdict(page, "Mời chạm thẻ")
    tap(site, stack.card(2))
    verdict(page, title, "chip-anchored")
    lift(site)
    site.pty.scan(stack.info(2)["qr"].encode("utf-8"))  # the visitor did not get through
    verdict(page, "Mời chạm thẻ")
    site.tag.present_card()
    verdict(page, "Đã ghi nhận")
    lift(site)
    tap(site, stack.card(3))  # tap first: the pad asks for the last 6 digits
    can_pad(page, stack.info(3)["can"])
    verdict(page, title, "chip-anchored")
    lift(site)
    site.pty.scan(b"not a card at all")
    verdict(page, "Không hợp lệ")


@pytest.mark.parametrize("kind,direction,title", [
    ("entry-gate", "entry", "Mời vào"), ("exit-gate", "exit", "Tạm biệt")])
def test_one_way_gate(stack: Stack, kind: str, direction: str, title: str) -> None:
    with run_site(stack, kind) as site:
        page = open_kiosk(stack, site)
        expect(page.locator("#directions")).to_be_hidden()
        gate_visitors(stack, site, page, title)
        counted = "#entries" if direction == "entry" else "#exits"
        other = "#exits" if direction == "entry" else "#entries"
        expect(page.locator(counted)).to_have_text("3", timeout=SLOW)
        expect(page.locator(other)).to_have_text("0")
        events = wire_events(stack, site, 4)
        page.close()
    assert [(e["kind"], e["method"], e["assurance"]) for e in events[:3]] == [
        (direction, "card-qr", "qr"), (direction, "chip", "chip-anchored"),
        (direction, "chip", "chip-anchored")]
    assert (events[3]["kind"], events[3]["reason"]) == ("rejected", "qr-invalid")


def test_both_way_gate_direction_chosen_on_the_kiosk(stack: Stack) -> None:
    with run_site(stack, "both-way-gate") as site:
        page = open_kiosk(stack, site)
        entry = page.locator('button[data-direction="entry"]')
        exit_ = page.locator('button[data-direction="exit"]')
        expect(entry).to_have_class("dir chosen")
        exit_.click()  # the gatekeeper turns the gate to RA
        expect(exit_).to_have_class("dir chosen", timeout=SLOW)
        gate_visitors(stack, site, page, "Tạm biệt")
        entry.click()
        expect(entry).to_have_class("dir chosen", timeout=SLOW)
        site.pty.scan(stack.info(4)["qr"].encode("utf-8"))
        verdict(page, "Mời vào", "qr")
        expect(page.locator("#exits")).to_have_text("3", timeout=SLOW)
        expect(page.locator("#entries")).to_have_text("1", timeout=SLOW)
        events = wire_events(stack, site, 5)
        page.close()
    assert [(e["kind"], e["method"]) for e in events] == [
        ("exit", "card-qr"), ("exit", "chip"), ("exit", "chip"), ("rejected", "card-qr"),
        ("entry", "card-qr")]


# -- desks -----------------------------------------------------------------------------------


def open_desk(stack: Stack, site: Site, page: Page) -> Page:
    """The desk page, reached from the kiosk's own link and unlocked with the shipped PIN."""
    desk = stack.browser.new_page(viewport={"width": 800, "height": 480})
    desk.goto(site.base + "/")
    desk.locator("#desk-link").click()
    desk.locator('#desk-unlock input[name="pin"]').fill("2468")
    desk.locator("#desk-unlock button").click()
    expect(desk.locator("#desk-selected")).to_be_visible(timeout=SLOW)
    return desk


def desk_action(desk: Page, action: str, result: str, **fields: str) -> None:
    form = desk.locator(f'form[data-action="{action}"]')
    for name, value in fields.items():
        form.locator(f'[name="{name}"]').fill(value)
    form.locator("button").click()
    expect(desk.locator("#desk-result")).to_have_text(result, timeout=SLOW)
    expect(desk.locator("#desk-result")).to_be_in_viewport()  # seen without scrolling back


def selected(desk: Page, info: dict[str, Any]) -> None:
    masked = "********" + info["person"]["id_number"][-4:]
    expect(desk.locator("#desk-selected")).to_contain_text(masked, timeout=SLOW)


def test_hospital_reception(stack: Stack) -> None:
    departure = (date.today() + timedelta(days=3)).isoformat()
    with InsuranceGateway() as gateway, IdentityPlatform() as platform, \
            run_site(stack, "hospital-reception", extra={
                "insurance.url": json.dumps(gateway.url),
                "vneid.url": json.dumps(platform.url)}) as site:
        page = open_kiosk(stack, site)
        expect(page.locator("#visits")).to_have_text("0")
        site.pty.scan(stack.info(1)["qr"].encode("utf-8"))  # QR only: a visit
        verdict(page, "Đã tiếp nhận", "qr")
        expect(page.locator("#verdict-message")).to_contain_text("BHYT không hợp lệ")
        expect(page.locator("#visits")).to_have_text("1", timeout=SLOW)
        desk = open_desk(stack, site, page)
        selected(desk, stack.info(1))
        desk_action(desk, "admit", "Đã nhập viện", room="Khoa Nội", expected_departure=departure)
        expect(page.locator("#stays")).to_have_text("1", timeout=SLOW)
        tap(site, stack.card(2))  # tap first at the desk
        can_pad(page, stack.info(2)["can"])
        verdict(page, "Đã tiếp nhận", "chip-anchored")
        lift(site)
        site.pty.scan(platform.issue("079303001234").encode("utf-8"))  # a VNeID app
        verdict(page, "Đã tiếp nhận", "vneid-qr")
        expect(page.locator("#verdict-message")).to_contain_text("Thẻ BHYT còn hiệu lực.")
        site.pty.scan(b"\x01junk")
        verdict(page, "Không hợp lệ")
        site.pty.scan(stack.info(1)["qr"].encode("utf-8"))  # the in-patient leaves: no visit
        verdict(page, "Đang nội trú")
        selected(desk, stack.info(1))
        desk_action(desk, "discharge", "Đã ra viện")
        expect(page.locator("#stays")).to_have_text("0", timeout=SLOW)
        expect(page.locator("#visits")).to_have_text("3", timeout=SLOW)
        events = wire_events(stack, site, 6)
        page.close()
        desk.close()
    assert [(e["kind"], e["method"]) for e in events] == [
        ("visit", "card-qr"), ("stay.start", "card-qr"), ("visit", "chip"),
        ("visit", "vneid-qr"), ("rejected", "card-qr"), ("stay.end", "card-qr")]
    # The simulated gateway knows the VNeID holder (valid), not the two card holders.
    assert [e["details"]["insurance"] for e in events if e["kind"] == "visit"] == [
        "invalid", "invalid", "valid"]


def test_ward_admission_desk(stack: Stack) -> None:
    departure = (date.today() + timedelta(days=5)).isoformat()
    with run_site(stack, "ward-admission", reader=False) as site:
        page = open_kiosk(stack, site)
        desk = open_desk(stack, site, page)
        site.pty.scan(stack.info(2)["qr"].encode("utf-8"))
        verdict(page, "Đã tiếp nhận", "qr")
        selected(desk, stack.info(2))
        desk_action(desk, "admit", "Đã nhập viện", room="Nội 3", expected_departure=departure)
        expect(page.locator("#stays")).to_have_text("1", timeout=SLOW)
        site.pty.scan(b"not a card")
        verdict(page, "Không hợp lệ")
        site.pty.scan(stack.info(2)["qr"].encode("utf-8"))  # shown for the discharge
        verdict(page, "Đang nội trú")
        selected(desk, stack.info(2))
        desk_action(desk, "discharge", "Đã ra viện")
        expect(page.locator("#stays")).to_have_text("0", timeout=SLOW)
        expect(page.locator("#visits")).to_have_text("1", timeout=SLOW)
        events = wire_events(stack, site, 4)
        page.close()
        desk.close()
    assert [e["kind"] for e in events] == ["visit", "stay.start", "rejected", "stay.end"]


def test_accommodation_desk(stack: Stack) -> None:
    departure = (date.today() + timedelta(days=2)).isoformat()
    with run_site(stack, "accommodation-desk") as site:
        page = open_kiosk(stack, site)
        desk = open_desk(stack, site, page)
        expect(page.locator("#stays")).to_have_text("0")
        site.pty.scan(stack.info(1)["qr"].encode("utf-8"))  # QR only selects the guest
        verdict(page, "Đã chọn khách / Guest selected")
        selected(desk, stack.info(1))
        desk_action(desk, "check_in", "Đã nhận phòng", room="204", expected_departure=departure)
        expect(page.locator("#stays")).to_have_text("1", timeout=SLOW)
        tap(site, stack.card(3))  # a second guest taps first
        can_pad(page, stack.info(3)["can"])
        verdict(page, "Đã chọn khách / Guest selected")
        selected(desk, stack.info(3))
        desk_action(desk, "check_in", "Đã nhận phòng", room="205", expected_departure=departure)
        lift(site)
        expect(page.locator("#stays")).to_have_text("2", timeout=SLOW)
        site.pty.scan(stack.info(1)["qr"].encode("utf-8"))  # the first guest leaves
        verdict(page, "Đã chọn khách / Guest selected")
        selected(desk, stack.info(1))
        desk_action(desk, "check_out", "Đã trả phòng")
        expect(page.locator("#stays")).to_have_text("1", timeout=SLOW)
        events = wire_events(stack, site, 3)
        page.close()
        desk.close()
    assert [(e["kind"], e["method"]) for e in events] == [
        ("stay.start", "card-qr"), ("stay.start", "chip"), ("stay.end", "card-qr")]
