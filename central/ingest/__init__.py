"""The collector's ingest: MQTT shared subscriber, validation, idempotent batched store.

* :class:`central.ingest.worker.IngestWorker` — the MQTT 5 worker (shared subscription,
  QoS 1, manual PUBACK after commit);
* :func:`central.ingest.store.process` — validate and store one batch in a transaction;
* :mod:`central.ingest.validate` — the rejection reasons and the validation pipeline;
* :mod:`central.ingest.crypto` — the centre's sealing key from its file (verification and
  opening are :mod:`wire.signing` and :mod:`wire.sealing`, shared with the agent);
* :mod:`central.ingest.cli` — ``ingest``, ``purge`` and ``migrate`` sub-commands.
"""
