"""The chaos suite, bounded (docs/operations.md, "Faults and recovery"): the whole system on one
machine — real agents, mosquitto, the ingest worker, PostgreSQL, the web — and one fault per
round at a random moment during traffic; after each, every part started again with its own
command line, every outbox receipted, and the counts exact in the database, the API and the
dashboard (:mod:`tests.integration.chaos_harness`). The long soak is ``bench/chaos.py``.

One world for the whole file (its setup costs more than a round); the rounds run in order and
each checks the cumulative counts. The seed is printed in every failure: ``CHAOS_SEED=N`` runs
the same moments again.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.chaos_harness import FAULTS, ChaosError, World

SEED = int(os.environ.get("CHAOS_SEED", random.SystemRandom().randrange(1, 1 << 31)))
TRAFFIC_S = 10.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    keep = os.environ.get("CHAOS_WORKDIR")  # a folder that outlives the run, for its logs
    w = World(Path(keep) if keep else tmp_path_factory.mktemp("chaos") / "world", seed=SEED)
    try:
        w.start()
    except ChaosError as exc:
        w.stop()
        pytest.fail(f"seed {SEED}: {exc}")
    try:
        yield w
    finally:
        w.stop()


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_leaves_counts_exact(world: World, fault: str) -> None:
    number = len(world.rounds) + 1
    try:
        rnd, check = world.round(number, fault, traffic_s=TRAFFIC_S)
    except ChaosError as exc:
        pytest.fail(f"CHAOS_SEED={SEED} round {number} ({fault}): {exc}")
    where = (f"CHAOS_SEED={SEED} round {number} ({fault} at {rnd.at_s:.1f} s: "
             f"{'; '.join(rnd.notes)})")
    assert rnd.generated > 0, f"{where}: no traffic was accepted during the round"
    assert check.problems() == [], where
    assert check.lost == 0 and check.doubled == 0, where
    if fault == "clock-step":
        # Events stamped days back are refused for good and said so in the receipts; the
        # ones stamped ahead of the skew limit wait in the outbox and are accepted later.
        assert check.refused_reasons.keys() <= {"too-old"}, where
        assert check.refused_reasons["too-old"] >= 1, (
            f"{where}: no event was made while the clock was back ({dict(check.refused)})")
    else:
        assert rnd.refused == 0, where
