"""Prometheus metrics of the ingest (the default registry; ``metrics_port`` exports it)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_STORED = Counter("central_ingest_events_stored_total", "Events stored (first copy)")
DUPLICATES = Counter("central_ingest_duplicates_total",
                     "Copies of stored events acknowledged and dropped (QoS 1 redelivery)")
STATUSES = Counter("central_ingest_status_total", "Status messages applied")
REJECTIONS = Counter("central_ingest_rejections_total", "Messages refused, by reason",
                     ["reason"])
REJECTIONS_NOT_RECORDED = Counter(
    "central_ingest_rejections_not_recorded_total",
    "Rejections only counted, not stored nor logged one by one (per-device rate limit), by "
    "reason; included in central_ingest_rejections_total", ["reason"])
BATCH_SECONDS = Histogram("central_ingest_batch_seconds", "Time to store and commit a batch")
