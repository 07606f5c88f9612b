"""PC/SC round-trip benchmark: APDU and full-read times through pcscd + vpcd vs. in-process.

    sudo .venv/bin/python bench/pcsc_roundtrip.py [--apdus 500] [--reads 20]
        [--realistic-reads 3] [--json FILE]

Starts pcscd with vpcd in a private network namespace and the vpcd bridge
(``firmware_sim.bridges.vpcd``) in it, exactly as ``tests/hil/pcsc_fixtures.py`` does (root
needed; any other pcscd is stopped for the run), then measures in one run:

- APDU round trip (median and p99 over ``--apdus`` SELECT of the eMRTD application, then as
  many GET CHALLENGE, which a strict chip answers only with the application selected), through
  ``drivers.pcsc.PcscReader``, through raw ``smartcard.scard`` calls (the driver's own overhead
  is the difference), and through the in-process simulator
  ``firmware_sim.sim_reader.SimCardReader`` with zero timing;
- full card read (``read_chip``, PACE-CAN, default ``ReadPolicy``: DG14, DG1, DG13, DG15, SOD,
  Chip Authentication), median and max over ``--reads`` reads, same three paths minus raw;
- optionally (``--realistic-reads``) full reads with the bridge sleeping the chip's realistic
  modelled time (``TimingModel.realistic()``: 106 kbit/s, 3 ms per APDU, 80 ms per public-key
  operation), to show what the PC/SC path adds to a real contactless read.

The simulated chip runs in the bridge process for the PC/SC rows and inside this process for
the simulator rows; wall times include the chip's CPU in both cases. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from smartcard import scard  # noqa: E402

from drivers.card_reader import CardReader  # noqa: E402
from drivers.pcsc import PcscReader  # noqa: E402
from edge_agent.icao import ec  # noqa: E402
from edge_agent.icao.trust import TrustStore  # noqa: E402
from edge_agent.reading import KeyMaterial, ReadPolicy, read_chip  # noqa: E402
from edge_agent.trust_folder import load_trust_folder  # noqa: E402
from firmware_sim.card import TimingModel, issue_cards  # noqa: E402
from firmware_sim.sim_reader import SimCardReader  # noqa: E402
from tests.hil.pcsc_fixtures import READER_NAME, PcscStack, wait_card  # noqa: E402

GET_CHALLENGE = bytes.fromhex("0084000008")
SELECT_EMRTD = bytes.fromhex("00A4040C07A0000002471001")


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def timed(action: Callable[[], Any], count: int) -> list[float]:
    action()  # warm-up
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def row(path: str, what: str, samples: list[float]) -> dict[str, Any]:
    return {"path": path, "what": what, "n": len(samples),
            "median_ms": statistics.median(samples), "p99_ms": percentile(samples, 99),
            "max_ms": max(samples)}


def apdu_rows(path: str, reader: CardReader, count: int) -> list[dict[str, Any]]:
    reader.connect(timeout=5)
    rows = []
    for name, apdu in (("SELECT eMRTD", SELECT_EMRTD), ("GET CHALLENGE", GET_CHALLENGE)):
        def send(apdu: bytes = apdu, name: str = name) -> None:
            if reader.transmit(apdu)[-2:] != b"\x90\x00":
                raise SystemExit(f"{path}: {name} failed")
        rows.append(row(path, f"APDU {name}", timed(send, count)))
    reader.disconnect()
    return rows


def raw_rows(count: int) -> list[dict[str, Any]]:
    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
    hresult, card, protocol = scard.SCardConnect(ctx, READER_NAME, scard.SCARD_SHARE_SHARED,
                                                 protocols)
    if hresult != scard.SCARD_S_SUCCESS:
        raise SystemExit(f"SCardConnect: {scard.SCardGetErrorMessage(hresult)}")
    rows = []
    for name, apdu in (("SELECT eMRTD", SELECT_EMRTD), ("GET CHALLENGE", GET_CHALLENGE)):
        data = list(apdu)

        def send(data: list[int] = data) -> None:
            scard.SCardTransmit(card, protocol, data)
        rows.append(row("raw pyscard → pcscd/vpcd", f"APDU {name}", timed(send, count)))
    scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
    scard.SCardReleaseContext(ctx)
    return rows


def read_row(path: str, reader: CardReader, keys: KeyMaterial, trust: TrustStore,
             count: int, what: str = "full read (PACE-CAN)") -> dict[str, Any]:
    def once() -> None:
        result = read_chip(reader, keys, ReadPolicy(), trust)
        if not result.ok:
            raise SystemExit(f"{path}: read failed: {result.failure} {result.reason}")
    out = row(path, what, timed(once, count))
    result = read_chip(reader, keys, ReadPolicy(), trust)
    out["apdus"] = result.apdu_count
    return out


def run(apdus: int, reads: int, realistic_reads: int) -> list[dict[str, Any]]:
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark starts pcscd in a network namespace")
    ec.precompute(ec.BRAINPOOL_P256R1)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cards"
        issue_cards(out, 1, seed=2026)
        card = out / "cards" / "0001"
        info = json.loads((card / "card.json").read_text(encoding="utf-8"))
        keys = KeyMaterial.from_can(info["can"])
        trust = load_trust_folder(out / "trust")
        stack = PcscStack(Path(tmp) / "pcscd")
        try:
            stack.setup()
            bridge = stack.bridge(card)
            bridge.wait_ready()
            wait_card(True)
            with PcscReader(READER_NAME) as pcsc:
                rows += apdu_rows("PcscReader → pcscd/vpcd", pcsc, apdus)
                rows += raw_rows(apdus)
                sim = SimCardReader(card, realtime=False)
                rows += apdu_rows("SimCardReader (in-process)", sim, apdus)
                rows.append(read_row("PcscReader → pcscd/vpcd", pcsc, keys, trust, reads))
                rows.append(read_row("SimCardReader (in-process)", sim, keys, trust, reads))
                if realistic_reads:
                    bridge.stop()
                    wait_card(False)
                    slow = stack.bridge(card, "--timing", "realistic", "--realtime")
                    slow.wait_ready()
                    wait_card(True)
                    what = "full read, realistic chip timing"
                    rows.append(read_row("PcscReader → pcscd/vpcd", pcsc, keys, trust,
                                         realistic_reads, what))
                    sim_rt = SimCardReader(card, realtime=True, timing=TimingModel.realistic())
                    rows.append(read_row("SimCardReader (in-process)", sim_rt, keys, trust,
                                         realistic_reads, what))
        finally:
            stack.teardown()
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| measurement | path | n | median ms | p99 ms | max ms | APDUs |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r['path']} | {r['n']} | {r['median_ms']:.3f} "
                     f"| {r['p99_ms']:.3f} | {r['max_ms']:.3f} | {r.get('apdus', '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apdus", type=int, default=500)
    parser.add_argument("--reads", type=int, default=20)
    parser.add_argument("--realistic-reads", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = run(args.apdus, args.reads, args.realistic_reads)
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
