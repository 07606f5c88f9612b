"""SecurityInfos of EF.CardAccess and DG14 (ICAO 9303-11 §9.2; BSI TR-03110-3 §A.1).

``SecurityInfos ::= SET OF SecurityInfo``, ``SecurityInfo ::= SEQUENCE { protocol OID,
requiredData ANY, optionalData ANY OPTIONAL }``. Recognised: PACEInfo (§9.2.1),
PACEDomainParameterInfo (§9.2.2), ChipAuthenticationInfo (§9.2.5),
ChipAuthenticationPublicKeyInfo (§9.2.6), TerminalAuthenticationInfo (§9.2.4) and
ActiveAuthenticationInfo (§9.2.9). Anything else is kept as :class:`UnknownSecurityInfo`.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.icao import der
from edge_agent.icao.crypto import CipherKind
from edge_agent.icao.ec import BRAINPOOL_P256R1, BRAINPOOL_P384R1, NIST_P256, NIST_P384, Curve
from edge_agent.icao.errors import LdsError
from edge_agent.icao.public_keys import PublicKey, parse_spki_element
from edge_agent.icao.tlv import Tlv

BSI_DE = "0.4.0.127.0.7"
ID_PK = BSI_DE + ".2.2.1"
ID_TA = BSI_DE + ".2.2.2"
ID_CA = BSI_DE + ".2.2.3"
ID_PACE = BSI_DE + ".2.2.4"
ID_CA_DH = ID_CA + ".1"
ID_CA_ECDH = ID_CA + ".2"
ID_PACE_DH_GM = ID_PACE + ".1"
ID_PACE_ECDH_GM = ID_PACE + ".2"
ID_PACE_DH_IM = ID_PACE + ".3"
ID_PACE_ECDH_IM = ID_PACE + ".4"
ID_PACE_ECDH_CAM = ID_PACE + ".6"
ID_PACE_ECDH_GM_AES_CBC_CMAC_128 = ID_PACE_ECDH_GM + ".2"
ID_CA_ECDH_AES_CBC_CMAC_128 = ID_CA_ECDH + ".2"
ID_AA = "2.23.136.1.1.5"

_CIPHER_SUFFIX = {"1": CipherKind.DES3, "2": CipherKind.AES128, "3": CipherKind.AES192,
                  "4": CipherKind.AES256}

STANDARD_PACE_CURVES: dict[int, Curve] = {
    12: NIST_P256,
    13: BRAINPOOL_P256R1,
    15: NIST_P384,
    16: BRAINPOOL_P384R1,
}
"""PACE standardized domain parameters (ICAO 9303-11 §9.5.1, Table 6) that this reader knows."""


def cipher_of(oid: str) -> CipherKind | None:
    """The SM cipher named by the last arc of a PACE or CA protocol OID (…1 3DES … 4 AES-256)."""
    parent, _, last = oid.rpartition(".")
    if parent.rpartition(".")[0] not in (ID_PACE, ID_CA):
        return None
    return _CIPHER_SUFFIX.get(last)


@dataclass(frozen=True, slots=True)
class PaceInfo:
    """PACEInfo: protocol OID, version (2 for PACE v2) and standardized parameter id."""

    protocol: str
    version: int
    parameter_id: int | None

    @property
    def cipher(self) -> CipherKind | None:
        """The SM cipher of the protocol OID."""
        return cipher_of(self.protocol)

    @property
    def is_ecdh_gm(self) -> bool:
        """Whether this is ECDH Generic Mapping (the mapping this reader implements)."""
        return self.protocol.startswith(ID_PACE_ECDH_GM + ".")

    @property
    def curve(self) -> Curve | None:
        """The standard curve for ``parameter_id``, when known."""
        return None if self.parameter_id is None else STANDARD_PACE_CURVES.get(self.parameter_id)


@dataclass(frozen=True, slots=True)
class PaceDomainParameterInfo:
    """PACEDomainParameterInfo (proprietary parameters); kept raw."""

    protocol: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class ChipAuthenticationInfo:
    """ChipAuthenticationInfo: CA protocol OID, version, optional key id."""

    protocol: str
    version: int
    key_id: int | None

    @property
    def cipher(self) -> CipherKind | None:
        """The SM cipher after Chip Authentication."""
        return cipher_of(self.protocol)


@dataclass(frozen=True, slots=True)
class ChipAuthenticationPublicKeyInfo:
    """ChipAuthenticationPublicKeyInfo: id-PK-DH/ECDH, the chip's static key, optional key id."""

    protocol: str
    public_key: PublicKey
    key_id: int | None


@dataclass(frozen=True, slots=True)
class TerminalAuthenticationInfo:
    """TerminalAuthenticationInfo: version (1 for TA v1)."""

    protocol: str
    version: int


@dataclass(frozen=True, slots=True)
class ActiveAuthenticationInfo:
    """ActiveAuthenticationInfo: version and signature algorithm OID (ECDSA AA)."""

    protocol: str
    version: int
    signature_algorithm: str


@dataclass(frozen=True, slots=True)
class UnknownSecurityInfo:
    """A SecurityInfo of an unrecognised protocol, kept as read."""

    protocol: str
    raw: bytes


SecurityInfo = (PaceInfo | PaceDomainParameterInfo | ChipAuthenticationInfo
                | ChipAuthenticationPublicKeyInfo | TerminalAuthenticationInfo
                | ActiveAuthenticationInfo | UnknownSecurityInfo)


def _int(element: Tlv, what: str) -> int:
    return der.decode_integer(der.expect(element, der.TAG_INTEGER, what).value)


def _small_int(element: Tlv, what: str) -> int:
    if len(element.value) > 8:
        raise LdsError(f"{what}: INTEGER too long")
    return _int(element, what)


def parse_security_info(element: Tlv) -> SecurityInfo:
    """One SecurityInfo SEQUENCE."""
    der.expect(element, der.TAG_SEQUENCE, "SecurityInfo")
    parts = der.children(element, "SecurityInfo")
    if len(parts) < 2:
        raise LdsError(f"SecurityInfo with {len(parts)} fields, expected at least 2")
    protocol = der.decode_oid(der.expect(parts[0], der.TAG_OID, "SecurityInfo protocol").value)
    rest = parts[1:]
    if protocol.startswith(ID_PACE + "."):
        arcs = protocol[len(ID_PACE) + 1:].split(".")
        if len(arcs) == 1:  # PACEDomainParameterInfo uses the mapping OID without cipher
            return PaceDomainParameterInfo(protocol, element.raw)
        version = _small_int(rest[0], "PACEInfo version")
        parameter_id = _small_int(rest[1], "PACEInfo parameterId") if len(rest) > 1 else None
        return PaceInfo(protocol, version, parameter_id)
    if protocol.startswith((ID_CA_DH + ".", ID_CA_ECDH + ".")):
        version = _small_int(rest[0], "ChipAuthenticationInfo version")
        key_id = _small_int(rest[1], "ChipAuthenticationInfo keyId") if len(rest) > 1 else None
        return ChipAuthenticationInfo(protocol, version, key_id)
    if protocol in (ID_PK + ".1", ID_PK + ".2"):
        key = parse_spki_element(rest[0])
        key_id = _small_int(rest[1], "ChipAuthenticationPublicKeyInfo keyId") if len(
            rest) > 1 else None
        return ChipAuthenticationPublicKeyInfo(protocol, key, key_id)
    if protocol == ID_TA:
        version = _small_int(rest[0], "TerminalAuthenticationInfo version")
        return TerminalAuthenticationInfo(protocol, version)
    if protocol == ID_AA:
        version = _small_int(rest[0], "ActiveAuthenticationInfo version")
        if len(rest) < 2:
            raise LdsError("ActiveAuthenticationInfo without signatureAlgorithm")
        alg = der.decode_oid(der.expect(rest[1], der.TAG_OID, "signatureAlgorithm").value)
        return ActiveAuthenticationInfo(protocol, version, alg)
    return UnknownSecurityInfo(protocol, element.raw)


def parse_security_infos(data: bytes | Tlv) -> list[SecurityInfo]:
    """A DER ``SET OF SecurityInfo`` (the whole of EF.CardAccess, or DG14's content)."""
    element = data if isinstance(data, Tlv) else der.single(data, der.TAG_SET, "SecurityInfos")
    der.expect(element, der.TAG_SET, "SecurityInfos")
    return [parse_security_info(child) for child in der.children(element, "SecurityInfos")]


def parse_card_access(data: bytes) -> list[SecurityInfo]:
    """EF.CardAccess (ICAO 9303-10 §3.11.3): SecurityInfos."""
    return parse_security_infos(data)


def pace_infos(infos: list[SecurityInfo]) -> list[PaceInfo]:
    """The PACEInfos of a SecurityInfos list, in file order."""
    return [info for info in infos if isinstance(info, PaceInfo)]
