"""Reading a CCCD chip: open access, read, verify, and return a typed result.

``read_chip(reader, keys, policy, trust)`` is the one entry point; see :mod:`.session`.
"""

from edge_agent.reading.key_material import KeyMaterial, NoKeyMaterialError
from edge_agent.reading.policy import ReadPolicy
from edge_agent.reading.result import (
    Assurance,
    Check,
    CheckStatus,
    ChipIdentity,
    FailureReason,
    ReadResult,
)
from edge_agent.reading.session import read_chip

__all__ = [
    "Assurance", "Check", "CheckStatus", "ChipIdentity", "FailureReason", "KeyMaterial",
    "NoKeyMaterialError", "ReadPolicy", "ReadResult", "read_chip",
]
