"""APDU round trip and full chip read through nfcpy's real drivers, against the in-process reader.

    .venv/bin/python bench/nfc_roundtrip.py [--apdus 300] [--reads 20] [--json FILE]

One card (zero timing model: the chip answers at once, so only the transports are measured) is
read in the same run through

- ``sim``: :class:`firmware_sim.sim_reader.SimCardReader` (in-process, ``realtime=False``);
- ``nfcpy/udp``: :class:`drivers.nfc.NfcReader` → nfcpy ``udp`` driver → UDP on 127.0.0.1 →
  :class:`firmware_sim.bridges.nfc_udp.UdpTagBridge` (ISO/IEC 14443-3/-4 card model);
- ``nfcpy/pn532-pty``: :class:`drivers.nfc.NfcReader` → nfcpy ``pn532`` driver → pseudo-terminal
  → :class:`firmware_sim.bridges.pn532.Pn532Simulator` (PN532 host frames, InCommunicateThru).

APDU round trip: ``SELECT`` of the eMRTD application (13-byte command, 2-byte answer; one
ISO-DEP I-block each way), median and 99th percentile over ``--apdus`` exchanges after 10 warm
ones. Full read: ``read_chip`` with PACE-CAN, CA, DG1/DG13/DG14/DG15/SOD (heritage-gate policy),
median over ``--reads`` reads. Bridges run in threads of the same process (one GIL), so the
figures include the simulated card side's Python time. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from drivers.card_reader import CardReader
from drivers.nfc import NfcReader
from edge_agent.icao import ec
from edge_agent.icao.trust import TrustStore
from edge_agent.reading import KeyMaterial, ReadPolicy, read_chip
from edge_agent.trust_folder import load_trust_folder
from firmware_sim.bridges.nfc_udp import UdpTagBridge
from firmware_sim.bridges.pn532 import Pn532Simulator
from firmware_sim.card import TimingModel, issue_cards
from firmware_sim.sim_reader import SimCardReader

SELECT_EMRTD = bytes.fromhex("00A4040C07A0000002471001")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


@contextmanager
def sim_reader(card: Path) -> Iterator[CardReader]:
    reader = SimCardReader(card, timing=TimingModel.zero(), realtime=False)
    yield reader
    reader.close()


@contextmanager
def udp_reader(card: Path) -> Iterator[CardReader]:
    with UdpTagBridge(card, timing=TimingModel.zero()) as bridge, NfcReader(bridge.path) as r:
        yield r


@contextmanager
def pn532_reader(card: Path) -> Iterator[CardReader]:
    with Pn532Simulator(card, timing=TimingModel.zero()) as sim, NfcReader(sim.path) as r:
        yield r


TRANSPORTS: dict[str, Callable[[Path], Any]] = {
    "sim (in-process)": sim_reader,
    "nfcpy/udp": udp_reader,
    "nfcpy/pn532-pty": pn532_reader,
}


def measure(name: str, card: Path, keys: KeyMaterial, trust: TrustStore, apdus: int,
            reads: int) -> dict[str, Any]:
    with TRANSPORTS[name](card) as reader:
        reader.connect(timeout=5)
        rtt = []
        for i in range(apdus + 10):
            t0 = time.perf_counter()
            response = reader.transmit(SELECT_EMRTD)
            if i >= 10:
                rtt.append((time.perf_counter() - t0) * 1000)
            if response[-2:] != b"\x90\x00":
                raise SystemExit(f"{name}: SELECT answered {response.hex()}")
        times, apdu_count = [], 0
        for _ in range(reads):
            t0 = time.perf_counter()
            result = read_chip(reader, keys, ReadPolicy(), trust)
            times.append((time.perf_counter() - t0) * 1000)
            if not result.ok:
                raise SystemExit(f"{name}: read failed: {result.failure} {result.reason}")
            apdu_count = result.apdu_count
    return {
        "transport": name,
        "apdu_median_ms": statistics.median(rtt),
        "apdu_p99_ms": percentile(rtt, 99),
        "read_median_ms": statistics.median(times),
        "read_apdus": apdu_count,
        "apdus": apdus,
        "reads": reads,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apdus", type=int, default=300)
    parser.add_argument("--reads", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    ec.precompute(ec.BRAINPOOL_P256R1)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        issue_cards(out, 1, seed=2026)
        card = out / "cards" / "0001"
        info = json.loads((card / "card.json").read_text(encoding="utf-8"))
        trust = load_trust_folder(out / "trust")
        keys = KeyMaterial.from_can(info["can"])
        rows = [measure(name, card, keys, trust, args.apdus, args.reads) for name in TRANSPORTS]
    print(f"APDU round trip over {args.apdus} SELECTs; full read (PACE-CAN, CA, DG1/13/14/15, "
          f"SOD) median over {args.reads} reads; zero card timing.\n")
    print("| transport | APDU median (ms) | APDU p99 (ms) | read median (ms) | APDUs/read |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['transport']} | {row['apdu_median_ms']:.3f} | {row['apdu_p99_ms']:.3f} | "
              f"{row['read_median_ms']:.1f} | {row['read_apdus']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
