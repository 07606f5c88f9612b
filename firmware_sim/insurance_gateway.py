"""A simulated social-insurance (BHYT) gateway for hospital reception tests and the demo.

The real gateway needs a facility contract (official letter 931/BYT-BH, docs/cccd.md §8); this
one is a tiny JSON-over-HTTP server on 127.0.0.1 with synthetic records only. Independent of
``edge_agent`` (docs/design.md §2: firmware_sim imports nothing from the agent).

``POST /lookup`` with ``{"id_number", "full_name", "date_of_birth" (YYYY-MM-DD, or YYYY-MM / YYYY
when the day or month is unknown)}`` answers
``{"status": "valid" | "invalid" | "unknown", "detail", "card_number", "valid_until"}``:

- a known ID whose name and date of birth match → its record (``valid`` or ``invalid`` when the
  card expired before today);
- a known ID with another name or date of birth → ``invalid``, detail ``mismatch``;
- an unknown ID → ``invalid``, detail ``not-found``, unless ``synthesize`` is on: then a record
  is derived from the number (last digit 0–6 valid, 7–8 expired, 9 not insured) so any
  synthetic person gets a stable answer.

Fault knobs for tests: ``delay_s`` (answer late, to exercise the client's time-out) and
``fail_status`` (answer that HTTP status). ``GET /health`` answers ``{"ok": true}``.

Run: ``python -m firmware_sim.insurance_gateway --port 8765``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import threading
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_REQUEST_BYTES = 4096
DEFAULT_PORT = 8765


@dataclass(frozen=True, slots=True)
class InsuranceRecord:
    """One synthetic insured person."""

    id_number: str
    full_name: str
    date_of_birth: date
    card_number: str
    valid_until: date


SYNTHETIC_RECORDS: tuple[InsuranceRecord, ...] = (
    InsuranceRecord("079303001234", "Nguyễn Thị Mai", date(2003, 5, 15), "SV4797930012345",
                    date(2026, 12, 31)),
    InsuranceRecord("001058424242", "Trần Văn Bình", date(1958, 2, 1), "HT3010584242421",
                    date(2026, 6, 30)),
    InsuranceRecord("048190000007", "Lê Ngọc Lan", date(1990, 1, 1), "GD4480190000007",
                    date(2024, 12, 31)),
)
"""Synthetic people (never real); Lan's card has expired."""


def _birth(text: object) -> date | None:
    """A full or partial ISO date of birth: its first possible day, or None if malformed."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", text):
        return None
    try:
        return date.fromisoformat((text + "-01-01")[:10])
    except ValueError:
        return None


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def synthesize(id_number: str, full_name: str, date_of_birth: date,
               today: date) -> InsuranceRecord | None:
    """A stable synthetic record for any well-formed ID (see the module docstring)."""
    last = int(id_number[-1])
    if last == 9:
        return None
    digest = hashlib.sha256(id_number.encode("ascii")).hexdigest()
    card = "DN4" + id_number[1:3] + str(int(digest[:12], 16) % 10**10).zfill(10)
    until = date(today.year + 1, 12, 31) if last <= 6 else date(today.year - 1, 12, 31)
    return InsuranceRecord(id_number, full_name, date_of_birth, card, until)


class InsuranceGateway:
    """The simulated gateway; ``start()`` serves on a thread, ``stop()`` shuts it down."""

    def __init__(self, records: Sequence[InsuranceRecord] = SYNTHETIC_RECORDS, *,
                 host: str = "127.0.0.1", port: int = 0, delay_s: float = 0.0,
                 fail_status: int | None = None, synthesize: bool = False,
                 today: date | None = None) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the simulated gateway listens on loopback only")
        self.records: Mapping[str, InsuranceRecord] = {r.id_number: r for r in records}
        self.delay_s = delay_s
        self.fail_status = fail_status
        self.synthesize = synthesize
        self.today = today
        self.requests = 0
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InsuranceGateway:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="insurance-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> InsuranceGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def answer(self, request: Any) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON body for one decoded request body."""
        if not isinstance(request, dict):
            return HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object"}
        id_number = request.get("id_number")
        full_name = request.get("full_name")
        dob_text = request.get("date_of_birth")
        if not (isinstance(id_number, str) and len(id_number) == 12 and id_number.isdigit()
                and id_number.isascii()):
            return HTTPStatus.BAD_REQUEST, {"error": "id_number must be 12 digits"}
        if not isinstance(full_name, str) or not full_name.strip():
            return HTTPStatus.BAD_REQUEST, {"error": "full_name is required"}
        dob = _birth(dob_text)
        if dob is None:
            return HTTPStatus.BAD_REQUEST, {"error": "date_of_birth must be YYYY-MM-DD, "
                                                    "YYYY-MM or YYYY"}
        today = self.today or date.today()
        record = self.records.get(id_number)
        if record is None and self.synthesize:
            record = synthesize(id_number, full_name, dob, today)
        if record is None:
            return HTTPStatus.OK, {"status": "invalid", "detail": "not-found",
                                   "card_number": None, "valid_until": None}
        if _fold(record.full_name) != _fold(full_name) or \
                record.date_of_birth.isoformat()[:len(str(dob_text))] != dob_text:
            return HTTPStatus.OK, {"status": "invalid", "detail": "mismatch",
                                   "card_number": None, "valid_until": None}
        valid = record.valid_until >= today
        return HTTPStatus.OK, {"status": "valid" if valid else "invalid",
                               "detail": "insured" if valid else "expired",
                               "card_number": record.card_number,
                               "valid_until": record.valid_until.isoformat()}


def _handler_for(gateway: InsuranceGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "insurance-gateway-sim/1"

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: requests carry (synthetic) personal data."""

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(HTTPStatus.OK, {"ok": True})
            else:
                self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})

        def do_POST(self) -> None:
            gateway.requests += 1
            if self.path.rstrip("/") != "/lookup":
                self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 < length <= MAX_REQUEST_BYTES:
                self._send(HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"})
                return
            raw = self.rfile.read(length)
            if gateway.delay_s:
                time.sleep(gateway.delay_s)
            if gateway.fail_status is not None:
                self._send(gateway.fail_status, {"error": "simulated failure"})
                return
            try:
                request = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                self._send(HTTPStatus.BAD_REQUEST, {"error": "body is not UTF-8 JSON"})
                return
            status, body = gateway.answer(request)
            self._send(status, body)

    return Handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware_sim.insurance_gateway",
                                     description="Simulated BHYT gateway (synthetic records).")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--fail-status", type=int, default=None)
    parser.add_argument("--synthesize", action="store_true",
                        help="answer for any ID (derived from its digits)")
    args = parser.parse_args(argv)
    gateway = InsuranceGateway(port=args.port, delay_s=args.delay,
                               fail_status=args.fail_status, synthesize=args.synthesize)
    print(json.dumps({"url": gateway.url}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        gateway.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
