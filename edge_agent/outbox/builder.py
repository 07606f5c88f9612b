"""The ``build`` callable :meth:`Outbox.commit` needs: sign (and seal) a draft into wire bytes.

The bytes are the signed event (``edge_agent.events.model.build_event``) as compact UTF-8 JSON
with sorted keys; they are stored in the outbox and published unchanged, so what the centre
verifies is exactly what was committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from edge_agent.events.model import EventDraft, build_event
from wire.signing import wire_bytes


def payload_builder(draft: EventDraft, *, device_id: str, site_id: str,
                    signing_key: Ed25519PrivateKey,
                    centre_key: X25519PublicKey | None,
                    training: bool = False) -> Callable[[int, uuid.UUID], bytes]:
    """``build(seq, event_id) -> bytes`` for ``Outbox.commit(draft, build)``."""

    def build(seq: int, event_id: uuid.UUID) -> bytes:
        return wire_bytes(build_event(draft, device_id=device_id, site_id=site_id, seq=seq,
                                      event_id=event_id, signing_key=signing_key,
                                      centre_key=centre_key, training=training))

    return build
