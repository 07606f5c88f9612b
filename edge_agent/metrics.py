"""Prometheus metrics of the agent, served on loopback only (text exposition format 0.0.4).

A private registry per agent keeps tests and several agents in one process apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass
class AgentMetrics:
    """The agent's instruments."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.presentations = Counter(
            "checkin_presentations", "Cards and codes presented, by method and outcome",
            ["method", "outcome"], registry=r)
        self.events_committed = Counter(
            "checkin_events_committed", "Events committed to the outbox, by kind", ["kind"],
            registry=r)
        self.events_delivered = Counter(
            "checkin_events_delivered", "Events acknowledged by the broker (PUBACK)", registry=r)
        self.outbox_depth = Gauge(
            "checkin_outbox_depth", "Events not yet acknowledged by the broker", registry=r)
        self.outbox_unreceipted = Gauge(
            "checkin_outbox_unreceipted",
            "Events the centre has not receipted yet (docs/protocol.md §4.11)", registry=r)
        self.oldest_unreceipted_age = Gauge(
            "checkin_oldest_unreceipted_age_seconds",
            "Age of the oldest event the centre has not receipted (0: none)", registry=r)
        self.uplink_connected = Gauge(
            "checkin_uplink_connected", "1 while connected to the broker", registry=r)
        self.read_seconds = Histogram(
            "checkin_chip_read_seconds", "Chip read duration", registry=r,
            buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0))
        self.reader_up = Gauge(
            "checkin_reader_up", "1 while a reader or scanner is usable", ["device"], registry=r)
        self.rejected_dropped = Counter(
            "checkin_rejected_dropped", "Junk-scan rejections shown but not stored (rate or "
            "bound reached)", registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> WSGIServer:
        """Expose ``/metrics`` on ``host:port`` (loopback by default)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
