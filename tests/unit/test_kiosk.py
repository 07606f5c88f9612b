"""The kiosk page, its JSON state and the live stream."""

from __future__ import annotations

import json
import threading

from edge_agent.kiosk import KioskState, VerdictView, create_app


def test_page_is_vietnamese_and_local_only_assets() -> None:
    state = KioskState(device_name="Cổng 1", site_name="Hoàng thành Huế", language="vi")
    client = create_app(state).test_client()
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Mời chạm thẻ CCCD hoặc quét mã QR" in html
    assert "Hoàng thành Huế" in html
    assert "http://" not in html and "https://" not in html  # no CDN
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert client.get("/static/kiosk.js").status_code == 200


def test_english_texts() -> None:
    html = create_app(KioskState(language="en")).test_client().get("/").get_data(as_text=True)
    assert "Tap the CCCD card or scan its QR code" in html


def test_state_json_shows_the_masked_verdict() -> None:
    state = KioskState()
    state.show(VerdictView(accepted=True, title="Mời vào", masked_id="********1234"))
    state.update(entries_today=3, occupancy=120, capacity=500, online=True, backlog=2)
    data = create_app(state).test_client().get("/state").get_json()
    assert data["verdict"]["title"] == "Mời vào"
    assert data["verdict"]["masked_id"] == "********1234"
    assert (data["entries_today"], data["occupancy"], data["capacity"]) == (3, 120, 500)


def test_event_stream_pushes_changes() -> None:
    state = KioskState()
    client = create_app(state, keepalive_s=0.05).test_client()
    response = client.get("/events", buffered=False)
    chunks = response.response  # the generator
    first = next(iter(chunks))
    text = first.decode() if isinstance(first, bytes) else first
    assert text.startswith("data: ") and json.loads(text[6:])["entries_today"] == 0

    def later() -> None:
        state.update(entries_today=7)

    threading.Timer(0.05, later).start()
    seen = []
    for chunk in chunks:
        piece = chunk.decode() if isinstance(chunk, bytes) else chunk
        if piece.startswith("data: "):
            seen.append(json.loads(piece[6:]))
            break
    response.close()
    assert seen and seen[0]["entries_today"] == 7
    assert state.subscribers == 0


def test_slow_subscriber_is_dropped_not_blocking() -> None:
    state = KioskState()
    subscriber = state.subscribe()
    for i in range(KioskState.MAX_QUEUE + 5):
        state.update(entries_today=i)
    assert state.subscribers == 0
    assert subscriber.qsize() == KioskState.MAX_QUEUE


def test_foreign_host_is_refused_and_framing_forbidden() -> None:
    """DNS rebinding: a page on rebind.evil.example resolving to 127.0.0.1 sends its own name
    as Host; the kiosk answers only its loopback host:port, and never inside a frame."""
    from edge_agent.kiosk.app import ALLOWED_HOSTS, loopback_hosts

    calls: list[str] = []

    def desk(action: str, fields: dict[str, object]) -> dict[str, object]:
        calls.append(action)
        return {"ok": True}

    app = create_app(KioskState(), desk=desk, desk_actions=("manual",))
    app.config[ALLOWED_HOSTS] = loopback_hosts("127.0.0.1", 8080)
    client = app.test_client()
    for host in ("rebind.evil.example", "rebind.evil.example:8080", "127.0.0.1:8081",
                 "localhost", "127.0.0.1", "", "10.0.0.5:8080"):
        r = client.get("/state", headers={"Host": host})
        assert r.status_code == 421, host
        r = client.post("/desk/manual", json={"count": 1000},
                        headers={"Host": host, "X-Kiosk-Desk": "1"})
        assert r.status_code == 421, host
    assert calls == []
    for host in ("127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080"):
        r = client.get("/", headers={"Host": host})
        assert r.status_code == 200, host
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY"
    r = client.post("/desk/manual", json={"count": 1},
                    headers={"Host": "127.0.0.1:8080", "X-Kiosk-Desk": "1"})
    assert r.status_code == 200 and calls == ["manual"]
    assert loopback_hosts("::1", 9000) == {"[::1]:9000", "localhost:9000"}
