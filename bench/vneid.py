"""VNeID identity token verification: time to an answer with the simulated identity platform up,
refusing connections, answering 503, hanging, and with the circuit breaker open.

    .venv/bin/python bench/vneid.py [--reads N]

Default verifier settings (``timeout_s`` 0.4, one retry, ``deadline_s`` 0.9): with the platform
down the kiosk must be able to ask for the card within 1 s (docs/configuration.md ``[vneid]``).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

from edge_agent.cccd import parse_vneid_token
from edge_agent.identity import CircuitBreaker, HttpIdentityVerifier
from firmware_sim.identity_platform import IdentityPlatform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=30)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print("| platform | answer | reads | ms (median / max) |\n|---|---|---|---|")
    with IdentityPlatform(hang_s=3.0) as platform:
        for mode in (None, "refuse", "error", "hang"):
            if mode is None:
                platform.come_up()
            else:
                platform.go_down(mode)
            reads = max(1, args.reads // 6) if mode == "hang" else args.reads
            times, answer = [], None
            for _ in range(reads):
                verifier = HttpIdentityVerifier(platform.url, terminal_id="bench",
                                                breaker=CircuitBreaker(1000, 60))
                token = parse_vneid_token(platform.issue("079303001234"))
                started = time.perf_counter()
                answer = verifier.verify(token)
                times.append((time.perf_counter() - started) * 1000)
            assert answer is not None
            print(f"| {mode or 'up'} | {answer.state.value} {answer.reason} | {reads} | "
                  f"{statistics.median(times):.1f} / {max(times):.1f} |")
        platform.go_down("refuse")
        verifier = HttpIdentityVerifier(platform.url, terminal_id="bench",
                                        breaker=CircuitBreaker(1, 60))
        verifier.verify(parse_vneid_token(platform.issue("079303001234")))
        times = []
        for _ in range(args.reads):
            token = parse_vneid_token(platform.issue("079303001234"))
            started = time.perf_counter()
            answer = verifier.verify(token)
            times.append((time.perf_counter() - started) * 1000)
        assert answer is not None
        print(f"| breaker open | {answer.state.value} {answer.reason} | {args.reads} | "
              f"{statistics.median(times):.2f} / {max(times):.2f} |")


if __name__ == "__main__":
    main()
