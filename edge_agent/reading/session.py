"""A chip reading session: open access, read, clone-check, verify (ICAO 9303-11 §4, §5, §6).

Order of work, ICAO's (9303-10 §3.6, 9303-11 §4.2-§4.4), with the fewest APDUs:

1. At the MF: EF.CardAccess in plain, named by its short EF identifier in READ BINARY, or
   selected by FID ``011C`` when the chip refuses that (SELECT MF is never sent: some chips
   answer 6D00, docs/cccd.md §2).
2. PACE at the MF with the CAN when the chip offers PACE (with MRZ keys when there is no CAN),
   then SELECT the eMRTD application under secure messaging. Without PACE (no EF.CardAccess, or
   PACE failed): a plain SELECT of the application first, then BAC with the MRZ keys (a chip
   answers GET CHALLENGE with 6985 while the application is not selected).
3. Each file named by its short EF identifier in its first READ BINARY (no separate SELECT),
   chunks of ``policy.max_chunk`` bytes, capped to what short APDUs carry unless the ATR
   advertises extended length (:mod:`edge_agent.icao.atr`).
3. DG14 first: Chip Authentication re-keys secure messaging, so every later file is read under
   keys only the genuine chip can derive. Without CA, Active Authentication over DG15.
4. EF.SOD, then passive authentication of every data group read.

A tag loss (the card leaves the field) re-opens access with the key that worked, repeats CA, and
resumes each file from the byte where it stopped; retries are bounded and the whole read has a
deadline. Any failure yields a :class:`ReadResult` with a reason and no identity.

Errors are handled by type: every failure of the protocol code is an
:class:`~edge_agent.icao.errors.IcaoError` (status words typed by :mod:`edge_agent.icao.status`),
and :func:`failure_for` maps its class to the :class:`FailureReason` in one table.
"""

from __future__ import annotations

import logging
import os
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

from drivers.card_reader import CardLostError, CardReader, NoCardError, ReaderError
from edge_agent.cccd import CccdError, Sex, parse_dg13, parse_td1
from edge_agent.icao import files, lds
from edge_agent.icao.active_auth import active_authenticate
from edge_agent.icao.apdu import ApduError
from edge_agent.icao.atr import read_chunk
from edge_agent.icao.bac import BacError, open_bac
from edge_agent.icao.chip_auth import ChipAuthError, chip_authenticate
from edge_agent.icao.errors import IcaoError
from edge_agent.icao.files import FileReadError
from edge_agent.icao.pace import PaceError, PasswordKind, open_pace
from edge_agent.icao.passive_auth import verify
from edge_agent.icao.secure_messaging import SecureChannel, SecureMessagingError
from edge_agent.icao.security_infos import pace_infos, parse_card_access
from edge_agent.icao.sod import parse_sod
from edge_agent.icao.status import CardStatusError, NotFound, SecureMessagingRejected
from edge_agent.icao.trust import TrustStore
from edge_agent.reading.key_material import KeyMaterial
from edge_agent.reading.policy import CloneCheck, ReadPolicy
from edge_agent.reading.result import (
    Assurance,
    Check,
    CheckStatus,
    ChipIdentity,
    FailureReason,
    ReadResult,
)

log = logging.getLogger(__name__)

Rng = Callable[[int], bytes]
SOD = 0x1D  # short EF identifier of EF.SOD (ICAO 9303-10 §3.6.2)
REQUIRED_GROUPS = {1, 13}

_FAILURES: tuple[tuple[type[Exception], FailureReason], ...] = (
    (NotFound, FailureReason.FILE_MISSING),
    (SecureMessagingRejected, FailureReason.SECURE_MESSAGING),
    (SecureMessagingError, FailureReason.SECURE_MESSAGING),
    (CardStatusError, FailureReason.CARD_ERROR),
    (ApduError, FailureReason.CARD_ERROR),
    (PaceError, FailureReason.ACCESS_DENIED),
    (BacError, FailureReason.ACCESS_DENIED),
    (ChipAuthError, FailureReason.CLONE_SUSPECTED),
    (FileReadError, FailureReason.MALFORMED_DATA),
    (IcaoError, FailureReason.MALFORMED_DATA),
    (CccdError, FailureReason.MALFORMED_DATA),
)
"""Error class → failure reason, most specific first (the one place errors become reasons)."""


def failure_for(exc: Exception) -> FailureReason:
    """The failure reason of an error of the protocol or CCCD code, by its class."""
    for cls, reason in _FAILURES:
        if isinstance(exc, cls):
            return reason
    return FailureReason.INTERNAL_ERROR


def _reason(exc: Exception) -> str:
    if isinstance(exc, ApduError):
        return f"malformed response: {exc.reason}"
    return str(getattr(exc, "reason", None) or exc)


class _Failure(Exception):
    def __init__(self, code: FailureReason, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _DeadlineExceeded(Exception):
    pass


class _CountingChannel:
    """The reader as a card channel that counts APDUs and bytes and enforces the deadline."""

    def __init__(self, reader: CardReader, deadline: float) -> None:
        self.reader = reader
        self.deadline = deadline
        self.apdus = 0
        self.bytes_in = 0

    def transmit(self, apdu: bytes) -> bytes:
        if time.monotonic() > self.deadline:
            raise _DeadlineExceeded
        self.apdus += 1
        response = self.reader.transmit(apdu)
        self.bytes_in += len(response)
        return response


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


class ChipSession:
    """One read of one card; use :func:`read_chip`."""

    def __init__(self, reader: CardReader, keys: KeyMaterial, policy: ReadPolicy,
                 trust: TrustStore | None, *, rng: Rng = os.urandom,
                 now: Callable[[], datetime] | None = None) -> None:
        self.reader = reader
        self.keys = keys
        self.policy = policy
        self.trust = trust
        self.rng = rng
        self.now = now or (lambda: datetime.now(UTC))
        self.result = ReadResult()
        self.channel = _CountingChannel(reader, time.monotonic() + policy.deadline_s)
        self.secure: SecureChannel | None = None
        self.card_access: bytes | None = None
        self.card_access_read = False
        self.working: tuple[str, str] | None = None
        self.done: dict[int, bytes] = {}
        self.partial: dict[int, bytes] = {}
        self.stats = files.ReadStats()
        self.ca_pending = False
        self.ca_wanted = policy.clone_check is not CloneCheck.NONE
        self.dg14: lds.Dg14 | None = None
        self.atr: bytes | None = None
        self.chunk = read_chunk(None, policy.max_chunk)
        self.application_selected = False  # in plain, before BAC; reset by every power-up

    # -- bookkeeping ------------------------------------------------------------------------------

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = (time.perf_counter() - start) * 1000
            self.result.timings_ms[step] = self.result.timings_ms.get(step, 0.0) + elapsed

    @contextmanager
    def _failing_as(self, prefix: str = "", code: FailureReason | None = None) -> Iterator[None]:
        """Turn an error of the protocol or CCCD code into a failure, by its class."""
        try:
            yield
        except (IcaoError, CccdError) as exc:
            raise _Failure(code or failure_for(exc), prefix + _reason(exc)) from None

    def run(self) -> ReadResult:
        result = self.result
        start = time.perf_counter()
        try:
            self._read_with_retries()
            with self._timed("passive_authentication"):
                self._verify()
        except _Failure as failure:
            result.failure, result.reason = failure.code, failure.reason
        except Exception as exc:  # never crash the gate: report, log, and fail the read
            log.exception("chip read failed unexpectedly")
            result.failure = FailureReason.INTERNAL_ERROR
            result.reason = f"{type(exc).__name__}: {exc}"
        if result.failure is not None:
            result.assurance = None
            result.identity = None
            result.face_image = None
        result.timings_ms["total"] = (time.perf_counter() - start) * 1000
        result.apdu_count = self.channel.apdus
        result.bytes_read = sum(len(v) for v in self.done.values())
        return result

    # -- reading with tag-loss recovery -----------------------------------------------------------

    def _read_with_retries(self) -> None:
        attempt = 0
        while True:
            try:
                if attempt:
                    self._reconnect()
                self._attempt()
                return
            except CardLostError as exc:
                attempt += 1
                self.result.retries = attempt
                if attempt > self.policy.max_retries:
                    raise _Failure(FailureReason.CARD_LOST,
                                   f"card lost {attempt} times: {exc}") from None
                log.info("tag lost (%s); resuming, attempt %d", exc, attempt + 1)
            except _DeadlineExceeded:
                raise _Failure(FailureReason.DEADLINE,
                               f"read not finished within {self.policy.deadline_s:g} s") from None

    def _reconnect(self) -> None:
        self.secure = None
        with self._timed("reconnect"):
            while True:
                remaining = self.channel.deadline - time.monotonic()
                if remaining <= 0:
                    raise _DeadlineExceeded
                try:
                    presence = self.reader.connect(
                        timeout=min(remaining, self.policy.reconnect_timeout_s))
                    self.application_selected = False
                    self.set_atr(getattr(presence, "atr", None))
                    return
                except NoCardError:
                    continue
                except ReaderError as exc:
                    raise _Failure(FailureReason.CARD_LOST, f"reader: {exc}") from None

    def set_atr(self, atr: bytes | None) -> None:
        """The card's ATR: extended length only when it advertises it."""
        self.atr = atr
        self.chunk = read_chunk(atr, self.policy.max_chunk)

    def _attempt(self) -> None:
        try:
            self._attempt_steps()
        except SecureMessagingError as exc:
            if self.ca_pending:
                self._ca_failed(f"chip could not answer under the CA keys: {exc.reason}")
            raise _Failure(failure_for(exc), exc.reason) from None
        except SecureMessagingRejected as exc:
            if self.ca_pending:
                self._ca_failed(f"chip rejected secure messaging under the CA keys: {exc}")
            raise _Failure(failure_for(exc), exc.reason) from None
        except IcaoError as exc:
            raise _Failure(failure_for(exc), _reason(exc)) from None

    def _attempt_steps(self) -> None:
        with self._timed("open_access"):
            self._open_access()
        for group in self.policy.data_groups():
            if group not in self.done:
                self._read_group(group)
            if group == 14 and self.ca_wanted:
                self._chip_authentication()  # again after every re-open: a new session
        if SOD not in self.done:
            self._read_file(SOD, files.FID_SOD)
        if self.ca_pending:
            self._prove_ca()
        self._active_authentication()

    # -- access -----------------------------------------------------------------------------------

    def _read_card_access(self) -> bytes | None:
        """EF.CardAccess at the MF; None when the chip has none (or refuses it): BAC only."""
        if not self.card_access_read:
            try:
                self.card_access = files.read_card_access(self.channel, self.chunk)
            except CardStatusError as exc:
                log.info("no EF.CardAccess (%s): BAC only", exc.reason)
                self.card_access = None
            except (FileReadError, ApduError) as exc:
                raise _Failure(FailureReason.MALFORMED_DATA,
                               f"EF.CardAccess: {_reason(exc)}") from None
            self.card_access_read = True
        return self.card_access

    def _candidates(self) -> list[tuple[str, str]]:
        card_access = self._read_card_access()
        has_pace = False
        if card_access:
            try:
                has_pace = bool(pace_infos(parse_card_access(card_access)))
            except IcaoError:
                has_pace = False
        keys = [key.mrz_information for key in self.keys.bac_keys]
        candidates: list[tuple[str, str]] = []
        if has_pace and self.keys.can:
            candidates.append(("pace-can", self.keys.can))
        elif has_pace:
            candidates += [("pace-mrz", key) for key in keys]
        candidates += [("bac", key) for key in keys]
        if not candidates and self.keys.can:
            raise _Failure(FailureReason.NO_KEY_MATERIAL,
                           "the chip offers no PACE (no EF.CardAccess) and BAC needs the MRZ")
        return candidates

    def _open(self, method: str, password: str) -> SecureChannel:
        """Authenticate: BAC after a plain SELECT of the application, PACE at the MF."""
        if method == "bac":
            if not self.application_selected:
                files.select_application(self.channel)  # plain, before BAC (9303-11 §4.3)
                self.application_selected = True
            return SecureChannel(self.channel, open_bac(self.channel, password, self.rng))
        assert self.card_access is not None
        kind: PasswordKind = "can" if method == "pace-can" else "mrz"
        session = open_pace(self.channel, password, kind, self.card_access, self.rng)
        return SecureChannel(self.channel, session)

    def _open_access(self) -> None:
        candidates = [self.working] if self.working else self._candidates()
        if not candidates:
            raise _Failure(FailureReason.NO_KEY_MATERIAL, "no CAN and no MRZ key to try")
        errors: list[str] = []
        for method, password in candidates:
            try:
                self.secure = self._open(method, password)
            except IcaoError as exc:
                errors.append(f"{method}: {_reason(exc)}")
                continue
            self.working = (method, password)
            self.result.access = method
            if method != "bac":  # PACE ran at the MF: select under SM (9303-11 §4.4)
                files.select_application(self.secure)
            return
        raise _Failure(FailureReason.ACCESS_DENIED, "; ".join(errors))

    # -- files ------------------------------------------------------------------------------------

    def _read_group(self, group: int) -> None:
        try:
            self._read_file(group, files.FID_DG[group])
        except _Failure as failure:
            if failure.code is FailureReason.FILE_MISSING and group not in REQUIRED_GROUPS:
                log.info("DG%d not present", group)
                return
            raise

    def _read_file(self, key: int, fid: int) -> None:
        assert self.secure is not None
        prefix = self.partial.pop(key, b"")
        with self._timed("read"):
            try:
                data = files.read_file(
                    self.secure, fid, self.chunk, prefix=prefix, stats=self.stats,
                    sfi=key if self.policy.use_short_ef else None)
            except CardLostError:
                self.partial[key] = bytes(self.stats.partial)
                raise
            except NotFound:
                raise _Failure(FailureReason.FILE_MISSING, f"file {fid:04X} not found") from None
            except FileReadError as exc:
                raise _Failure(failure_for(exc), f"file {fid:04X}: {exc.reason}") from None
        self.done[key] = data
        self._settle_ca()

    # -- clone checks -----------------------------------------------------------------------------

    def _ca_failed(self, reason: str) -> None:
        self.result.checks["chip_authentication"] = Check.failed(reason)
        raise _Failure(FailureReason.CLONE_SUSPECTED, f"Chip Authentication: {reason}")

    def _settle_ca(self) -> None:
        """A file read under the new keys proves the chip holds the DG14 private key."""
        if self.ca_pending:
            self.ca_pending = False
            self.result.checks["chip_authentication"] = Check.passed(
                "answered under keys agreed with the DG14 public key")

    def _prove_ca(self) -> None:
        """Nothing was left to read after CA: one short READ BINARY under the new keys."""
        assert self.secure is not None
        files.read_binary(self.secure, 0, 1, sfi=1)
        self._settle_ca()

    def _chip_authentication(self) -> None:
        data = self.done.get(14)
        if data is None:
            self.result.checks["chip_authentication"] = Check.not_run("DG14 not present")
            return
        with self._failing_as("DG14: "):
            self.dg14 = self.dg14 or lds.parse_dg14(data)
        if not self.dg14.chip_authentication_public_keys:
            self.result.checks["chip_authentication"] = Check.not_run("DG14 offers no CA key")
            return
        assert self.secure is not None
        with self._timed("chip_authentication"):
            try:
                session = chip_authenticate(self.secure, self.dg14, self.rng)
            except IcaoError as exc:
                self._ca_failed(_reason(exc))
        self.secure = SecureChannel(self.channel, session)
        self.ca_pending = True
        self.result.checks.pop("chip_authentication", None)

    def _active_authentication(self) -> None:
        ca = self.result.checks.get("chip_authentication")
        wanted = self.policy.clone_check is CloneCheck.BOTH or (
            self.policy.clone_check is CloneCheck.CHIP_AUTHENTICATION
            and (ca is None or ca.status is not CheckStatus.PASSED))
        if not wanted:
            reason = ("policy: no clone check" if self.policy.clone_check is CloneCheck.NONE
                      else "Chip Authentication passed")
            self.result.checks["active_authentication"] = Check.not_run(reason)
            return
        if 15 not in self.done:
            self.result.checks["active_authentication"] = Check.not_run("DG15 not present")
            return
        with self._failing_as("DG15: "):
            dg15 = lds.parse_dg15(self.done[15])
        info = self.dg14.active_authentication_info if self.dg14 else None
        assert self.secure is not None
        with self._timed("active_authentication"):
            outcome = active_authenticate(self.secure, dg15.public_key, info, self.rng)
        if not outcome.valid:
            self.result.checks["active_authentication"] = Check.failed(outcome.reason)
            raise _Failure(FailureReason.CLONE_SUSPECTED,
                           f"Active Authentication: {outcome.reason}")
        self.result.checks["active_authentication"] = Check.passed(outcome.reason)

    # -- verification -----------------------------------------------------------------------------

    def _verify(self) -> None:
        result = self.result
        groups = {k: v for k, v in self.done.items() if k != SOD}
        result.data_groups = dict(groups)
        with self._failing_as("EF.SOD: "):
            sod = parse_sod(self.done[SOD])
        pa = verify(sod, groups, self.trust, at=self.now(), issued_on=self._issued_on())
        result.issuer_status = pa.issuer_status
        result.validity_reference = pa.validity_reference
        reasons = "; ".join(pa.reasons)
        detail = {str(k): v for k, v in sorted(pa.dg_hashes.items())}
        result.checks["dg_hashes"] = (Check.passed(pa.hash_algorithm, **detail) if pa.hashes_ok
                                      else Check.failed(reasons or "no data group", **detail))
        signature_ok = pa.ds_signature and pa.signed_attrs_digest
        result.checks["ds_signature"] = (Check.passed(pa.signer) if signature_ok
                                         else Check.failed(reasons))
        if pa.csca_chain is None:
            result.checks["csca_chain"] = Check.not_run("no trust store")
        elif pa.csca_chain and pa.validity:
            result.checks["csca_chain"] = Check.passed(pa.csca or "")
        else:
            result.checks["csca_chain"] = Check.failed(reasons)
        if not pa.hashes_ok:
            bad = sorted(k for k, ok in pa.dg_hashes.items() if not ok)
            raise _Failure(FailureReason.DG_HASH_MISMATCH,
                           f"data groups {bad} do not match EF.SOD" if bad else reasons)
        if not signature_ok:
            raise _Failure(FailureReason.SIGNATURE_INVALID, reasons)
        if pa.forged_signer:
            raise _Failure(FailureReason.SIGNATURE_INVALID, reasons)
        if not pa.validity:
            raise _Failure(FailureReason.SIGNER_EXPIRED, reasons)
        if pa.csca_chain is not True and self.policy.require_csca_chain:
            raise _Failure(FailureReason.CSCA_UNTRUSTED, reasons or "no trust store")
        identity = self._identity()
        result.identity = identity
        result.assurance = (Assurance.CHIP_ANCHORED if pa.csca_chain is True
                            else Assurance.CHIP_SIGNED)
        self._compare_with_qr(identity)
        if 2 in self.done:
            with self._failing_as("DG2: "):
                face = lds.parse_dg2(self.done[2]).image
            result.face_image, result.face_mime = face.image, face.mime_type

    def _issued_on(self) -> date | None:
        """DG13's date of issue (field 11, ``dd/mm/yyyy``): the chain model's reference time."""
        if 13 not in self.done:
            return None
        try:
            text = parse_dg13(self.done[13]).issue_date
            return datetime.strptime(text or "", "%d/%m/%Y").date()
        except (CccdError, IcaoError, ValueError):
            return None  # unparseable here: the identity step reports it

    def _identity(self) -> ChipIdentity:
        with self._failing_as(code=FailureReason.MALFORMED_DATA):
            dg1 = lds.parse_dg1(self.done[1])
            if not dg1.is_td1:
                raise _Failure(FailureReason.MALFORMED_DATA, "DG1 does not hold a TD1 MRZ")
            mrz = parse_td1(*dg1.lines)
            dg13 = parse_dg13(self.done[13]) if 13 in self.done else None
        if mrz.id_number is None:
            raise _Failure(FailureReason.MALFORMED_DATA, "DG1 holds no 12-digit ID number")
        if dg13 is not None:
            if dg13.id_number != mrz.id_number.value:
                raise _Failure(FailureReason.INCONSISTENT_DATA,
                               "DG13 and DG1 name different ID numbers")
            dob = dg13.birth_date()  # possibly partial: compare what both know
            if dob is not None and not dob.agrees_with(mrz.birth_date):
                raise _Failure(FailureReason.INCONSISTENT_DATA,
                               "DG13 and DG1 give different dates of birth")
        name = (dg13.full_name if dg13 and dg13.full_name
                else f"{mrz.surname} {mrz.given_names}".strip())
        return ChipIdentity(
            id_number=mrz.id_number, full_name=name, date_of_birth=mrz.date_of_birth,
            sex=mrz.sex, nationality=mrz.nationality, document_number=mrz.document_number,
            date_of_expiry=mrz.date_of_expiry, mrz=mrz, dg13=dg13)

    def _compare_with_qr(self, identity: ChipIdentity) -> None:
        qr = self.keys.qr
        if qr is None:
            return
        mismatch = self.result.qr_mismatch
        if qr.id_text != identity.id_number.value:
            mismatch.append("id_number")
        if not qr.birth_date.agrees_with(identity.mrz.birth_date):
            mismatch.append("date_of_birth")
        if identity.dg13 is not None and identity.dg13.full_name and \
                _fold(qr.full_name) != _fold(identity.dg13.full_name):
            mismatch.append("full_name")
        if qr.sex is not None and identity.sex is not None and qr.sex is not identity.sex:
            mismatch.append("sex")


def read_chip(reader: CardReader, keys: KeyMaterial, policy: ReadPolicy | None = None,
              trust: TrustStore | None = None, *, rng: Rng = os.urandom,
              now: Callable[[], datetime] | None = None, connect: bool = True,
              atr: bytes | None = None) -> ReadResult:
    """Read and verify the card in ``reader``; never raises for card or data problems.

    With ``connect=False`` the caller has powered the card; ``atr`` is then what it answered
    (without it, only short APDUs are used).
    """
    session = ChipSession(reader, keys, policy or ReadPolicy(), trust, rng=rng, now=now)
    session.set_atr(atr)
    if connect:
        try:
            with session._timed("connect"):
                presence = reader.connect(timeout=policy.reconnect_timeout_s if policy else 2.0)
            session.set_atr(getattr(presence, "atr", None))
        except ReaderError as exc:
            session.result.failure = FailureReason.CARD_LOST
            session.result.reason = f"no card: {exc}"
            return session.result
    return session.run()


__all__ = ["ChipSession", "Sex", "read_chip"]
