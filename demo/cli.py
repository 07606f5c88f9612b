"""``cccd-demo``: the whole system on one machine (the README's main job, ``bash deploy/start.sh``).

``cccd-demo [--duration S] [--check] [--port P] [--visitors N] [--workdir DIR]
[--database-url URL] [--ingest-workers N] [--faults] [--crash]``; see :mod:`demo.system`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from demo.system import run_system


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cccd-demo",
                                     description="run the whole system on this machine")
    parser.add_argument("--duration", type=float, help="seconds of traffic (default: until "
                                                       "Ctrl-C)")
    parser.add_argument("--check", action="store_true",
                        help="after the traffic, exit 1 unless the centre's counts are exact")
    parser.add_argument("--port", type=int, default=8000, help="the dashboard's port")
    parser.add_argument("--visitors", type=int, default=80)
    parser.add_argument("--workdir", type=Path,
                        default=Path(__file__).resolve().parents[1] / "var" / "demo")
    parser.add_argument("--database-url", help="default: SQLite in the work folder")
    parser.add_argument("--ingest-workers", type=int, default=1)
    parser.add_argument("--faults", action="store_true",
                        help="restart the broker and kill an agent and an ingest worker "
                             "during the traffic")
    parser.add_argument("--crash", action="store_true",
                        help="SIGKILL the ingest workers during the traffic, 12 s later SIGKILL "
                             "the broker, then start both again (needs --duration of 20 s or "
                             "more)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cccd-demo`` console script."""
    a = _parser().parse_args(argv)
    return run_system(root=a.workdir, duration=a.duration, check=a.check, web_port=a.port,
                      visitors=a.visitors, database_url=a.database_url,
                      ingest_workers=a.ingest_workers, faults=a.faults, crash=a.crash)


if __name__ == "__main__":
    sys.exit(main())
