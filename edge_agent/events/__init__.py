"""Check-in events as they travel from a device to the centre (docs/design.md §3, docs/protocol.md).

Pure code: identifiers (UUIDv7), the pseudonymous subject and the event model. Canonical JSON,
the Ed25519 signature and the sealed envelope that carries personal data of accommodation
notices are the wire package's (:mod:`wire.signing`, :mod:`wire.sealing`), shared with the
collector.
"""
