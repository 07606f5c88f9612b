"""``edge-agent``: the agent's command line.

Sub-commands register themselves from small modules (``inspect``, ``read``...). Exit status: 0 on
success, 2 for invalid input (one line on standard error saying why), 1 for other failures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edge_agent import __version__
from edge_agent.cli import inspect, read, run, scan
from edge_agent.cli.common import CliError

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    inspect.register(commands)
    read.register(commands)
    run.register(commands)
    scan.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except CliError as exc:
        print(f"edge-agent: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return result
