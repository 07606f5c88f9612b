"""``edge-agent read``: read and verify the card in a reader.

``edge-agent read --reader URI [--can N | --mrz L1 L2 L3 | --qr PAYLOAD] [--dg2] [--trust DIR]
[--json]``. Exit 0 when the chip verified, 1 when the read failed (the result says why), 2 for
invalid arguments.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from drivers.card_reader import ReaderError
from drivers.uri import UriError, open_reader
from edge_agent.cccd import CccdError
from edge_agent.cli.common import CliError, load_trust, print_json
from edge_agent.reading import KeyMaterial, NoKeyMaterialError, ReadPolicy, read_chip
from edge_agent.reading.policy import CloneCheck


def register(commands: Any) -> None:
    parser = commands.add_parser("read", help="read and verify a CCCD chip")
    parser.add_argument("--reader", required=True, help="reader URI (sim:DIR, pcsc, nfc:...)")
    keys = parser.add_mutually_exclusive_group(required=True)
    keys.add_argument("--can", help="the 6-digit card access number")
    keys.add_argument("--mrz", nargs=3, metavar="LINE", help="the three MRZ lines")
    keys.add_argument("--qr", help="the card QR payload scanned a moment earlier")
    parser.add_argument("--dg2", action="store_true", help="also read the face image (DG2)")
    parser.add_argument("--trust", type=Path, help="folder of CSCA certificates / master lists")
    parser.add_argument("--clone-check", choices=[c.value for c in CloneCheck],
                        default=CloneCheck.CHIP_AUTHENTICATION.value)
    parser.add_argument("--max-chunk", type=lambda v: int(v, 0), default=0xDF,
                        help="largest READ BINARY before secure messaging (default 0xDF)")
    parser.add_argument("--personal", action="store_true",
                        help="print the full ID number and DG13 (default: masked)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def key_material(args: argparse.Namespace) -> KeyMaterial:
    try:
        if args.can is not None:
            return KeyMaterial.from_can(args.can)
        if args.mrz is not None:
            return KeyMaterial.from_mrz(*args.mrz)
        return KeyMaterial.from_qr(args.qr)
    except (CccdError, NoKeyMaterialError) as exc:
        raise CliError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    keys = key_material(args)
    trust = load_trust(args.trust)
    if not 1 <= args.max_chunk <= 0xFFFF:
        raise CliError("--max-chunk must be between 1 and 65535")
    policy = ReadPolicy(read_dg2=args.dg2, clone_check=CloneCheck(args.clone_check),
                        max_chunk=args.max_chunk)
    try:
        reader = open_reader(args.reader)
    except UriError as exc:
        raise CliError(str(exc)) from None
    except ReaderError as exc:
        raise CliError(str(exc), exit_code=1) from None
    with reader:
        result = read_chip(reader, keys, policy, trust)
    if args.json:
        print_json(result.to_json(personal=args.personal))
    elif result.ok and result.identity is not None:
        assert result.assurance is not None
        ident = result.identity.to_json(personal=args.personal)
        print(f"OK {result.assurance.value}: {ident['id_number']} {ident['full_name']} "
              f"({result.apdu_count} APDUs, {result.timings_ms['total']:.0f} ms)")
    else:
        assert result.failure is not None
        print(f"FAILED {result.failure.value}: {result.reason}")
    return 0 if result.ok else 1
