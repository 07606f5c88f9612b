"""The collector's tables (SQLAlchemy 2 typed declarative mapping).

Events are stored once per ``(device_id, event_id)``; counts come from :class:`Rollup` rows kept
current at ingest (site, hour, kind, method, age band, sex, birth province), so dashboards and
reports stay fast however long the history. Times are stored in UTC.
Personal data exists only in :class:`Stay` (accommodation notices, the law requires it), and
there only encrypted at rest (``personal_sealed``).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import event as sa_event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
          "pk": "pk_%(table_name)s"}


class Base(DeclarativeBase):
    """Base of every table; the naming convention keeps Alembic migrations portable."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class UnitLevel(enum.StrEnum):
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"


class SiteKind(enum.StrEnum):
    HERITAGE = "heritage"
    HOSPITAL = "hospital"
    ACCOMMODATION = "accommodation"


class Role(enum.StrEnum):
    ADMIN = "admin"
    PROVINCE = "province"
    DISTRICT = "district"
    SITE = "site"
    AUDITOR = "auditor"
    """Reads the audit log and nothing else (docs/privacy.md §3)."""


class Unit(Base):
    """An administrative unit: province → district → commune."""

    __tablename__ = "units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[UnitLevel] = mapped_column(Enum(UnitLevel, native_enum=False, length=16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    parent: Mapped[Unit | None] = relationship(remote_side="Unit.id")


class Site(Base):
    """A heritage site, hospital or accommodation establishment."""

    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[SiteKind] = mapped_column(Enum(SiteKind, native_enum=False, length=16))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    capacity: Mapped[int | None] = mapped_column(Integer)
    close_time: Mapped[str] = mapped_column(String(5), default="23:00")
    """Local time (UTC+07:00) after which visitors who never exited are closed out."""
    unit: Mapped[Unit] = relationship()


class Device(Base):
    """An enrolled edge agent; its identity is its certificate's CN (= ``id``)."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    name: Mapped[str] = mapped_column(String(200), default="")
    signing_public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    """Raw Ed25519 public key: every event of the device must verify under it."""
    cert_fingerprint: Mapped[str | None] = mapped_column(String(64))
    enrolled_at: Mapped[datetime]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    """``online`` / ``offline`` from the retained status and its last will."""
    last_seen: Mapped[datetime | None]
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    """Highest seq stored; the contiguous prefix is ``contiguous_seq``."""
    contiguous_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    gap_since: Mapped[datetime | None]
    """When ``last_seq > contiguous_seq`` began (None without a gap): the ``seq-gap`` alarm is
    raised once the gap outlives the grace period (central.ingest.store)."""
    version: Mapped[str | None] = mapped_column(String(40))
    """As the status sent it (status.v1: at most 40 characters)."""
    outbox_depth: Mapped[int | None] = mapped_column(Integer)
    oldest_undelivered_at: Mapped[datetime | None]
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    revoked_at: Mapped[datetime | None]
    """When the device was revoked (None: never, or before this column existed)."""
    drain_until: Mapped[datetime | None]
    """A *retired* device (revoked to drain, docs/operations.md §3): until this instant the
    ingest still accepts its events that occurred before ``revoked_at``; None: refused at once."""
    generation: Mapped[int] = mapped_column(Integer, default=1)
    """1 at the first enrolment, +1 each time a replacement is enrolled under the same id."""
    seq_base: Mapped[int] = mapped_column(BigInteger, default=0)
    """Added to the device's own ``seq`` to form ``events.seq``: a replacement numbers its
    events from 1 again, and its base lies above every seq the earlier generations stored, so
    the ``(device_id, seq)`` key never collides. ``last_seq``/``contiguous_seq`` count in the
    current generation's own numbering."""
    site: Mapped[Site] = relationship()


class DeviceGeneration(Base):
    """An earlier key generation of a device id, kept when a replacement is enrolled: its
    certificate stays on the CRL, and its seqs stay reserved below the new ``seq_base``."""

    __tablename__ = "device_generations"
    __table_args__ = (UniqueConstraint("device_id", "generation",
                                       name="uq_device_generations_device_generation"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    generation: Mapped[int] = mapped_column(Integer)
    signing_public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    cert_fingerprint: Mapped[str | None] = mapped_column(String(64))
    enrolled_at: Mapped[datetime]
    retired_at: Mapped[datetime]
    seq_base: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class RefusedSeq(Base):
    """A seq the device signed but the ingest refused (clock skew, wrong site, kind…): it can
    never arrive again, so it counts as settled when the ``seq-gap`` alarm looks for holes.
    ``seq`` is stored like ``events.seq`` (with the generation's ``seq_base``)."""

    __tablename__ = "refused_seqs"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


class Event(Base):
    """One check-in event as the device signed it (no personal data: see :class:`Stay`).

    On PostgreSQL the table is partitioned by month on ``occurred_at`` (the time the reports
    count by, the purge ages by and the ingest bounds, :mod:`central.db.partitions`), so the
    primary key carries it: ``(device_id, seq, occurred_at)``. Uniqueness of ``(device_id,
    event_id)`` and ``(device_id, seq)`` across months is kept by :class:`EventKey`, which is
    not partitioned. SQLite (tests, small sites) has the same columns and keys, unpartitioned.
    """

    __tablename__ = "events"
    __table_args__ = (
        # The purge's boundary month and the people search read by time; the counts come from
        # rollups (bench/counts.py checks no request reads this table). Each index here is paid
        # for on every ingested event, so there are no others.
        Index("ix_events_occurred_at", "occurred_at"),
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    occurred_at: Mapped[datetime] = mapped_column(primary_key=True)
    received_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    assurance: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(Integer, default=1)
    age_band: Mapped[str | None] = mapped_column(String(8))
    sex: Mapped[str | None] = mapped_column(String(1))
    birth_province: Mapped[str | None] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    sig: Mapped[str | None] = mapped_column(String(86))
    """The device's signature: a second copy with the same key but another ``sig`` is a replay
    (docs/protocol.md §4.9); Ed25519 is deterministic, so equal content gives equal ``sig``."""


# A table created from the models (tests, the benches) gets the DEFAULT partition the migration
# creates, so no event is ever refused for want of a month (central.db.partitions).
sa_event.listen(Event.__table__, "after_create", DDL(  # type: ignore[no-untyped-call]
    "CREATE TABLE events_default PARTITION OF events DEFAULT").execute_if(dialect="postgresql"))


class EventKey(Base):
    """The dedupe ledger of :class:`Event` (docs/protocol.md §4.9): one narrow row per stored
    event, in a table that is NOT partitioned, so ``(device_id, seq)`` and ``(device_id,
    event_id)`` stay unique whatever month the events fall in (a partitioned table can only
    enforce keys that contain its partition key). The ingest inserts here first with
    ``ON CONFLICT DO NOTHING`` and writes the event only when its key went in; a conflict is
    told apart (duplicate or replay) by ``sig`` without reading the events. The purge deletes
    the keys with their events (``occurred_at``; BRIN on PostgreSQL: rows arrive in time order).
    """

    __tablename__ = "event_keys"
    __table_args__ = (
        UniqueConstraint("device_id", "event_id", name="uq_event_keys_device_event"),
        Index("ix_event_keys_occurred_at", "occurred_at", postgresql_using="brin"),
    )
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36))
    occurred_at: Mapped[datetime]
    sig: Mapped[str | None] = mapped_column(String(86))


class Rollup(Base):
    """Counts per site and hour (UTC) and dimension; updated in the ingest transaction."""

    __tablename__ = "rollups"
    __table_args__ = (
        UniqueConstraint("site_id", "hour", "kind", "method", "age_band", "sex",
                         "birth_province", "insurance", name="uq_rollups_key"),
        Index("ix_rollups_hour", "hour"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    hour: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    age_band: Mapped[str] = mapped_column(String(8), default="")
    sex: Mapped[str] = mapped_column(String(1), default="")
    birth_province: Mapped[str] = mapped_column(String(3), default="")
    """Empty string rather than NULL for "unknown", so the unique key works everywhere."""
    insurance: Mapped[str] = mapped_column(String(16), default="", server_default="")
    """Hospital visits: the insurance lookup's answer (``valid``, ``invalid``, ``unknown``,
    ``not-checked``; docs/protocol.md §4.6), ``paper-card`` for a manual visit counted as
    ``paper-insurance``; empty otherwise. The insured-visit ratio needs it (docs/cccd.md §10)."""
    people: Mapped[int] = mapped_column(BigInteger, default=0)
    """Sum of ``count`` (a group entry of 5 counts 5 people)."""
    events: Mapped[int] = mapped_column(BigInteger, default=0)


class Presence(Base):
    """A visitor inside a site: an entry, paired with its exit by ``subject``."""

    __tablename__ = "presences"
    __table_args__ = (
        Index("ix_presences_open", "site_id", "subject", "exited_at"),
        # Pairing looks presences up by the subjects of a batch: without this index a
        # PostgreSQL planner without statistics scans every presence of the site per batch.
        Index("ix_presences_subject", "subject"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    subject: Mapped[str | None] = mapped_column(String(32))
    people: Mapped[int] = mapped_column(Integer, default=1)
    entered_at: Mapped[datetime | None]
    exited_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(16))
    """``exit``, ``close-time`` (never exited), or ``orphan-exit`` (an exit without entry)."""


class SiteOccupancy(Base):
    """People inside a site now (entries minus exits, after close-outs)."""

    __tablename__ = "site_occupancy"
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    occupancy: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class Stay(Base):
    """An accommodation notice (thông báo lưu trú): stay start and end, deadline, notified."""

    __tablename__ = "stays"
    stay_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    subject: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    expected_departure: Mapped[date | None] = mapped_column(Date)
    ward_or_room: Mapped[str | None] = mapped_column(String(64))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    deadline_at: Mapped[datetime]
    """23:00 local the same day; 08:00 next day for arrivals after 23:00 (docs/cccd.md §9)."""
    notified_at: Mapped[datetime | None]
    notified_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    notice_ref: Mapped[str | None] = mapped_column(String(64))
    """The police portal's reference for the notice (its receipt number), entered when the
    stay is marked notified; on time when ``notified_at <= deadline_at`` (docs/cccd.md §9)."""
    personal_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    """The guest's personal data, encrypted at rest with the collector's data key."""
    personal_erased_at: Mapped[datetime | None]
    """Set by the retention purge when ``personal_sealed`` was emptied (central.purge)."""


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    """Province and district staff see their unit and everything below it."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str] = mapped_column(String(2), default="vi")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sites: Mapped[list[Site]] = relationship(secondary="user_sites")


class WebSession(Base):
    """A logged-in browser session (server side): the cookie carries only ``id``'s secret.

    Logout deletes the row; a password change or deactivation deletes every row of the user,
    so a copied cookie and an open live stream end with it.
    """

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 hex of the random session id kept in the signed cookie."""
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]


class LoginThrottle(Base):
    """Failed-login counter per client address (one row per address, updated atomically)."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime]


class UserSite(Base):
    """Sites a site-staff user is scoped to."""

    __tablename__ = "user_sites"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)


class ApiToken(Base):
    """A read-only API token for a feed (e.g. a provincial operations centre)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the token; the token itself is shown once."""
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Target(Base):
    """A KPI target for the ratio tables (e.g. 0.8 of insured visits by CCCD/VNeID)."""

    __tablename__ = "targets"
    __table_args__ = (UniqueConstraint("unit_id", "metric", name="uq_targets"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)


class ReportSnapshot(Base):
    """A submitted report, frozen: the JSON of its tables and the XLSX rendered from it.

    Later marking of notices or late device backlogs never change it; submitting the same
    period and unit again stores the next ``version``.
    """

    __tablename__ = "report_snapshots"
    __table_args__ = (
        UniqueConstraint("scope_key", "period_kind", "first_day", "last_day", "version",
                         name="uq_report_snapshots_version"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    scope_key: Mapped[str] = mapped_column(String(200))
    """What the report covers: ``unit:<id>``, ``sites:<id,id>`` (site staff) or ``all``."""
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    site_ids: Mapped[list[str]] = mapped_column(JSON)
    """The sites the report counted (who may read the snapshot is checked against them)."""
    period_kind: Mapped[str] = mapped_column(String(16))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    author: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    xlsx: Mapped[bytes] = mapped_column(LargeBinary)


class Alarm(Base):
    """Something staff must look at: seq gap, device offline, capacity, stay overdue."""

    __tablename__ = "alarms"
    __table_args__ = (Index("ix_alarms_open", "kind", "cleared_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"))
    raised_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    acked_at: Mapped[datetime | None]
    """When staff acknowledged the alarm (it stays open until its condition clears)."""
    acked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ack_note: Mapped[str | None] = mapped_column(String(500))


class IngestRejection(Base):
    """A message the ingest refused, with its reason (counted on the device page)."""

    __tablename__ = "ingest_rejections"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(64), index=True)
    topic: Mapped[str] = mapped_column(String(200))
    device_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)


class AuditLog(Base):
    """Every view or export of personal data, every administrative change, every login."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(64))
