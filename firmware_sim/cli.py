"""``firmware-sim`` command line: issue simulated CCCD cards with a test PKI.

``firmware-sim issue --out DIR --count N [--seed S] [--dg13-layout nested|siblings|mixed]
[--aa ecdsa|rsa] [--ds-alg ecdsa|rsa|rsa-pss] [--timing zero|realistic] [--refuse-select-mf]
[--profile strict|strict-no-mf|bac-only|extended|lenient]
[--as-of YYYY-MM-DD]
[--fault KIND[=N] ...]`` prints a one-line JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from .card.errors import PersonalisationError
from .card.faults import FAULT_KINDS, Faults
from .card.issue import issue_cards
from .card.people import REFERENCE_DATE
from .card.profiles import DEFAULT_PROFILE, PROFILE_NAMES
from .card.timing import TimingModel

__all__ = ["issue_cards", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="firmware-sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    issue = sub.add_parser("issue", help="issue simulated cards (synthetic people only)")
    issue.add_argument("--out", type=Path, required=True)
    issue.add_argument("--count", type=int, default=1)
    issue.add_argument("--seed", type=int, default=0)
    issue.add_argument("--dg13-layout", choices=["nested", "siblings", "mixed"], default="nested")
    issue.add_argument("--aa", choices=["ecdsa", "rsa"], default="ecdsa")
    issue.add_argument("--ds-alg", choices=["ecdsa", "rsa", "rsa-pss"], default="ecdsa")
    issue.add_argument("--timing", choices=["zero", "realistic"], default="zero")
    issue.add_argument("--refuse-select-mf", action="store_true")
    issue.add_argument("--dg13-values", choices=["nested", "flat"], default="nested",
                       help="DG13 spouse/old-ID/field-16 layout: nested (as real chips) or flat")
    issue.add_argument("--partial-dob", type=float, default=0.0,
                       help="share of people whose birth day or month is unknown (0..1)")
    issue.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default=DEFAULT_PROFILE,
        help="what the chips refuse, as real chips do (default strict; lenient only to compare)",
    )
    issue.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=REFERENCE_DATE,
        help="reference date for issue/expiry dates (default fixed, for reproducibility)",
    )
    issue.add_argument(
        "--fault",
        action="append",
        default=[],
        help=f"bake a fault into the cards: {', '.join(FAULT_KINDS)} (tag-loss=N, forged-dg=N)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``firmware-sim`` console script."""
    args = _parser().parse_args(argv)
    started = time.monotonic()
    try:
        faults = Faults.parse_cli(args.fault)
        if args.count < 1:
            raise ValueError("--count must be at least 1")
        cards = issue_cards(
            args.out,
            args.count,
            args.seed,
            dg13_layout=args.dg13_layout,
            aa=args.aa,
            faults=faults,
            timing=TimingModel.from_json(args.timing),
            ds_algorithm=args.ds_alg,
            refuse_select_mf=args.refuse_select_mf,
            as_of=args.as_of,
            profile=args.profile,
            dg13_values=args.dg13_values,
            partial_dob=args.partial_dob,
        )
    except (ValueError, PersonalisationError, OSError) as exc:
        print(json.dumps({"ok": False, "error": str(exc)}), file=sys.stderr)
        return 2
    summary = {
        "ok": True,
        "out": str(args.out),
        "count": len(cards),
        "cards": [p.name for p in cards],
        "faults": {k: v for k, v in faults.to_json().items() if v},
        "seconds": round(time.monotonic() - started, 3),
    }
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
