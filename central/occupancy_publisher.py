"""Publishes each site's occupancy, retained, on ``checkin/v1/sites/<site_id>/occupancy``.

docs/protocol.md §7: ``{"v":1, "site_id", "occupancy", "capacity", "at"}`` (schema
``occupancy.v1``), QoS 1, retained, whenever the figure changes (at most once a second per site)
and at least every minute. The figure is read from :class:`SiteOccupancy`, which every ingest
worker updates, so one publisher sees the changes of all workers; running it in several
processes is harmless (the same retained value is written).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from central.db.models import Site, SiteOccupancy
from wire import occupancy_topic, validate

log = logging.getLogger("central.occupancy")


def occupancy_message(site_id: str, value: int, capacity: int | None,
                      at: datetime) -> dict[str, Any]:
    message = {"v": 1, "site_id": site_id, "occupancy": max(0, value), "capacity": capacity,
               "at": at.astimezone(UTC).isoformat(timespec="milliseconds")}
    validate("occupancy.v1", message)
    return message


class OccupancyPublisher:
    """Polls the occupancy table every ``interval_s`` and publishes what is due."""

    def __init__(self, engine: Engine, client: mqtt.Client, *, interval_s: float = 1.0,
                 refresh_s: float = 60.0) -> None:
        self.engine = engine
        self.client = client
        self.interval_s = interval_s
        self.refresh_s = refresh_s
        self.published: dict[str, tuple[int, int | None, float]] = {}
        """site → (occupancy, capacity, monotonic time of the last publish)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: datetime | None = None) -> list[str]:
        """Publish the sites whose figure changed or whose last publish is a minute old."""
        now = now or datetime.now(UTC)
        mono = time.monotonic()
        with Session(self.engine) as session:
            rows = session.execute(
                select(Site.id, Site.capacity, SiteOccupancy.occupancy)
                .outerjoin(SiteOccupancy, SiteOccupancy.site_id == Site.id)).all()
        sent: list[str] = []
        for site_id, capacity, value in rows:
            figure = int(value or 0)
            last = self.published.get(site_id)
            due = (last is None or (last[0], last[1]) != (figure, capacity)
                   or mono - last[2] >= self.refresh_s)
            if not due or (last is not None and mono - last[2] < 1.0):
                continue  # at most once a second per site
            payload = json.dumps(occupancy_message(site_id, figure, capacity, now),
                                 separators=(",", ":"))
            self.client.publish(occupancy_topic(site_id), payload, qos=1, retain=True)
            self.published[site_id] = (figure, capacity, mono)
            sent.append(site_id)
        return sent

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:
                log.exception("occupancy publish failed")

    def start(self) -> OccupancyPublisher:
        self._thread = threading.Thread(target=self._run, daemon=True, name="occupancy")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
