"""The kiosk web app (Flask application factory): the page, its state as JSON, and a live stream.

Served on 127.0.0.1 only: the touchscreen's browser runs on the device itself. Every asset is
local (no CDN; the gate may be offline). Server-sent events (WHATWG HTML §9.2) push each change
of :class:`KioskState`; a comment line every ``keepalive_s`` keeps proxies and the browser from
timing the stream out.
"""

from __future__ import annotations

import hmac
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask, Response, abort, jsonify, render_template, request, session
from werkzeug.serving import WSGIRequestHandler

from edge_agent.kiosk.state import KioskState

DeskHandler = Callable[[str, dict[str, Any]], dict[str, Any]]
CanHandler = Callable[[str, str], dict[str, Any]]
"""``(lane, can) -> result``: six digits typed on the CAN pad (tap first)."""
SelectedProvider = Callable[[], dict[str, Any] | None]
"""The person selected for the desk's actions (masked ID, name, seconds since), or None."""
DESK_IDLE_S = 15 * 60
"""An unlocked desk locks again after this long without an action."""
PIN_TRIES = 5
PIN_LOCKOUT_S = 60.0
DirectionHandler = Callable[[str], dict[str, Any]]
"""``(direction) -> result``: the gatekeeper's VÀO / RA choice at a both-way gate."""
"""``(action, fields) -> result``: the agent's desk actions (manual count, admit, discharge,
check-in, check-out). Raises ``ValueError`` with a message for the receptionist."""
DESK_HEADER = "X-Kiosk-Desk"
"""Required on every desk POST: a custom header cannot be sent cross-site without a CORS
preflight this app never grants, so another page in the kiosk browser cannot act (CSRF)."""

TEXTS = {
    "vi": {
        "title": "Kiểm tra CCCD", "waiting": "Mời chạm thẻ CCCD hoặc quét mã QR",
        "entries": "Lượt vào hôm nay", "exits": "Lượt ra hôm nay", "occupancy": "Đang trong khu",
        "capacity": "Sức chứa", "offline": "Mất kết nối — đã lưu trên thiết bị",
        "backlog": "sự kiện chờ gửi", "estimated": "ước tính",
        "visits": "Lượt khám hôm nay", "stays": "Đang lưu trú / nội trú",
        "chip-anchored": "Chip đã xác thực", "chip-signed": "Chip — chưa rõ nơi cấp",
        "qr": "Chỉ mã QR (chưa đọc chip)", "vneid-qr": "VNeID", "manual": "Đếm tay",
        "entry": "VÀO", "exit": "RA", "can": "6 số cuối số CCCD", "ok": "Đọc",
        "clear": "Xoá",
    },
    "en": {
        "title": "CCCD check-in", "waiting": "Tap the CCCD card or scan its QR code",
        "entries": "Entries today", "exits": "Exits today", "occupancy": "Inside now",
        "capacity": "Capacity", "offline": "No connection to the centre — events are kept here",
        "backlog": "events waiting", "estimated": "estimated",
        "visits": "Visits today", "stays": "Staying now",
        "chip-anchored": "Chip verified", "chip-signed": "Chip, issuer unknown",
        "qr": "Card QR only (chip not read)", "vneid-qr": "VNeID", "manual": "Manual count",
        "entry": "IN", "exit": "OUT", "can": "Last 6 digits of the ID number", "ok": "Read",
        "clear": "Clear",
    },
}


ALLOWED_HOSTS = "KIOSK_ALLOWED_HOSTS"
"""App config key: the ``Host`` values the kiosk answers (its own loopback ``host:port``)."""
FRAME_POLICY = "frame-ancestors 'none'"


STAY_REASONS = (("treatment", "Khám chữa bệnh / Treatment"),
                ("caregiver", "Chăm sóc người bệnh / Caregiver"),
                ("tourism", "Du lịch / Tourism"), ("business", "Công tác / Business"),
                ("study", "Học tập / Study"), ("family", "Thăm thân / Family"),
                ("other", "Khác / Other"))
"""The reason codes of docs/protocol.md §4.6, as the desk offers them (Vietnamese first)."""


def loopback_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` header values a browser on the device sends to the kiosk at
    ``host:port``: the address itself and, for the loopback addresses, ``localhost``.
    Anything else is a DNS-rebinding page or a foreign client (RFC 9110 §7.2)."""
    names = {host}
    if host in ("127.0.0.1", "::1", "localhost"):
        names |= {"localhost", "127.0.0.1"} if host != "::1" else {"localhost"}
    return frozenset(
        f"[{name}]:{port}" if ":" in name else f"{name}:{port}" for name in names)


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without the ``Server: Werkzeug/x Python/y`` version banner."""

    def version_string(self) -> str:
        return "kiosk"


def create_app(state: KioskState, *, keepalive_s: float = 15.0,
               desk: DeskHandler | None = None, desk_actions: tuple[str, ...] = (),
               can: CanHandler | None = None,
               choose_direction: DirectionHandler | None = None,
               desk_pin: str | None = None,
               selected: SelectedProvider | None = None,
               stays: Callable[[], list[dict[str, Any]]] | None = None,
               training: Callable[[bool], dict[str, Any]] | None = None,
               allowed_hosts: Iterable[str] = ("localhost",)) -> Flask:
    """A kiosk app bound to ``state``; ``desk`` enables the desk page and its actions, ``can``
    the CAN pad (``POST /can``), ``choose_direction`` the VÀO / RA choice
    (``POST /direction``). Every POST needs the :data:`DESK_HEADER` header (CSRF).

    ``desk_pin``: the desk page and its actions need the PIN first (``POST /desk/unlock``; a
    session cookie, SameSite=Strict, signed with a key made at start, valid
    :data:`DESK_IDLE_S` after the last action; :data:`PIN_TRIES` wrong PINs lock the pad for
    :data:`PIN_LOCKOUT_S`). ``selected`` feeds ``GET /desk/selected``, ``stays`` the desk's
    list of open stays (``GET /desk/stays``; a click ends one without the card), ``training``
    the training toggle (``POST /desk/training {"on": true}``; offered only with a PIN).

    Only requests whose ``Host`` is in ``allowed_hosts`` (or ``app.config[ALLOWED_HOSTS]``,
    which the agent sets to :func:`loopback_hosts` once the port is bound) are answered; any
    other gets 421, so a page reached through DNS rebinding cannot read or drive the kiosk.
    Every response forbids framing (CSP ``frame-ancestors 'none'`` and ``X-Frame-Options``).
    """
    app = Flask(__name__)
    app.config["JSON_AS_ASCII"] = False
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024
    app.config[ALLOWED_HOSTS] = frozenset(allowed_hosts)
    app.config.update(SECRET_KEY=os.urandom(32), SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_HTTPONLY=True)

    @app.before_request
    def check_host() -> tuple[Response, int] | None:
        allowed: frozenset[str] = app.config[ALLOWED_HOSTS]
        if request.headers.get("Host", "").lower() not in allowed:
            return jsonify({"error": "unknown host"}), 421
        return None

    tries = {"failed": 0, "until": 0.0}
    tries_lock = threading.Lock()

    def unlocked() -> bool:
        if desk_pin is None:
            return True
        at = session.get("desk_at")
        if not isinstance(at, (int, float)) or time.time() - at > DESK_IDLE_S:
            session.pop("desk_at", None)
            return False
        session["desk_at"] = time.time()
        return True

    @app.post("/desk/unlock")
    def desk_unlock() -> tuple[Response, int]:
        if desk is None or desk_pin is None:
            abort(404)
        if request.headers.get(DESK_HEADER) != "1":
            abort(403)
        fields = request.get_json(silent=True)
        pin = str(fields.get("pin", "")) if isinstance(fields, dict) else ""
        with tries_lock:
            if time.monotonic() < tries["until"]:
                return jsonify({"error": "Thử lại sau 1 phút / Try again in a minute"}), 429
            if hmac.compare_digest(pin.encode(), desk_pin.encode()):
                tries["failed"] = 0
                session["desk_at"] = time.time()
                return jsonify({"unlocked": True}), 200
            tries["failed"] += 1
            if tries["failed"] >= PIN_TRIES:
                tries["failed"], tries["until"] = 0, time.monotonic() + PIN_LOCKOUT_S
        return jsonify({"error": "Sai mã PIN / Wrong PIN"}), 403

    @app.post("/desk/lock")
    def desk_lock() -> tuple[Response, int]:
        if request.headers.get(DESK_HEADER) != "1":
            abort(403)
        session.pop("desk_at", None)
        return jsonify({"unlocked": False}), 200

    @app.get("/desk/selected")
    def desk_selected() -> Response:
        if desk is None:
            abort(404)
        if not unlocked():
            abort(403)
        return jsonify({"selected": selected() if selected is not None else None})

    @app.post("/desk/training")
    def desk_training() -> tuple[Response, int]:
        if desk is None or training is None or desk_pin is None:
            abort(404)
        if request.headers.get(DESK_HEADER) != "1" or not unlocked():
            abort(403)
        fields = request.get_json(silent=True)
        if not isinstance(fields, dict) or not isinstance(fields.get("on"), bool):
            return jsonify({"error": "the body must be {\"on\": true | false}"}), 400
        return jsonify(training(fields["on"])), 200

    @app.get("/desk/stays")
    def desk_stays() -> Response:
        if desk is None:
            abort(404)
        if not unlocked():
            abort(403)
        return jsonify({"stays": stays() if stays is not None else []})

    @app.get("/desk")
    def desk_page() -> str:
        if desk is None:
            abort(404)
        snapshot = state.snapshot
        texts = TEXTS.get(snapshot.language, TEXTS["vi"])
        return render_template("desk.html", texts=texts, lang=snapshot.language,
                               actions=desk_actions, header=DESK_HEADER,
                               locked=not unlocked(), training=snapshot.training,
                               training_toggle=training is not None and desk_pin is not None,
                               reasons=STAY_REASONS)

    @app.post("/desk/<action>")
    def desk_action(action: str) -> tuple[Response, int]:
        if desk is None or action not in desk_actions:
            abort(404)
        if request.headers.get(DESK_HEADER) != "1" or not unlocked():
            abort(403)
        fields = request.get_json(silent=True)
        if not isinstance(fields, dict):
            return jsonify({"error": "the body must be a JSON object"}), 400
        try:
            return jsonify(desk(action, fields)), 200
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 422

    def _post(handler: Callable[[dict[str, Any]], dict[str, Any]]) -> tuple[Response, int]:
        if request.headers.get(DESK_HEADER) != "1":
            abort(403)
        fields = request.get_json(silent=True)
        if not isinstance(fields, dict):
            return jsonify({"error": "the body must be a JSON object"}), 400
        try:
            return jsonify(handler(fields)), 200
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 422

    @app.post("/can")
    def can_pad() -> tuple[Response, int]:
        if can is None:
            abort(404)
        return _post(lambda f: can(str(f.get("lane", "")), str(f.get("can", ""))))

    @app.post("/direction")
    def direction() -> tuple[Response, int]:
        if choose_direction is None:
            abort(404)
        return _post(lambda f: choose_direction(str(f.get("direction", ""))))

    @app.get("/")
    def page() -> str:
        snapshot = state.snapshot
        texts = TEXTS.get(snapshot.language, TEXTS["vi"])
        return render_template("kiosk.html", texts=texts, lang=snapshot.language,
                               snapshot=snapshot, header=DESK_HEADER,
                               desk=desk is not None and bool(desk_actions))

    @app.get("/photo/<token>")
    def photo(token: str) -> Response:
        found = state.photo(token)
        if found is None:
            abort(404)
        return Response(found[0], mimetype=found[1],
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    @app.get("/state")
    def current() -> Response:
        return jsonify(state.snapshot.to_json())

    @app.get("/events")
    def events() -> Response:
        subscriber = state.subscribe()

        def stream() -> Iterator[str]:
            try:
                while True:
                    try:
                        message = subscriber.get(timeout=keepalive_s)
                    except queue.Empty:
                        yield ": keepalive\n\n"
                        continue
                    yield f"data: {message}\n\n"
            finally:
                state.unsubscribe(subscriber)

        return Response(stream(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault(
            "Content-Security-Policy",
            f"default-src 'self'; style-src 'self'; script-src 'self'; {FRAME_POLICY}")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    return app
