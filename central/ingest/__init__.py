"""The collector's ingest: MQTT shared subscriber, validation, idempotent batched store.

* :class:`central.ingest.worker.IngestWorker` — the MQTT 5 worker (shared subscription,
  QoS 1, manual PUBACK after commit);
* :func:`central.ingest.store.process` — validate and store one batch in a transaction;
* :mod:`central.ingest.validate` — the rejection reasons and the validation pipeline;
* :mod:`central.ingest.crypto` — signature verification and sealed-box opening;
* :mod:`central.ingest.cli` — ``ingest``, ``purge`` and ``migrate`` sub-commands.
"""
