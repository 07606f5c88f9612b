"""The chaos soak: many randomized rounds of faults during real traffic, exact counts after each.

    .venv/bin/python bench/chaos.py [--rounds 50] [--seed N] [--traffic 8:20]
                                    [--workdir DIR] [--nice 10]

The world of ``tests/integration/chaos_harness.py`` (the same code the bounded suite
``tests/integration/test_chaos.py`` runs): three agent processes at one heritage site,
mosquitto with the deploy configuration and its persistence on a small tmpfs, one ingest
worker, PostgreSQL, the web. Each round draws a fault (broker SIGKILL with the collector down or
lagging, ingest SIGKILL, PostgreSQL postmaster SIGKILL, broker disk full, agent SIGKILL, device
clock stepped), a moment and a traffic length from the seed; after the round every part is
running again, every outbox receipted, and the database, the JSON API and the dashboard are
compared with the ground truth, cumulatively. Prints a line per round and a summary table
(markdown); exits 1 on any lost or doubled event or any other mismatch. Needs root (the tmpfs
mount, ``runuser -u postgres``) and Debian's mosquitto, postgresql and libfaketime.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.chaos_harness import FAULTS, ChaosError, World


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--traffic", default="8:20",
                        help="seconds of traffic per round, drawn from MIN:MAX")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--nice", type=int, default=10,
                        help="niceness of this process and everything it starts")
    a = parser.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    lo, hi = (float(x) for x in a.traffic.split(":"))
    if a.nice:
        os.nice(a.nice)
    rng = random.Random(seed)
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="chaos-soak-"))
    print(f"chaos soak: {a.rounds} rounds, seed {seed}, traffic {lo:g}-{hi:g} s, "
          f"work folder {workdir}", flush=True)
    world = World(workdir / "world", seed=seed)
    started = time.monotonic()
    failed: list[str] = []
    lost = doubled = 0
    check = None
    try:
        world.start()
        for number in range(1, a.rounds + 1):
            fault = rng.choice(FAULTS)
            traffic = round(rng.uniform(lo, hi), 1)
            try:
                rnd, check = world.round(number, fault, traffic_s=traffic)
            except ChaosError as exc:
                failed.append(f"round {number} ({fault}): {str(exc)[:2000]}")
                print(f"round {number:>3} {fault:<30} FAILED: {str(exc)[:400]}", flush=True)
                break
            problems = check.problems()
            lost, doubled = check.lost, check.doubled
            print(f"round {number:>3} {fault:<30} at {rnd.at_s:5.1f}/{traffic:4.1f} s  "
                  f"+{rnd.generated:<4} generated  {rnd.refused:>3} refused  "
                  f"converged {rnd.converge_s:5.1f} s  "
                  f"{'OK' if not problems else 'MISMATCH'}  [{'; '.join(rnd.notes)}]",
                  flush=True)
            if problems:
                failed.append(f"round {number} ({fault}): {problems}")
                break
    finally:
        world.stop()
    rounds = world.rounds
    by_fault = Counter(r.fault for r in rounds)
    generated = sum(r.generated for r in rounds)
    refused = sum(r.refused for r in rounds)
    stored = sum(check.stored.values()) if check is not None else 0
    print()
    print(f"seed {seed}; {len(rounds)} rounds in {time.monotonic() - started:.0f} s")
    print()
    recorded = sum(check.outbox.values()) if check is not None else 0
    unsure = sum(world.unsure.values())
    print("| rounds | faults by type | events generated | recorded by the gates | stored "
          "| lost | doubled | refused by design | max time to converge |")
    print("|---|---|---|---|---|---|---|---|---|")
    faults = ", ".join(f"{f} {n}" for f, n in sorted(by_fault.items()))
    worst = max((r.converge_s for r in rounds), default=0.0)
    print(f"| {len(rounds)} | {faults} | {generated} | {recorded} | {stored} | {lost} "
          f"| {doubled} | {refused} | {worst:.1f} s |")
    print(f"\n{unsure} presentations failed as the visitor saw it (no verdict, a card-read "
          f"error); the gates recorded {recorded - generated} events more than the visitors "
          f"saw accepted (at most one per such presentation).")
    if failed:
        print("\nFAILED:\n" + "\n".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
