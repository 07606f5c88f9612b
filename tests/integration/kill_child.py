"""A minimal agent for the SIGKILL test: commit events, print each one AFTER its commit, drain.

    python -m tests.integration.kill_child --db OUTBOX --url mqtts://127.0.0.1:PORT \
        --ca ca.crt --cert dev.crt --key dev.key --device gate-01 --site site-1 [--drain-only]

Prints ``READY`` once the outbox is open, then ``<seq> <event_id>`` for every committed event
(the moment the gate would show "accepted"), and with ``--drain-only`` ``DRAINED`` once the
outbox holds nothing undelivered. All people are synthetic.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_agent.cccd.id_number import Sex
from edge_agent.events.model import (
    Demographics,
    EventAssurance,
    EventDraft,
    EventKind,
    Method,
    age_band,
)
from edge_agent.events.subject import subject_for
from edge_agent.outbox import Outbox, payload_builder
from edge_agent.uplink import Uplink
from tests.synthetic import GIVEN, MIDDLE, PROVINCE_CODES, SURNAMES, id_for

SUBJECT_KEY = b"test subject key, 32 bytes long!"


@dataclass(frozen=True)
class Visitor:
    id_number: str
    full_name: str
    sex: Sex
    born: date
    province: str


def visitors(rng: random.Random, n: int) -> list[Visitor]:
    out = []
    for _ in range(n):
        sex = rng.choice([Sex.MALE, Sex.FEMALE])
        born = date(rng.randint(1940, 2015), rng.randint(1, 12), rng.randint(1, 28))
        province = rng.choice(PROVINCE_CODES)
        name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        out.append(Visitor(id_for(province, born, sex, rng.randint(0, 999_999)), name, sex,
                           born, province))
    return out


def draft_for(visitor: Visitor, rng: random.Random) -> EventDraft:
    """A realistic draft: entries / exits / visits pseudonymous, stays with sealed data."""
    now = datetime.now(UTC)
    kind = rng.choice([EventKind.ENTRY, EventKind.ENTRY, EventKind.EXIT, EventKind.VISIT,
                       EventKind.STAY_START, EventKind.STAY_END])
    demographics = Demographics(age_band(visitor.born, now.date()),
                                "M" if visitor.sex is Sex.MALE else "F", visitor.province)
    personal: dict[str, Any] | None = None
    details: dict[str, Any] = {}
    if kind is EventKind.VISIT:
        details = {"insurance": rng.choice(["valid", "unknown", "not-checked"])}
    if kind.is_stay:
        details = {"stay_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                   "ward_or_room": f"P{rng.randint(1, 40):02d}",
                   "expected_departure": (now.date() + timedelta(days=rng.randint(0, 9)))
                   .isoformat(),
                   "reason_code": rng.choice(["treatment", "tourism", "family"])}
        personal = {"name": visitor.full_name, "id_number": visitor.id_number,
                    "date_of_birth": visitor.born.isoformat(), "sex": visitor.sex.value,
                    "nationality": "VNM", "room": f"{rng.randint(1, 40):02d}"}
    return EventDraft(kind, Method.CHIP, EventAssurance.CHIP_ANCHORED, now,
                      subject=subject_for(visitor.id_number, SUBJECT_KEY),
                      demographics=demographics, details=details, personal=personal)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    for name in ("--db", "--url", "--ca", "--cert", "--key", "--device", "--site"):
        p.add_argument(name, required=True)
    p.add_argument("--drain-only", action="store_true")
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    signing = Ed25519PrivateKey.generate()
    centre = X25519PrivateKey.generate().public_key()
    people = visitors(rng, 30)
    outbox = Outbox(args.db)
    uplink = Uplink(args.device, args.site, args.url, (args.ca, args.cert, args.key), outbox,
                    backoff=(0.05, 0.5), heartbeat_s=5)
    uplink.start()
    print("READY", flush=True)
    if args.drain_only:
        if uplink.wait_idle(60):
            print("DRAINED", flush=True)
        uplink.stop()
        return 0
    while True:
        d = draft_for(rng.choice(people), rng)
        entry = outbox.commit(d, payload_builder(d, device_id=args.device, site_id=args.site,
                                                 signing_key=signing, centre_key=centre))
        sys.stdout.write(f"{entry.seq} {entry.event_id}\n")
        sys.stdout.flush()
        uplink.wake()
        time.sleep(rng.uniform(0.0, 0.01))


if __name__ == "__main__":
    sys.exit(main())
