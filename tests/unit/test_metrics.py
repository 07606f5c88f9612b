"""Agent metrics on loopback."""

from __future__ import annotations

import socket
import urllib.request

from edge_agent.metrics import AgentMetrics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_metrics_are_served_on_loopback() -> None:
    metrics = AgentMetrics()
    metrics.presentations.labels(method="chip", outcome="accepted").inc()
    metrics.outbox_depth.set(4)
    port = free_port()
    server = metrics.serve(port)
    try:
        assert server.server_address[0] == "127.0.0.1"
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    assert 'checkin_presentations_total{method="chip",outcome="accepted"} 1.0' in body
    assert "checkin_outbox_depth 4.0" in body


def test_registries_are_private() -> None:
    a, b = AgentMetrics(), AgentMetrics()
    a.outbox_depth.set(1)
    assert b.registry.get_sample_value("checkin_outbox_depth") == 0.0
