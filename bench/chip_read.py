"""Chip read benchmark: reader-side CPU, APDUs and bytes, and time against the card's own time.

    .venv/bin/python bench/chip_read.py [--reads N] [--realistic-reads M] [--json FILE]

For PACE-CAN and BAC, with and without DG2, under the zero-latency and the realistic timing
models of the simulated chip (``firmware_sim.card.TimingModel``):

- reader-side CPU per read: process CPU time of the read minus the CPU the in-process simulated
  card spent answering (measured around each ``chip.process`` call), median over N warm reads;
- APDU count against the minimum for the chunk size: the access protocol's fixed exchanges, one
  SELECT of the application, Chip Authentication's two, and ceil(size / chunk) READ BINARYs per
  file;
- under the realistic model, wall time against the floor (the sum of the card's modelled time).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edge_agent.icao import ec
from edge_agent.icao.trust import TrustStore
from edge_agent.reading import KeyMaterial, ReadPolicy, read_chip
from edge_agent.trust_folder import load_trust_folder
from firmware_sim.card import TimingModel, issue_cards
from firmware_sim.sim_reader import SimCardReader

FILES = {"CardAccess": None, "DG1": 1, "DG2": 2, "DG13": 13, "DG14": 14, "DG15": 15, "SOD": 0x1D}


def minimum_apdus(card: Path, access: str, dg2: bool, chunk: int) -> int:
    names = ["DG1", "DG13", "DG14", "DG15", "SOD"] + (["DG2"] if dg2 else [])
    sizes = [len((card / "ef" / f"{n}.bin").read_bytes()) for n in names]
    reads = sum(math.ceil(size / chunk) for size in sizes)
    card_access = math.ceil(len((card / "ef" / "CardAccess.bin").read_bytes()) / chunk)
    # ICAO order (9303-11 §4): EF.CardAccess read at the MF by short EF identifier (no SELECT).
    # PACE: its READs, MSE:Set AT + 4 General Authenticate, SELECT application under SM.
    # BAC: the READ answered 6A82, plain SELECT application, GET CHALLENGE + MUTUAL AUTHENTICATE.
    handshake = card_access + 5 + 1 if access == "pace" else 1 + 1 + 2
    return handshake + 2 + reads  # CA (MSE:Set AT + GA), READs


def one_read(card: Path, keys: KeyMaterial, policy: ReadPolicy, trust: TrustStore,
             timing: TimingModel, bac: bool) -> dict[str, Any]:
    reader = SimCardReader(card, timing=timing, realtime=True)
    if bac:
        reader.chip.fs.contents.pop("CardAccess")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = read_chip(reader, keys, policy, trust)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    if not result.ok:
        raise SystemExit(f"read failed: {result.failure} {result.reason}")
    return {
        "reader_cpu_ms": (cpu - reader.card_cpu_s) * 1000,
        "card_cpu_ms": reader.card_cpu_s * 1000,
        "wall_ms": wall * 1000,
        "floor_ms": reader.card_time_s * 1000,
        "apdus": result.apdu_count,
        "bytes": result.bytes_read,
        "access": result.access,
    }


def run(reads: int, realistic_reads: int) -> list[dict[str, Any]]:
    ec.precompute(ec.BRAINPOOL_P256R1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        issue_cards(out, 1, seed=2026)
        card = out / "cards" / "0001"
        info = json.loads((card / "card.json").read_text(encoding="utf-8"))
        trust = load_trust_folder(out / "trust")
        for access in ("pace", "bac"):
            keys = (KeyMaterial.from_can(info["can"]) if access == "pace"
                    else KeyMaterial.from_mrz(*info["mrz"]))
            for dg2 in (False, True):
                policy = ReadPolicy(read_dg2=dg2)
                for model_name, model, count in (("zero", TimingModel.zero(), reads),
                                                 ("realistic", TimingModel.realistic(),
                                                  realistic_reads)):
                    one_read(card, keys, policy, trust, model, access == "bac")  # warm-up
                    samples = [one_read(card, keys, policy, trust, model, access == "bac")
                               for _ in range(count)]
                    minimum = minimum_apdus(card, access, dg2, policy.max_chunk)
                    rows.append({
                        "access": samples[0]["access"],
                        "dg2": dg2,
                        "timing": model_name,
                        "reads": count,
                        "reader_cpu_ms": statistics.median(s["reader_cpu_ms"] for s in samples),
                        "reader_cpu_ms_max": max(s["reader_cpu_ms"] for s in samples),
                        "apdus": samples[0]["apdus"],
                        "apdus_minimum": minimum,
                        "bytes": samples[0]["bytes"],
                        "wall_ms": statistics.median(s["wall_ms"] for s in samples),
                        "floor_ms": statistics.median(s["floor_ms"] for s in samples),
                    })
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| access | DG2 | timing | reads | reader CPU ms (median / max) | APDUs (minimum) "
        "| bytes read | wall ms | card floor ms | wall / floor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["wall_ms"] / r["floor_ms"] if r["floor_ms"] else float("nan")
        lines.append(
            f"| {r['access']} | {'yes' if r['dg2'] else 'no'} | {r['timing']} | {r['reads']} "
            f"| {r['reader_cpu_ms']:.1f} / {r['reader_cpu_ms_max']:.1f} "
            f"| {r['apdus']} ({r['apdus_minimum']}) | {r['bytes']} | {r['wall_ms']:.1f} "
            f"| {r['floor_ms']:.1f} | {ratio:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=30)
    parser.add_argument("--realistic-reads", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = run(args.reads, args.realistic_reads)
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
