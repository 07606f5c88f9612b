"""Pure CCCD domain code (no I/O): ID number, TD1 MRZ, QR payloads, key material, DG13.

Every parser raises :class:`CccdError` (a ``ValueError``) with a ``field`` and a ``reason`` for
bad input, and nothing else.
"""

from edge_agent.cccd.dg13 import Dg13, parse_dg13
from edge_agent.cccd.errors import CccdError, Dg13Error, IdNumberError, MrzError, QrError
from edge_agent.cccd.id_number import PersonalIdNumber, Sex, mask_id, parse_id_number
from edge_agent.cccd.keys import BacKey, bac_candidates, expiry_candidates, pace_can
from edge_agent.cccd.mrz import Td1Mrz, check_digit, parse_td1
from edge_agent.cccd.qr import QrFormat, QrIdentity, parse_qr

__all__ = [
    "BacKey", "CccdError", "Dg13", "Dg13Error", "IdNumberError", "MrzError", "PersonalIdNumber",
    "QrError", "QrFormat", "QrIdentity", "Sex", "Td1Mrz", "bac_candidates", "check_digit",
    "expiry_candidates", "mask_id", "pace_can", "parse_dg13", "parse_id_number", "parse_qr",
    "parse_td1",
]
