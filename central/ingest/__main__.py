"""``python -m central.ingest ingest|purge|migrate --config FILE``."""

from __future__ import annotations

import sys

from central.ingest.cli import main

sys.exit(main())
