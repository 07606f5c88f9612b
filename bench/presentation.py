"""Presentation latency and lane throughput of the running agent (docs/performance.md).

    .venv/bin/python bench/presentation.py [--qrs N] [--taps M] [--visitors V] [--json FILE]

A heritage entry gate built by ``edge_agent.agent.create_agent`` (simulated outputs, no broker:
the uplink keeps retrying, events are committed to the outbox with fsync as in production).
Codes go through a pseudo-terminal serial scanner and the real serial driver; cards through the
simulated chip behind the reader driver under the realistic timing model (the card's modelled
time is slept: 3 ms per APDU, 106 kbit/s, 80 ms per public-key operation).

1. QR to verdict where the QR is decided at once: a lane without a reader; a lane with a reader
   and ``chip.after_qr = false``. From the write into the pseudo-terminal to the verdict shown.
2. Card on the reader, then its QR: from the write to the chip-anchored verdict.
3. Tap to verdict against the card's own time: the QR armed, the card put on the reader; from
   ``present_card`` to the verdict, divided by the card's modelled time for that read.
4. One lane, visitors a minute: QR, tap, verdict, card removed, next visitor at once (the
   machine's limit; a visitor's own movements add to it at a real gate).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from drivers.card_reader import CardReader
from drivers.outputs import SimulatedOutputs
from drivers.uri import open_reader
from edge_agent.agent import Agent, create_agent
from edge_agent.config import load_config
from edge_agent.flows import Verdict
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.card import TimingModel, issue_cards
from firmware_sim.card.personalise import load_card
from firmware_sim.sim_reader import SimCardReader


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_keys(folder: Path) -> None:
    keys = folder / "keys"
    keys.mkdir()
    (keys / "device.pem").write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (keys / "centre.pub.pem").write_bytes(X25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (keys / "subject.key").write_bytes(b"s" * 32)


class Run:
    """One agent with one pty scanner, and a reader when ``card`` is given."""

    def __init__(self, folder: Path, card: Path | None, *, after_qr: bool = True,
                 dedupe_s: int = 5) -> None:
        folder.mkdir(parents=True)
        write_keys(folder)
        self.pty = PtySerialScanner(terminator=b"\r")
        readers = f'[readers]\nuris = ["sim:{card}"]\n' if card else ""
        config = folder / "agent.toml"
        config.write_text(f"""
[device]
id = "bench-gate"
site_id = "bench-site"
site_kind = "heritage-gate"
direction = "entry"

[keys]
signing_key = "keys/device.pem"
centre_public_key = "keys/centre.pub.pem"
subject_key = "keys/subject.key"

{readers}
[scanners]
uris = ["serial:{self.pty.path}?terminator=cr"]

[chip]
trust_dir = "{folder.parent / 'cards' / 'trust'}"
after_qr = {str(after_qr).lower()}
tap_window_s = 30

[capacity]
dedupe_window_s = {dedupe_s}

[broker]
url = "mqtt://127.0.0.1:{free_port()}"

[outbox]
path = "{folder / 'outbox.sqlite3'}"

[kiosk]
port = {free_port()}
""", encoding="utf-8")
        self._opened: list[SimCardReader] = []

        def opener(uri: str) -> CardReader:
            reader = open_reader(uri)
            assert isinstance(reader, SimCardReader)
            reader.chip = load_card(reader.card_dir, timing=TimingModel.realistic())
            reader.realtime = True
            self._opened.append(reader)
            return reader

        self.agent: Agent = create_agent(load_config(config), outputs=SimulatedOutputs(),
                                         reader_opener=opener)
        self.shown: list[tuple[float, Verdict]] = []
        self._event = threading.Event()
        original = self.agent._show

        def show(verdict: Verdict, face: tuple[bytes, str] | None = None) -> None:
            self.shown.append((time.perf_counter(), verdict))
            self._event.set()
            original(verdict, face)

        self.agent._show = show  # type: ignore[method-assign]
        self.agent.start()
        deadline = time.monotonic() + 10
        while not self.agent.scanners or (card and self.reader is None):
            if time.monotonic() > deadline:
                raise SystemExit("devices did not open")
            time.sleep(0.01)
        if self.reader is not None:
            self.reader.remove_card()
            time.sleep(0.3)

    @property
    def reader(self) -> SimCardReader | None:
        return self._opened[-1] if self._opened else None

    def verdict_after(self, start: float, timeout: float = 30.0) -> tuple[float, Verdict]:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for at, verdict in self.shown:
                if at >= start:
                    self.shown.clear()
                    return at - start, verdict
            self._event.wait(0.005)
            self._event.clear()
        raise SystemExit("no verdict")

    def close(self) -> None:
        self.agent.stop()
        self.pty.close()


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 1),
            "p99_ms": round(p(ms, 0.99), 1), "max_ms": round(max(ms), 1)}


def qr_at_once(base: Path, qrs: list[str], card: Path | None, after_qr: bool) -> dict[str, Any]:
    run = Run(base, card, after_qr=after_qr, dedupe_s=0)
    try:
        times = []
        for i in range(ARGS.qrs):
            start = time.perf_counter()
            run.pty.scan(qrs[i % len(qrs)].encode("utf-8"))
            elapsed, verdict = run.verdict_after(start)
            assert verdict.accepted, verdict.title
            times.append(elapsed)
        return summary(times)
    finally:
        run.close()


def card_then_qr(base: Path, card: Path, qr: str) -> dict[str, Any]:
    run = Run(base, card, dedupe_s=0)
    try:
        times = []
        assert run.reader is not None
        for _ in range(ARGS.taps):
            run.reader.present_card()
            time.sleep(0.3)  # the card lies there; the kiosk shows the CAN pad
            start = time.perf_counter()
            run.pty.scan(qr.encode("utf-8"))
            elapsed, verdict = run.verdict_after(start)
            assert verdict.drafts and verdict.drafts[0].method.value == "chip", verdict.title
            times.append(elapsed)
            run.reader.remove_card()
            time.sleep(0.2)
        return summary(times)
    finally:
        run.close()


def tap_vs_card(base: Path, card: Path, qr: str) -> dict[str, Any]:
    run = Run(base, card, dedupe_s=0)
    try:
        ratios, walls, floors = [], [], []
        assert run.reader is not None
        for _ in range(ARGS.taps):
            run.pty.scan(qr.encode("utf-8"))
            time.sleep(0.3)  # armed: "Mời chạm thẻ"
            card_before = run.reader.card_time_s
            start = time.perf_counter()
            run.reader.present_card()
            elapsed, verdict = run.verdict_after(start)
            assert verdict.drafts and verdict.drafts[0].method.value == "chip", verdict.title
            floor = run.reader.card_time_s - card_before
            walls.append(elapsed)
            floors.append(floor)
            ratios.append(elapsed / floor)
            run.reader.remove_card()
            time.sleep(0.2)
        return {**summary(walls), "card_median_ms": round(statistics.median(floors) * 1000, 1),
                "ratio_median": round(statistics.median(ratios), 3),
                "ratio_max": round(max(ratios), 3)}
    finally:
        run.close()


def lane_throughput(base: Path, cards: list[Path]) -> dict[str, Any]:
    infos = [json.loads((c / "card.json").read_text("utf-8")) for c in cards]
    run = Run(base, cards[0])
    try:
        assert run.reader is not None
        reader = run.reader
        started = time.perf_counter()
        chip = 0
        for i in range(ARGS.visitors):
            reader.chip = load_card(cards[i % len(cards)], timing=TimingModel.realistic())
            start = time.perf_counter()
            run.pty.scan(infos[i % len(cards)]["qr"].encode("utf-8"))
            reader.present_card()
            _, verdict = run.verdict_after(start)
            chip += bool(verdict.drafts and verdict.drafts[0].method.value == "chip")
            reader.remove_card()
        elapsed = time.perf_counter() - started
        return {"visitors": ARGS.visitors, "chip_anchored": chip, "seconds": round(elapsed, 2),
                "per_minute": round(ARGS.visitors / elapsed * 60, 1)}
    finally:
        run.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        count = max(ARGS.visitors, 2)
        issue_cards(base / "cards", count, seed=7)
        cards = [base / "cards" / "cards" / f"{n:04d}" for n in range(1, count + 1)]
        qrs = [json.loads((c / "card.json").read_text("utf-8"))["qr"] for c in cards]
        results = {
            "qr_no_reader": qr_at_once(base / "a", qrs, None, True),
            "qr_reader_after_qr_false": qr_at_once(base / "b", qrs, cards[0], False),
            "card_on_reader_then_qr": card_then_qr(base / "c", cards[0], qrs[0]),
            "tap_to_verdict": tap_vs_card(base / "d", cards[1], qrs[1]),
            "one_lane": lane_throughput(base / "e", cards),
        }
    for name, row in results.items():
        print(f"{name:28} {row}")
    if ARGS.json:
        Path(ARGS.json).write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qrs", type=int, default=200)
    parser.add_argument("--taps", type=int, default=10)
    parser.add_argument("--visitors", type=int, default=30)
    parser.add_argument("--json")
    ARGS = parser.parse_args()
    main()
