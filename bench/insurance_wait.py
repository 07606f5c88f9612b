"""Hospital visit: time from a presentation to the verdict with the simulated insurance gateway
answering at once and answering after 2 s (docs/protocol.md §4.12: the visit waits at most
``[insurance] wait_s`` = 0.25 s, then is recorded ``unknown`` and re-checked in the background).

    .venv/bin/python bench/insurance_wait.py [--visits N]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from datetime import date, datetime, timedelta, timezone

from edge_agent.cccd import Sex
from edge_agent.cccd.qr import format_card_qr
from edge_agent.events.model import EventDraft
from edge_agent.flows import FlowSettings, HospitalFlow, QrPresentation
from edge_agent.insurance import HttpInsuranceAdapter
from edge_agent.insurance_checks import InsuranceChecks
from firmware_sim.insurance_gateway import InsuranceGateway

ICT = timezone(timedelta(hours=7))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=20)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print("| gateway | visits | verdict ms (median / max) | answers |\n|---|---|---|---|")
    for delay in (0.0, 2.0):
        with InsuranceGateway(delay_s=delay) as gateway:
            checks = InsuranceChecks(HttpInsuranceAdapter(gateway.url, timeout_s=2.5),
                                     wait_s=0.25, retry_delays_s=())
            drafts: list[EventDraft] = []
            flow = HospitalFlow(FlowSettings(site_id="bv", subject_key=b"k" * 32),
                                clock=lambda: datetime.now(ICT), commit=drafts.extend,
                                insurance=checks)
            flow.visit(QrPresentation(card("000000")))  # warm-up: threads, connections
            times: list[float] = []
            answers: set[str] = set()
            for i in range(args.visits):
                payload = card(f"{i + 1:06d}")
                started = time.perf_counter()
                verdict = flow.visit(QrPresentation(payload))
                times.append((time.perf_counter() - started) * 1000)
                answers.add(str(verdict.insurance))
            checks.stop()
            print(f"| answers after {delay:.0f} s | {args.visits} | "
                  f"{statistics.median(times):.0f} / {max(times):.0f} | "
                  f"{', '.join(sorted(answers))} |")


def card(serial: str) -> bytes:
    """A synthetic card QR (one person per serial, so no visit is a repeat)."""
    number = f"079090{serial}"  # province 079, a man born in 1990 (docs/cccd.md §2)
    return format_card_qr(number, "Nguyễn Văn Bình", date(1990, 1, 1),
                          Sex.MALE, "1 Đường C", date(2021, 3, 1)).encode("utf-8")


if __name__ == "__main__":
    main()
