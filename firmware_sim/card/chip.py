"""The simulated CCCD chip: an ISO 7816-4 APDU processor with the eMRTD application.

It answers like a real chip at the APDU level: the reader side (``edge_agent``) is exercised
against it but shares no code with it. Security state (selection, BAC/PACE session, secure
messaging, CA) lives only between :meth:`SimulatedChip.power_on` and the next power-off.
Secure messaging rules (ICAO 9303-11 §9.8.7): a plain APDU or an SM error ends the session and
the access rights it granted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from . import bac, lds, oids
from .active_auth import AAKey, internal_authenticate
from .apdu import SW, Command, parse_command, sw_bytes
from .chip_auth import ChipAuthenticator
from .errors import ISOError, SMError, TagLost
from .faults import Faults
from .files import FileSystem
from .pace import STANDARD_PARAMETER_BRAINPOOL_P256R1, MseSetAt, PaceResponder, k_pi
from .profiles import DEFAULT_PROFILE, CardProfile, atr_for, get_profile
from .secure_messaging import SMSession
from .timing import TimingModel

log = logging.getLogger(__name__)

ATR = atr_for(get_profile(DEFAULT_PROFILE))
"""The ATR of a chip with the default profile (no extended length advertised)."""
MAX_SHORT_RESPONSE = 256


class SimulatedChip:
    """One simulated CCCD chip. See the package docstring for the public API."""

    def __init__(
        self,
        files: dict[str, bytes],
        *,
        mrz_information: str,
        can: str,
        aa_key: AAKey | None = None,
        ca_key: ec.EllipticCurvePrivateKey | None = None,
        faults: Faults | None = None,
        timing: TimingModel | None = None,
        rng: Callable[[int], bytes] | None = None,
        refuse_select_mf: bool = False,
        profile: str | CardProfile | None = None,
    ) -> None:
        self.profile = get_profile(profile)
        if refuse_select_mf and not self.profile.refuse_select_mf:
            self.profile = replace(self.profile, refuse_select_mf=True)
        self.atr = atr_for(self.profile)
        self.faults = faults or Faults()
        self.timing = timing or TimingModel.zero()
        self.rng: Callable[[int], bytes] = rng or os.urandom
        self.mrz_information = mrz_information
        self.can = can
        files = dict(files)
        if not self.profile.pace:
            files.pop("CardAccess", None)
        if self.faults.clone:
            aa_key = _fresh_like(aa_key)
            ca_key = ec.generate_private_key(ec.BrainpoolP256R1()) if ca_key else None
        if self.faults.forged_dg is not None:
            files, aa_key, ca_key = forge(files, self.faults.forged_dg, aa_key, ca_key)
        self.aa_key = aa_key
        self.ca_key = ca_key
        self.fs = FileSystem(files, self.profile)
        self.card_time_s = 0.0
        self.last_delay_s = 0.0
        self.apdu_count = 0
        self.bytes_sent = 0
        self._tag_loss_armed = self.faults.tag_loss_after_bytes is not None
        self._powered = False
        self._reset_security()

    # -- power ----------------------------------------------------------------------------
    def power_on(self) -> bytes:
        """Power up (reset all security state) and return the ATR."""
        self._powered = True
        self._reset_security()
        return self.atr

    def power_off(self) -> None:
        """Remove power: every security state is lost."""
        self._powered = False
        self._reset_security()

    @property
    def powered(self) -> bool:
        """True between power_on and power_off / tag loss."""
        return self._powered

    def _reset_security(self) -> None:
        self.fs.reset()
        self._sm: SMSession | None = None
        self.access: str | None = None  # "BAC" or "PACE"
        self.chip_authenticated = False
        self._rnd_icc: bytes | None = None
        self._pace: PaceResponder | None = None
        self._ca = (
            ChipAuthenticator(self.ca_key.private_numbers().private_value) if self.ca_key else None
        )
        self._pending: tuple[SMSession, str] | None = None
        self._pk_ops = 0

    def _abort_sm(self) -> None:
        self._sm = None
        self.access = None
        self.chip_authenticated = False
        self.fs.current = None
        if self._ca:
            self._ca.selected = False

    # -- APDU processing --------------------------------------------------------------------
    def process(self, apdu: bytes) -> bytes:
        """Process one command APDU; return data || SW1 SW2. Raises :class:`TagLost`."""
        if not self._powered:
            raise TagLost("the chip is not powered")
        self.apdu_count += 1
        self._pk_ops = 0
        try:
            resp = self._process(bytes(apdu))
        except Exception:  # never crash: a real chip answers 6F00
            log.exception("internal error in the simulated chip")
            self._abort_sm()
            resp = sw_bytes(SW.NO_PRECISE_DIAGNOSIS)
        delay = self.timing.delay(len(apdu), len(resp)) + self.timing.public_key_ops(self._pk_ops)
        limit = self.faults.tag_loss_after_bytes
        if self._tag_loss_armed and limit is not None and self.bytes_sent + len(resp) > limit:
            self._tag_loss_armed = False
            self.card_time_s += delay
            self.power_off()
            raise TagLost(f"tag lost after {self.bytes_sent} response bytes")
        self.bytes_sent += len(resp)
        self.card_time_s += delay
        self.last_delay_s = delay
        return resp

    def _process(self, apdu: bytes) -> bytes:
        try:
            cmd = parse_command(apdu)
        except ISOError as exc:
            if apdu and apdu[0] & 0x0C:
                self._abort_sm()
            return sw_bytes(exc.sw)
        if cmd.cla & ~0x1C & 0xFF:
            return sw_bytes(SW.CLA_NOT_SUPPORTED)
        if cmd.extended and not self.profile.extended_length:
            if cmd.secure_messaging:
                self._abort_sm()
            return sw_bytes(SW.WRONG_LENGTH)  # extended length is not advertised
        if cmd.secure_messaging:
            session = self._sm
            if session is None:
                return sw_bytes(SW.SM_NOT_SUPPORTED)
            try:
                inner = session.unwrap(cmd)
            except SMError as exc:
                self._abort_sm()
                return sw_bytes(exc.sw)
            if inner.ne > MAX_SHORT_RESPONSE and not self.profile.extended_length:
                self._abort_sm()
                return sw_bytes(SW.WRONG_LENGTH)  # an extended Le inside DO97
            data, sw = self._execute(inner)
            resp = session.wrap(inner.ins, data, sw)
            if len(resp) - 2 > MAX_SHORT_RESPONSE and not self.profile.extended_length:
                self._abort_sm()
                return sw_bytes(SW.WRONG_LENGTH)  # the protected answer does not fit Le 00
        else:
            if self._sm is not None:
                self._abort_sm()
            data, sw = self._execute(cmd)
            resp = data + sw_bytes(sw)
        if self._pending is not None:
            session, access = self._pending
            self._pending = None
            session.corrupt_response_mac = self.faults.wrong_mac
            self._sm = session
            self.access = access
        return resp

    def _execute(self, cmd: Command) -> tuple[bytes, int]:
        try:
            if cmd.chained and cmd.ins != 0x86:
                raise ISOError(SW.LAST_COMMAND_EXPECTED, "command chaining only for GA")
            handler = self._handlers.get(cmd.ins)
            if handler is None:
                raise ISOError(SW.INS_NOT_SUPPORTED, f"INS {cmd.ins:02X}")
            return handler(self, cmd)
        except ISOError as exc:
            return b"", exc.sw

    # -- handlers -----------------------------------------------------------------------------
    def _select(self, cmd: Command) -> tuple[bytes, int]:
        return self.fs.select(cmd, self.access is not None), SW.OK

    def _read_binary(self, cmd: Command) -> tuple[bytes, int]:
        return self.fs.read_binary(cmd, self.access is not None)

    def _read_binary_odd(self, cmd: Command) -> tuple[bytes, int]:
        return self.fs.read_binary_odd(cmd, self.access is not None)

    def _get_challenge(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.p1p2:
            raise ISOError(SW.WRONG_P1P2)
        if cmd.data or cmd.ne != 8:
            raise ISOError(SW.WRONG_LENGTH, "GET CHALLENGE returns 8 bytes")
        if self.profile.bac_needs_application and not self.fs.in_application:
            raise ISOError(SW.CONDITIONS_NOT_SATISFIED, "BAC before SELECT of the application")
        self._rnd_icc = self.rng(8)
        return self._rnd_icc, SW.OK

    def _external_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        """BAC mutual authentication (ICAO 9303-11 §4.3.4)."""
        if cmd.p1p2:
            raise ISOError(SW.WRONG_P1P2)
        rnd_icc, self._rnd_icc = self._rnd_icc, None
        if rnd_icc is None:
            raise ISOError(SW.CONDITIONS_NOT_SATISFIED, "no GET CHALLENGE before")
        keys = bac.BacKeys.from_mrz(self.mrz_information)
        resp, session = bac.mutual_authenticate(keys, rnd_icc, self.rng(16), cmd.data)
        self._pending = (session, "BAC")
        return resp, SW.OK

    def _mse(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.p1p2 == 0xC1A4:  # PACE, ICAO 9303-11 §4.4.4.1
            if not self.profile.pace:
                raise ISOError(SW.WRONG_DATA, "PACE not supported by this chip")
            if self.profile.pace_at_mf_only and self.fs.in_application:
                raise ISOError(SW.CONDITIONS_NOT_SATISFIED, "PACE runs at the MF level")
            at = MseSetAt.parse(cmd.data)
            if at.oid != oids.PACE_ECDH_GM_AES_128:
                raise ISOError(SW.WRONG_DATA, "PACE protocol not supported")
            if at.password_ref is None:
                raise ISOError(SW.WRONG_DATA, "no password reference")
            if (
                at.key_ref is not None
                and int.from_bytes(at.key_ref, "big") != STANDARD_PARAMETER_BRAINPOOL_P256R1
            ):
                raise ISOError(SW.WRONG_DATA, "domain parameters not supported")
            key = k_pi(at.password_ref, self.mrz_information, self.can)
            self._pace = PaceResponder(key, self.rng)
            return b"", SW.OK
        if cmd.p1p2 == 0x41A4:  # Chip Authentication, ICAO 9303-11 §6.2.4
            if self.access is None:
                raise ISOError(SW.SECURITY_NOT_SATISFIED, "CA needs an SM session")
            if self._ca is None:
                raise ISOError(SW.REFERENCED_DATA_NOT_FOUND, "no CA key")
            at = MseSetAt.parse(cmd.data)
            self._ca.set_at(at.oid, at.key_ref)
            return b"", SW.OK
        raise ISOError(SW.WRONG_P1P2, "MSE variant not supported")

    def _general_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.p1p2:
            raise ISOError(SW.WRONG_P1P2)
        if self._pace is not None:
            pace = self._pace
            before = pace.pk_ops
            try:
                resp, session = pace.general_authenticate(cmd)
            except ISOError:
                self._pace = None
                raise
            finally:
                self._pk_ops += pace.pk_ops - before
            if session is not None:
                self._pace = None
                self._pending = (session, "PACE")
            return resp, SW.OK
        if self._ca is not None and self._ca.selected:
            if self.access is None:
                raise ISOError(SW.SECURITY_NOT_SATISFIED)
            resp, session = self._ca.general_authenticate(cmd.data)
            self._pk_ops += 1
            self._pending = (session, self.access)
            self.chip_authenticated = True
            return resp, SW.OK
        raise ISOError(SW.CONDITIONS_NOT_SATISFIED, "no MSE:Set AT before General Authenticate")

    def _internal_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        if self.access is None:
            raise ISOError(SW.SECURITY_NOT_SATISFIED, "AA needs an SM session")
        if cmd.p1p2:
            raise ISOError(SW.WRONG_P1P2)
        if self.aa_key is None:
            raise ISOError(SW.INS_NOT_SUPPORTED, "no AA key")
        self._pk_ops += 1
        return internal_authenticate(self.aa_key, cmd.data, self.rng), SW.OK

    _handlers: ClassVar[dict[int, Callable[[SimulatedChip, Command], tuple[bytes, int]]]] = {
        0xA4: _select,
        0xB0: _read_binary,
        0xB1: _read_binary_odd,
        0x84: _get_challenge,
        0x82: _external_authenticate,
        0x22: _mse,
        0x86: _general_authenticate,
        0x88: _internal_authenticate,
    }


def _fresh_like(key: AAKey | None) -> AAKey | None:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ec.generate_private_key(key.curve)
    if isinstance(key, rsa.RSAPrivateKey):
        return rsa.generate_private_key(65537, key.key_size)
    return None


def forge(
    files: dict[str, bytes],
    dg: int,
    aa_key: AAKey | None,
    ca_key: ec.EllipticCurvePrivateKey | None,
) -> tuple[dict[str, bytes], AAKey | None, ec.EllipticCurvePrivateKey | None]:
    """Alter data group ``dg`` after signing, keeping its structure parseable.

    DG1/DG13: one letter of the name changes (as a forger would). DG2: one byte of the JPEG scan
    data flips. DG14/DG15: the public key is replaced by a forger's key, which the chip then uses,
    so CA/AA succeed but passive authentication fails. Others: the last byte flips.
    """
    name = f"DG{dg}"
    if name not in files:
        raise ValueError(f"cannot forge {name}: not on the card")
    content = bytearray(files[name])
    out = dict(files)
    if dg == 15 and aa_key is not None:
        aa_key = _fresh_like(aa_key)
        assert aa_key is not None
        out[name] = lds.dg15(aa_key.public_key())
        return out, aa_key, ca_key
    if dg == 14 and ca_key is not None:
        ca_key = ec.generate_private_key(ec.BrainpoolP256R1())
        out[name] = lds.dg14(ca_key.public_key(), isinstance(aa_key, ec.EllipticCurvePrivateKey))
        return out, aa_key, ca_key
    if dg in (1, 13):
        # last upper-case ASCII letter A-Y → next letter
        for i in range(len(content) - 1, -1, -1):
            if 0x41 <= content[i] <= 0x59 or 0x61 <= content[i] <= 0x79:
                content[i] += 1
                break
    elif dg == 2:
        sos = bytes(content).find(b"\xff\xda")
        pos = sos + 40 if sos >= 0 and sos + 40 < len(content) - 2 else len(content) // 2
        content[pos] ^= 0x10
    else:
        content[-1] ^= 0x01
    out[name] = bytes(content)
    return out, aa_key, ca_key
