"""Passive authentication of an eMRTD read (ICAO 9303-11 §5.1; ICAO 9303-12 §5, §7).

Checks, each reported on its own (:class:`PassiveAuthResult`):

1. ``dg_hashes``: the hash of every data group *read* (over its exact bytes, tag included)
   equals the value in the LDSSecurityObject (ICAO 9303-10 §4.6.2); a data group read but not
   listed in the SOD fails.
2. ``signed_attrs_digest``: the message-digest signed attribute equals the hash of the eContent
   (RFC 5652 §5.4, §11.2).
3. ``ds_signature``: the Document Signer key verifies the signature over the DER signed
   attributes (RSA PKCS#1 v1.5, RSASSA-PSS, ECDSA; EC keys with named or explicit parameters).
4. ``csca_chain``: the DS certificate is signed by a trusted CSCA found by issuer name and
   authority key identifier (None when no trust store is given). ``issuer_status`` says which
   of four cases holds: ``anchored``; ``no-trust-store``; ``unknown-csca`` (no trusted CSCA has
   the DS's issuer name: the read is only ``chip-signed``); ``forged-signer`` (the DS names a
   trusted CSCA as its issuer but no trusted key of that name verifies its signature: a forgery,
   never accepted, whatever the policy says about unknown CSCAs).
5. ``validity``, under the **chain model** (also called the signing-time or modified shell
   model): a certificate must have been valid when it was used, not when the card is read.

   - The Document Signer must have been valid at the *reference time*: the CMS signing-time
     attribute when EF.SOD has one (RFC 5652 §11.3), otherwise the document's date of issue
     when the caller knows it (DG13 field 11 on a CCCD, docs/cccd.md §4), compared by calendar
     day. Without either, only that the DS certificate was not dated after the read is checked.
   - The CSCA must have been valid when it issued the DS certificate (at the DS's notBefore).
   - A DS or CSCA certificate expiring later does not matter: a card issued at 58 or later
     never expires (docs/cccd.md §6) while its DS certificate does, typically within ten years.
     ICAO 9303-12 §5 sizes DS validity as key-usage period plus document validity, which has no
     end for such cards; only the chain model keeps them readable.

   A DS certificate dated after the read, or not valid when it signed, fails ``validity``.

Nothing passes by default: any exception inside a check fails it with a reason.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from edge_agent.icao.sod import (
    CertificateParts,
    SecurityObject,
    certificate_parts,
    digest,
    parse_sod,
    verify_signature,
)
from edge_agent.icao.trust import TrustAnchor, TrustStore

IssuerStatus = Literal["anchored", "no-trust-store", "unknown-csca", "forged-signer"]


@dataclass(slots=True)
class PassiveAuthResult:
    """Per-check outcome of passive authentication; ``reasons`` explains every failure."""

    hash_algorithm: str
    signer: str
    dg_hashes: dict[int, bool] = field(default_factory=dict)
    signed_attrs_digest: bool = False
    ds_signature: bool = False
    csca_chain: bool | None = None
    validity: bool = False
    csca: str | None = None
    issuer_status: IssuerStatus = "no-trust-store"
    validity_reference: str = "unknown"
    reasons: list[str] = field(default_factory=list)

    @property
    def forged_signer(self) -> bool:
        """The DS names a trusted CSCA as issuer but its signature does not verify."""
        return self.issuer_status == "forged-signer"

    @property
    def hashes_ok(self) -> bool:
        """At least one data group checked and every checked hash matches."""
        return bool(self.dg_hashes) and all(self.dg_hashes.values())

    @property
    def chip_signed(self) -> bool:
        """DG hashes, message digest and DS signature good (assurance ``chip-signed``)."""
        return self.hashes_ok and self.signed_attrs_digest and self.ds_signature

    @property
    def chip_anchored(self) -> bool:
        """Everything good and the DS chains to a trusted CSCA (assurance ``chip-anchored``)."""
        return self.chip_signed and self.validity and self.csca_chain is True

    @property
    def assurance(self) -> str | None:
        """``chip-anchored``, ``chip-signed`` or None when the chip data cannot be trusted."""
        if self.forged_signer:
            return None
        if self.chip_anchored:
            return "chip-anchored"
        if self.chip_signed:
            return "chip-signed"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hash_algorithm": self.hash_algorithm,
            "signer": self.signer,
            "dg_hashes": {str(k): v for k, v in sorted(self.dg_hashes.items())},
            "signed_attrs_digest": self.signed_attrs_digest,
            "ds_signature": self.ds_signature,
            "csca_chain": self.csca_chain,
            "csca": self.csca,
            "issuer_status": self.issuer_status,
            "validity": self.validity,
            "validity_reference": self.validity_reference,
            "chip_signed": self.chip_signed,
            "chip_anchored": self.chip_anchored,
            "reasons": list(self.reasons),
        }


def _aware(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _valid_at(parts: CertificateParts, at: datetime | date, label: str, when: str,
              reasons: list[str]) -> bool:
    """Whether ``parts`` was valid at ``at`` (a date: any moment of that calendar day, UTC)."""
    if isinstance(at, datetime):
        early, late = at < parts.not_before, at > parts.not_after
    else:
        early = at < parts.not_before.astimezone(UTC).date()
        late = at > parts.not_after.astimezone(UTC).date()
    if early:
        reasons.append(f"validity: {label} not valid before {parts.not_before.isoformat()}, "
                       f"after {when}")
        return False
    if late:
        reasons.append(f"validity: {label} expired {parts.not_after.isoformat()}, before {when}")
        return False
    return True


def _check_validity(ds: CertificateParts, anchor: TrustAnchor | None, now: datetime,
                    signing_time: datetime | None, issued_on: date | None,
                    result: PassiveAuthResult) -> bool:
    """The chain model (module docstring, check 5)."""
    reasons = result.reasons
    ok = True
    if ds.not_before > now:
        reasons.append(f"validity: document signer certificate not valid before "
                       f"{ds.not_before.isoformat()}, after this read")
        ok = False
    reference: datetime | date | None = signing_time or issued_on
    if signing_time is not None:
        result.validity_reference = f"signing time {signing_time.isoformat()}"
        when = "EF.SOD was signed"
    elif issued_on is not None:
        result.validity_reference = f"date of issue {issued_on.isoformat()}"
        when = f"the document was issued ({issued_on.isoformat()})"
    else:
        result.validity_reference = "unknown: no signing time and no date of issue"
        when = ""
    if reference is not None:
        ok = _valid_at(ds, reference, "document signer certificate", when, reasons) and ok
    if anchor is not None:
        ok = _valid_at(anchor.parts, ds.not_before, f"CSCA {anchor.subject!r}",
                       "it issued the document signer certificate", reasons) and ok
    return ok


def _check_dg_hashes(
    sod: SecurityObject, data_groups: dict[int, bytes], result: PassiveAuthResult
) -> None:
    if not data_groups:
        result.reasons.append("dg_hashes: no data group to check")
    for number in sorted(data_groups):
        try:
            expected = sod.dg_hashes.get(number)
            if expected is None:
                result.dg_hashes[number] = False
                result.reasons.append(f"dg_hashes: DG{number} is not listed in the SOD")
                continue
            actual = digest(sod.hash_algorithm, bytes(data_groups[number]))
            ok = hmac.compare_digest(actual, expected)
            result.dg_hashes[number] = ok
            if not ok:
                result.reasons.append(f"dg_hashes: DG{number} hash does not match the SOD")
        except Exception as exc:
            result.dg_hashes[number] = False
            result.reasons.append(f"dg_hashes: DG{number}: {type(exc).__name__}: {exc}")


def verify(
    sod: SecurityObject,
    data_groups: dict[int, bytes],
    trust: TrustStore | None,
    at: datetime | None = None,
    *,
    issued_on: date | None = None,
) -> PassiveAuthResult:
    """Passive authentication (ICAO 9303-11 §5.1) of ``data_groups`` (number → exact bytes read).

    ``trust`` None means no CSCA is configured: ``csca_chain`` stays None and the best outcome is
    ``chip_signed``. ``at`` (default now, naive taken as UTC) is the time of the read;
    ``issued_on`` the document's date of issue, the validity reference when EF.SOD carries no
    signing time (chain model, module docstring).
    """
    when = _aware(at)
    try:
        signer = sod.signer_subject
    except Exception:
        signer = "?"
    result = PassiveAuthResult(hash_algorithm=sod.hash_algorithm, signer=signer)
    reasons = result.reasons
    _check_dg_hashes(sod, data_groups, result)

    signed = sod.signed_data
    try:
        if signed.message_digest is None:
            reasons.append("signed_attrs_digest: no message-digest attribute")
        else:
            expected = digest(signed.digest_algorithm, signed.content)
            result.signed_attrs_digest = hmac.compare_digest(expected, signed.message_digest)
            if not result.signed_attrs_digest:
                reasons.append(
                    "signed_attrs_digest: message-digest attribute does not match the eContent"
                )
    except Exception as exc:
        reasons.append(f"signed_attrs_digest: {type(exc).__name__}: {exc}")

    ds: CertificateParts | None = None
    try:
        ds = certificate_parts(sod.signer_certificate_der)
        if signed.signed_attrs is None:
            raise ValueError("no signed attributes to verify")
        verify_signature(ds.spki, signed.signature_algorithm, signed.signed_attrs,
                         signed.signature)
        result.ds_signature = True
    except Exception as exc:
        reasons.append(f"ds_signature: {getattr(exc, 'reason', None) or exc}")

    anchor: TrustAnchor | None = None
    if trust is not None:
        try:
            if ds is None:
                raise ValueError("document signer certificate unreadable")
            anchor, chain_reasons = trust.verify_issued(ds)
            result.csca_chain = anchor is not None
            if anchor is not None:
                result.csca = anchor.subject
                result.issuer_status = "anchored"
            elif trust.named_issuers(ds):
                result.issuer_status = "forged-signer"
                aki = ds.authority_key_identifier
                reasons.append(
                    f"csca_chain: forged document signer: it names the trusted CSCA "
                    f"{ds.issuer!r} as issuer but no trusted key of that name verifies its "
                    f"signature" + (f" (authority key id {aki.hex()}; a new key of that CSCA "
                                    f"belongs in the trust folder first)" if aki else ""))
            else:
                result.issuer_status = "unknown-csca"
            reasons.extend(f"csca_chain: {r}" for r in chain_reasons)
        except Exception as exc:
            result.csca_chain = False
            result.issuer_status = "unknown-csca"
            reasons.append(f"csca_chain: {type(exc).__name__}: {exc}")

    try:
        if ds is None:
            raise ValueError("document signer certificate unreadable")
        result.validity = _check_validity(ds, anchor, when, signed.signing_time, issued_on,
                                          result)
    except Exception as exc:
        result.validity = False
        reasons.append(f"validity: {type(exc).__name__}: {exc}")
    return result


def inspect_sod(
    sod_bytes: bytes,
    dgs: dict[int, bytes],
    trust: TrustStore | None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """JSON-ready summary for ``edge-agent inspect sod``.

    ``dg_hashes`` lists every DG of the SOD (``null`` when its bytes were not given) and every DG
    given. Raises :class:`~edge_agent.icao.sod.SodError` when ``sod_bytes`` is not a valid EF.SOD.
    """
    sod = parse_sod(sod_bytes)
    result = verify(sod, dgs, trust, at)
    dg_view: dict[str, bool | None] = {}
    for number in sorted(set(sod.dg_hashes) | set(dgs)):
        dg_view[str(number)] = result.dg_hashes.get(number)
    return {
        "hash_algorithm": sod.hash_algorithm,
        "dg_hashes": dg_view,
        "signature_valid": result.ds_signature and result.signed_attrs_digest,
        "signature_algorithm": sod.signed_data.signature_algorithm.name,
        "signer": result.signer,
        "csca_chain": result.csca_chain,
        "csca": result.csca,
        "issuer_status": result.issuer_status,
        "validity": result.validity,
        "validity_reference": result.validity_reference,
        "lds_version": sod.lds_version,
        "assurance": result.assurance,
        "reasons": list(result.reasons),
    }
