"""Check-in events as they travel from a device to the centre (DESIGN.md §3, docs/protocol.md).

Pure code: identifiers (UUIDv7), the pseudonymous subject, canonical JSON with an Ed25519
signature, and the sealed envelope that carries personal data of accommodation notices.
"""
