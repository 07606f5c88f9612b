"""Pure CCCD domain code (no I/O): ID number, TD1 MRZ, QR payloads (card QR, BHYT card QR,
VNeID identity token), key material, DG13, partial dates of birth.

Every parser raises :class:`CccdError` (a ``ValueError``) with a ``field`` and a ``reason`` for
bad input, and nothing else.
"""

from edge_agent.cccd.bhyt import BhytCard, parse_bhyt
from edge_agent.cccd.codes import Code, code_format, read_code
from edge_agent.cccd.dates import BirthDate, DatePrecision
from edge_agent.cccd.dg13 import Dg13, parse_dg13
from edge_agent.cccd.errors import CccdError, Dg13Error, IdNumberError, MrzError, QrError
from edge_agent.cccd.id_number import PersonalIdNumber, Sex, parse_id_number
from edge_agent.cccd.keys import BacKey, bac_candidates, expiry_candidates, pace_can
from edge_agent.cccd.mrz import Td1Mrz, check_digit, parse_td1
from edge_agent.cccd.qr import QrFormat, QrIdentity, parse_qr
from edge_agent.cccd.vneid import VneidToken, parse_vneid_token
from wire.masking import mask_id

__all__ = [
    "BacKey", "BhytCard", "BirthDate", "CccdError", "Code", "DatePrecision", "Dg13",
    "Dg13Error", "IdNumberError", "MrzError", "PersonalIdNumber", "QrError", "QrFormat",
    "QrIdentity", "Sex", "Td1Mrz", "VneidToken", "bac_candidates", "check_digit", "code_format",
    "expiry_candidates", "mask_id", "pace_can", "parse_bhyt", "parse_dg13", "parse_id_number",
    "parse_qr", "parse_td1", "parse_vneid_token", "read_code",
]
