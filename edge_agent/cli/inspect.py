"""``edge-agent inspect``: a technician's look at what a card or scanner gave.

``inspect qr PAYLOAD`` (the recognised ``format`` and its fields: ``cccd``, ``cccd-6``,
``personal-qr``, ``vneid-token``, ``bhyt``), ``inspect mrz L1 L2 L3``, ``inspect dg13 [--strict]
FILE`` (``-``: hex on standard input), ``inspect sod --sod FILE --dg N=FILE... [--trust DIR]``.
One JSON object on success; invalid input exits 2 with the reason on standard error.
"""

from __future__ import annotations

import argparse
import binascii
import sys
from pathlib import Path
from typing import Any

from edge_agent.cccd import CccdError, parse_dg13, parse_td1, read_code
from edge_agent.cli.common import CliError, load_trust, print_json
from edge_agent.icao.passive_auth import inspect_sod as passive_auth_summary
from edge_agent.icao.sod import SodError


def register(commands: Any) -> None:
    parser = commands.add_parser("inspect", help="decode a QR payload, an MRZ or a data group")
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")

    qr = kinds.add_parser("qr", help="a scanned code: card QR (cccd, cccd-6, personal-qr), "
                          "VNeID identity token (vneid-token), BHYT card QR (bhyt)")
    qr.add_argument("payload", help="the payload text, or - to read raw bytes from stdin")
    qr.set_defaults(handler=inspect_qr)

    mrz = kinds.add_parser("mrz", help="the TD1 MRZ on the back of the card")
    mrz.add_argument("lines", nargs=3, metavar="LINE")
    mrz.set_defaults(handler=inspect_mrz)

    dg13 = kinds.add_parser("dg13", help="DG13 (Vietnam-specific personal data)")
    dg13.add_argument("file", help="binary or hex file; - reads hex from standard input")
    dg13.add_argument("--strict", action="store_true",
                      help="fail on the first field that cannot be read (default: list them "
                      "under problems, as a chip read does)")
    dg13.set_defaults(handler=inspect_dg13)

    sod = kinds.add_parser("sod", help="passive authentication of EF.SOD against data groups")
    sod.add_argument("--sod", required=True, help="EF.SOD file (binary or hex)")
    sod.add_argument("--dg", action="append", default=[], metavar="N=FILE",
                     help="a data group file, e.g. --dg 1=DG1.bin (repeatable)")
    sod.add_argument("--trust", type=Path, help="folder of CSCA certificates / master lists")
    sod.set_defaults(handler=inspect_sod)


def inspect_qr(args: argparse.Namespace) -> int:
    payload: bytes | str = sys.stdin.buffer.read() if args.payload == "-" else args.payload
    try:
        print_json(read_code(payload).to_json())
    except CccdError as exc:
        raise CliError(str(exc)) from None
    return 0


def inspect_mrz(args: argparse.Namespace) -> int:
    try:
        print_json(parse_td1(*args.lines).to_json())
    except CccdError as exc:
        raise CliError(str(exc)) from None
    return 0


def read_hex_or_binary(source: str) -> bytes:
    """Bytes from a file (binary, or hex text) or hex from standard input (``-``)."""
    if source == "-":
        return _unhex(sys.stdin.read())
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {source}: {exc.strerror}") from None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return data
    stripped = "".join(text.split())
    if stripped and all(c in "0123456789abcdefABCDEF" for c in stripped):
        return _unhex(text)
    return data


def _unhex(text: str) -> bytes:
    stripped = "".join(text.split())
    try:
        return binascii.unhexlify(stripped)
    except (binascii.Error, ValueError):
        raise CliError("input is not hexadecimal (pairs of 0-9, A-F)") from None


def inspect_dg13(args: argparse.Namespace) -> int:
    data = read_hex_or_binary(args.file)
    try:
        print_json(parse_dg13(data, strict=args.strict).to_json())
    except CccdError as exc:
        raise CliError(str(exc)) from None
    return 0


def _dg_argument(spec: str) -> tuple[int, bytes]:
    number, sep, path = spec.partition("=")
    if not sep or not number.isdigit() or not 1 <= int(number) <= 16 or not path:
        raise CliError(f"--dg {spec!r}: expected N=FILE with N from 1 to 16")
    return int(number), read_hex_or_binary(path)


def inspect_sod(args: argparse.Namespace) -> int:
    groups = dict(_dg_argument(spec) for spec in args.dg)
    sod_bytes = read_hex_or_binary(args.sod)
    trust = load_trust(args.trust)
    try:
        print_json(passive_auth_summary(sod_bytes, groups, trust))
    except SodError as exc:
        raise CliError(f"EF.SOD: {exc.reason}") from None
    return 0
