"""A simulated national identity platform that resolves VNeID identity tokens (docs/cccd.md §5).

The real platform's API is not public (an agreement with its operator is needed), so this is a
small JSON-over-HTTP server on loopback with synthetic people only, shaped like the adapter in
the agent expects. Independent of ``edge_agent`` (firmware_sim never imports it).

- ``POST /v1/tokens/resolve {"token", "terminal_id", "request_id"}`` →
  ``{"status": "verified", "identity": {id_number, full_name, date_of_birth, sex, address},
  "level": 1 | 2}`` or ``{"status": "rejected", "reason": "expired" | "replayed" | "revoked" |
  "unknown"}``. A token resolves once: a second use is ``replayed``, except a retry with the same
  ``request_id`` from the same terminal, which gets the first answer again (idempotent).
- ``POST /sim/tokens {"id_number", "ttl_s"}`` → ``{"token", "expires_in"}`` mints a token for a
  known person, as the app would show it (default validity 300 s, the manual's 5 minutes).
- ``POST /sim/outage {"mode": null | "refuse" | "hang" | "error"}`` — goes down on command:
  ``refuse`` closes every resolve connection without an answer, ``hang`` closes it without
  an answer after ``hang_s`` (longer than any client waits), ``error`` answers HTTP 503.
  The ``/sim`` routes keep working so a test can bring the platform back. ``GET /health``.

Tokens are canonical UUID text (uuid4). Time comes from ``clock`` (seconds), so tests expire
tokens without waiting. Requests are not logged (they resolve to personal data).

Run: ``python -m firmware_sim.identity_platform --port 8766`` (mints and prints a token for each
synthetic person at start).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_REQUEST_BYTES = 4096
DEFAULT_PORT = 8766
DEFAULT_TTL_S = 300.0
OUTAGE_MODES = ("refuse", "hang", "error")


@dataclass(frozen=True, slots=True)
class PlatformIdentity:
    """One synthetic citizen known to the platform (``date_of_birth`` ISO, maybe reduced)."""

    id_number: str
    full_name: str
    date_of_birth: str
    sex: str | None
    address: str | None
    level: int = 2

    def to_json(self) -> dict[str, Any]:
        return {"id_number": self.id_number, "full_name": self.full_name,
                "date_of_birth": self.date_of_birth, "sex": self.sex, "address": self.address}


SYNTHETIC_IDENTITIES: tuple[PlatformIdentity, ...] = (
    PlatformIdentity("079303001234", "Nguyễn Thị Mai", "2003-05-15", "F",
                     "1 Đường C, Phường A, Quận B, TP. Hồ Chí Minh", 2),
    PlatformIdentity("001058424242", "Trần Văn Bình", "1958-02-01", "M",
                     "12 Lê Lợi, Phường 3, Thừa Thiên Huế", 2),
    PlatformIdentity("046055012345", "Lê Văn An", "1955", "M", "Thôn 1, Thừa Thiên Huế", 1),
)
"""Synthetic people (never real); An's day and month of birth are unknown."""


@dataclass(slots=True)
class _Token:
    identity: PlatformIdentity
    expires_at: float
    revoked: bool = False
    used_by: tuple[str, str] | None = None
    """(terminal_id, request_id) of the resolution that consumed it."""


@dataclass(slots=True)
class _State:
    tokens: dict[str, _Token] = field(default_factory=dict)
    outage: str | None = None
    resolves: int = 0


class IdentityPlatform:
    """The simulated platform; ``start()`` serves on a thread, ``stop()`` shuts it down."""

    def __init__(self, identities: Sequence[PlatformIdentity] = SYNTHETIC_IDENTITIES, *,
                 host: str = "127.0.0.1", port: int = 0, hang_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the simulated platform listens on loopback only")
        self.identities = {i.id_number: i for i in identities}
        self.hang_s = hang_s
        self.clock = clock
        self._lock = threading.Lock()
        self._state = _State()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- control (Python API; the same through /sim/*) ---------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def resolves(self) -> int:
        """Resolve requests received (answered or not)."""
        return self._state.resolves

    def issue(self, id_number: str, ttl_s: float = DEFAULT_TTL_S) -> str:
        """A fresh token for a known person, valid ``ttl_s`` seconds."""
        identity = self.identities.get(id_number)
        if identity is None:
            raise KeyError("unknown person")
        token = str(uuid.uuid4())
        with self._lock:
            self._state.tokens[token] = _Token(identity, self.clock() + ttl_s)
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            if token in self._state.tokens:
                self._state.tokens[token].revoked = True

    def go_down(self, mode: str = "refuse") -> None:
        if mode not in OUTAGE_MODES:
            raise ValueError(f"outage mode must be one of {OUTAGE_MODES}")
        self._state.outage = mode

    def come_up(self) -> None:
        self._state.outage = None

    @property
    def outage(self) -> str | None:
        return self._state.outage

    # -- the API ---------------------------------------------------------------------------

    def resolve(self, request: Any) -> tuple[int, dict[str, Any]]:
        """HTTP status and JSON body for one decoded resolve request."""
        if not isinstance(request, dict):
            return HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object"}
        token, terminal, request_id = (request.get(k) for k in (
            "token", "terminal_id", "request_id"))
        if not all(isinstance(v, str) and 0 < len(v) <= 100 for v in (token, terminal,
                                                                        request_id)):
            return HTTPStatus.BAD_REQUEST, {"error": "token, terminal_id and request_id are "
                                                     "required strings"}
        assert isinstance(token, str) and isinstance(terminal, str)
        assert isinstance(request_id, str)
        with self._lock:
            record = self._state.tokens.get(token.lower())
            if record is None:
                return HTTPStatus.OK, {"status": "rejected", "reason": "unknown"}
            if record.revoked:
                return HTTPStatus.OK, {"status": "rejected", "reason": "revoked"}
            if record.used_by is not None and record.used_by != (terminal, request_id):
                return HTTPStatus.OK, {"status": "rejected", "reason": "replayed"}
            if record.used_by is None and self.clock() >= record.expires_at:
                return HTTPStatus.OK, {"status": "rejected", "reason": "expired"}
            record.used_by = (terminal, request_id)
            identity = record.identity
        return HTTPStatus.OK, {"status": "verified", "identity": identity.to_json(),
                               "level": identity.level}

    def start(self) -> IdentityPlatform:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="identity-platform", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> IdentityPlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def _control(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            return HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object"}
        if path == "/sim/tokens":
            ttl = body.get("ttl_s", DEFAULT_TTL_S)
            if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= 3600:
                return HTTPStatus.BAD_REQUEST, {"error": "ttl_s must be within (0, 3600]"}
            try:
                token = self.issue(str(body.get("id_number")), float(ttl))
            except KeyError:
                return HTTPStatus.NOT_FOUND, {"error": "unknown person"}
            return HTTPStatus.OK, {"token": token, "expires_in": ttl}
        if path == "/sim/outage":
            mode = body.get("mode")
            if mode is None:
                self.come_up()
            elif mode in OUTAGE_MODES:
                self.go_down(str(mode))
            else:
                return HTTPStatus.BAD_REQUEST, {"error": f"mode must be null or {OUTAGE_MODES}"}
            return HTTPStatus.OK, {"outage": self.outage}
        return HTTPStatus.NOT_FOUND, {"error": "not found"}


def _handler_for(platform: IdentityPlatform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "identity-platform-sim/1"

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: answers carry (synthetic) personal data."""

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client may have given up
                self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(HTTPStatus.OK, {"ok": platform.outage is None})
            else:
                self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})

        def _body(self) -> Any:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 < length <= MAX_REQUEST_BYTES:
                return None
            try:
                return json.loads(self.rfile.read(length).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                return None

        def do_POST(self) -> None:
            path = self.path.rstrip("/")
            if path.startswith("/sim/"):
                self._send(*platform._control(path, self._body()))
                return
            if path != "/v1/tokens/resolve":
                self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})
                return
            platform._state.resolves += 1
            outage = platform.outage
            if outage == "refuse":
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(2)
                return
            if outage == "hang":  # answer nothing, late: the client has long given up
                time.sleep(platform.hang_s)
                self.close_connection = True
                return
            if outage == "error":
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "unavailable"})
                return
            body = self._body()
            if body is None:
                self._send(HTTPStatus.BAD_REQUEST, {"error": "bad JSON body"})
                return
            self._send(*platform.resolve(body))

    return Handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="simulated VNeID identity platform (loopback)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    platform = IdentityPlatform(port=args.port)
    print(json.dumps({"url": platform.url, "tokens": {
        i.id_number[-4:]: platform.issue(i.id_number, 3600) for i in SYNTHETIC_IDENTITIES}}))
    with contextlib.suppress(KeyboardInterrupt):
        platform.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
