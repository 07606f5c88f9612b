"""``edge-agent scan``: print what a code scanner reads, one JSON line per scan.

``edge-agent scan --scanner URI [--count N] [--timeout S]``: each scan is printed as
``{"payload_hex", "text", "source", "at"}`` (``text`` is the payload as UTF-8, or null when it
is not valid UTF-8; ``at`` is RFC 3339). Stops after N scans, after S seconds, at the end of a
finite source (``frames:DIR``) or on Ctrl-C. Exit 0 when it stopped normally (even with no
scan), 1 when the scanner failed or ``--count`` scans did not come in time, 2 for a bad URI.
The scanner's health is printed to standard error at the end with ``--health``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from drivers.code_scanner import (
    Scan,
    ScannerClosedError,
    ScannerConfigError,
    ScannerError,
    ScannerExhaustedError,
)
from drivers.uri import UriError, open_scanner
from edge_agent.cli.common import CliError, print_json


def register(commands: Any) -> None:
    parser = commands.add_parser("scan", help="print scanned codes as JSON lines")
    parser.add_argument("--scanner", required=True,
                        help="scanner URI (serial:PORT?..., evdev:DEV, camera:0, frames:DIR)")
    parser.add_argument("--count", type=int, default=None, help="stop after N scans")
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop after S seconds (default: no limit)")
    parser.add_argument("--health", action="store_true",
                        help="print the scanner's health as JSON on standard error at the end")
    parser.set_defaults(handler=run)


def scan_json(scan: Scan) -> dict[str, Any]:
    """The JSON line of one scan."""
    return {
        "payload_hex": scan.payload.hex(),
        "text": scan.text,
        "source": scan.source,
        "at": scan.at.isoformat(),
    }


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise CliError("--count must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise CliError("--timeout must be positive")
    try:
        scanner = open_scanner(args.scanner)
    except (UriError, ScannerConfigError) as exc:
        raise CliError(f"bad scanner URI {args.scanner!r}: {exc}") from None
    except ScannerError as exc:
        raise CliError(str(exc), exit_code=1) from None
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    seen = 0
    status = 0
    try:
        while args.count is None or seen < args.count:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            try:
                scan = scanner.read(timeout=remaining if remaining is not None else 1.0)
            except (ScannerExhaustedError, ScannerClosedError):
                break
            if scan is not None:
                print_json(scan_json(scan))
                seen += 1
        if args.count is not None and seen < args.count:
            print(f"edge-agent: {seen} of {args.count} scans before the scanner stopped",
                  file=sys.stderr)
            status = 1
    except ScannerError as exc:
        raise CliError(str(exc), exit_code=1) from None
    finally:
        if args.health:
            sys.stderr.write(json.dumps(scanner.health(), ensure_ascii=False) + "\n")
        scanner.close()
    return status
