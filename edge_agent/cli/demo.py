"""``edge-agent demo``: the main job of the README, the system on one machine.

What exists so far is the pure CCCD layer: the demo issues synthetic people, writes their card
QR and MRZ, runs them through the parsers and prints what it checked. The whole system (broker,
collector, agents, traffic) takes its place as it is built.
"""

from __future__ import annotations

import argparse
import random
from datetime import date, timedelta
from typing import Any

from edge_agent.cccd import Sex, mask_id, parse_qr, parse_td1
from edge_agent.cccd.mrz import build_td1
from edge_agent.cccd.qr import format_card_qr

_SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi"]
_MIDDLE = ["Văn", "Thị", "Minh", "Ngọc", "Đức", "Thu"]
_GIVEN = ["An", "Bình", "Châu", "Dũng", "Hà", "Lan", "Mai", "Nam", "Phúc", "Quỳnh"]


def register(commands: Any) -> None:
    parser = commands.add_parser("demo", help="run the system on this machine (see README)")
    parser.add_argument("--people", type=int, default=20, help="synthetic people to generate")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--duration", type=float, default=None, help="accepted for later use")
    parser.add_argument("--check", action="store_true", help="exit non-zero on any mismatch")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    print("CCCD check-in platform — what runs today: the pure CCCD layer.")
    print("The broker, collector, agents and traffic generator join this demo as they are built.")
    mismatches = 0
    for _ in range(args.people):
        sex = rng.choice([Sex.MALE, Sex.FEMALE])
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 60))
        digit = (born.year // 100 - 19) * 2 + (0 if sex is Sex.MALE else 1)
        id_number = f"{rng.choice(['001', '079', '046', '048']):s}{digit}{born.year % 100:02d}" \
                    f"{rng.randrange(10**6):06d}"
        name = f"{rng.choice(_SURNAMES)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"
        issued = max(born + timedelta(days=365 * 15), date(2021, 1, 1))
        payload = format_card_qr(id_number, name, born, sex, "1 Đường A, Phường B, Hà Nội", issued)
        qr = parse_qr(payload.encode())
        keys = qr.bac_candidates
        expiry = None if keys[0].date_of_expiry == "991231" else _from_yymmdd(
            keys[0].date_of_expiry)
        surname, given = name.split(" ", 1)
        mrz = parse_td1(*build_td1(id_number, born, sex, expiry, surname, given))
        ok = mrz.id_number is not None and mrz.id_number.value == qr.id_text
        mismatches += not ok
        verdict = "ok" if ok else "MISMATCH"
        print(f"  {mask_id(id_number)}  QR {qr.format.value:<5}  BAC candidates {len(keys)}"
              f"  MRZ {verdict}")
    print(f"{args.people} synthetic people checked, {mismatches} mismatches.")
    return 1 if (args.check and mismatches) else 0


def _from_yymmdd(text: str) -> date:
    return date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))
