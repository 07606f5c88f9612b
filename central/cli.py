"""``central``: the collector's command line (ingest, web, purge) — not built yet."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    print("central: the collector is not built yet (issue 6).", file=sys.stderr)
    return 1
