"""The central collector: MQTT ingest, storage, web dashboard, API, reports."""
