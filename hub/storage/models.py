"""Tables of a hub. Migrations in ``migrations/versions`` must produce exactly these.

Every instant is stored as UTC (``UtcDateTime``); an event's ``ts`` is the author's claim and
stays the text it signed. Wire bytes are the canonical bytes of the signed event, so a feed
page is built by concatenation and relaying never re-encodes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class EventRow(Base):
    """Every event this hub holds: own chain, children's chains, relayed, from the parent."""

    __tablename__ = "events"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    author: Mapped[str] = mapped_column(String(20))
    seq: Mapped[int] = mapped_column(BigInteger)
    prev: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(140))
    case_no: Mapped[str | None] = mapped_column(String(40), index=True)
    to: Mapped[str] = mapped_column(Text)  # JSON list of addresses
    wire: Mapped[bytes] = mapped_column(LargeBinary)
    ts: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    via: Mapped[str] = mapped_column(String(20))  # pusher member id, or this hub's own id
    __table_args__ = (UniqueConstraint("author", "seq"),)


class EventBlobRow(Base):
    """Blobs an event names in ``body.materials[].blobs`` (who may download what)."""

    __tablename__ = "event_blobs"
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), primary_key=True)
    blob: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class ChainHeadRow(Base):
    """Head of each chain pushed by its own author (children, and this hub itself)."""

    __tablename__ = "chain_heads"
    author: Mapped[str] = mapped_column(String(20), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    id: Mapped[str] = mapped_column(String(64))


class QuarantineRow(Base):
    """An event refused with its reason (隔离), kept for the operator."""

    __tablename__ = "quarantine"
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str | None] = mapped_column(String(64))
    author: Mapped[str | None] = mapped_column(String(20))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    pusher: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (UniqueConstraint("pusher", "raw_sha256"),)


class EquivocationRow(Base):
    """Evidence: two events signed by one author with one seq."""

    __tablename__ = "equivocations"
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    author: Mapped[str] = mapped_column(String(20))
    seq: Mapped[int] = mapped_column(BigInteger)
    held_id: Mapped[str] = mapped_column(String(64))
    other_id: Mapped[str] = mapped_column(String(64))
    other_wire: Mapped[bytes] = mapped_column(LargeBinary)
    pusher: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (UniqueConstraint("held_id", "other_id"),)


class AlertRow(Base):
    """Something an operator must look at: equivocation, quarantine, a case the fold refused."""

    __tablename__ = "alerts"
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(140))
    detail: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    acknowledged: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (UniqueConstraint("kind", "subject"),)


class FeedHeadRow(Base):
    """Last position allocated in a recipient's feed; its row lock orders the feed."""

    __tablename__ = "feed_heads"
    recipient: Mapped[str] = mapped_column(String(20), primary_key=True)
    pos: Mapped[int] = mapped_column(BigInteger)


class FeedEntryRow(Base):
    """An event in a child's feed at a gap-free position."""

    __tablename__ = "feed_entries"
    recipient: Mapped[str] = mapped_column(String(20), primary_key=True)
    pos: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    __table_args__ = (UniqueConstraint("recipient", "event_id"),)


class OutboxRow(Base):
    """An event to relay to the parent or a metro peer; deleted once it is in their custody."""

    __tablename__ = "outbox"
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    destination: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"))
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str | None] = mapped_column(String(64))  # set when the peer refused it
    detail: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("destination", "event_id"),)


class BlobOutboxRow(Base):
    """A blob named by a relayed event, to upload to that destination after the event."""

    __tablename__ = "blob_outbox"
    destination: Mapped[str] = mapped_column(String(20), primary_key=True)
    blob: Mapped[str] = mapped_column(String(64), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PeerStatusRow(Base):
    """Per destination (parent, peer): health for the operator, lease, cursor, own custody."""

    __tablename__ = "peer_status"
    destination: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_success: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    backlog_count: Mapped[int] = mapped_column(BigInteger, default=0)
    backlog_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    feed_cursor: Mapped[str | None] = mapped_column(String(200))
    own_custody: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class BlobRow(Base):
    """A complete, verified blob on disk."""

    __tablename__ = "blobs"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    length: Mapped[int] = mapped_column(BigInteger)
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime)


class UploadRow(Base):
    """A tus upload: its partial bytes live in the blob store under ``id``."""

    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(BigInteger)
    uploader: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    __table_args__ = (Index(None, "hash", "uploader"),)


class CaseRow(Base):
    """Fold cache of a case hosted here; ``fold`` is the encoded :class:`protocol.case.Case`."""

    __tablename__ = "cases"
    number: Mapped[str] = mapped_column(String(40), primary_key=True)
    state: Mapped[str] = mapped_column(String(30))
    authority: Mapped[str] = mapped_column(String(40))
    matter: Mapped[str] = mapped_column(String(50))
    window: Mapped[str] = mapped_column(String(20))
    pickup: Mapped[str] = mapped_column(String(20))
    fold: Mapped[str] = mapped_column(Text)
    rejected: Mapped[str] = mapped_column(Text, default="[]")  # JSON: events the fold refused
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Open work items of the authority besides the queue, space-separated (hub.services.cases)
    tasks: Mapped[str | None] = mapped_column(String(60))
    __table_args__ = (Index(None, "authority", "state"), Index(None, "authority", "tasks"))


class StaffPasswordRow(Base):
    """A staff member's argon2 hash and the failed-login counter behind the lockout."""

    __tablename__ = "staff_passwords"
    staff_id: Mapped[str] = mapped_column(String(50), primary_key=True)
    hash: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SessionRow(Base):
    """A workbench login; only the SHA-256 of the cookie token is stored."""

    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(50))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class NonceRow(Base):
    """Request nonces seen within the clock window, shared by every hub worker."""

    __tablename__ = "nonces"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    created: Mapped[int] = mapped_column(BigInteger, index=True)


class PeerClockRow(Base):
    """How far a member's clock was off ours on its last signed request (seconds to add
    to its clock to get ours), from the signed ``Tongban-Clock`` header."""

    __tablename__ = "peer_clocks"
    member: Mapped[str] = mapped_column(String(20), primary_key=True)
    skew: Mapped[int] = mapped_column(BigInteger)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ConfigRow(Base):
    """Every signed config adopted, per city (home and metro peers), by serial."""

    __tablename__ = "configs"
    city: Mapped[str] = mapped_column(String(4), primary_key=True)
    serial: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    signed: Mapped[str] = mapped_column(Text)
    adopted_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReceiptDueRow(Base):
    """An event delivered to a department here, awaiting its 送达回执 (``case.received``):
    signed once the event's blobs are all held, then the row goes."""

    __tablename__ = "receipt_due"
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(40))
    since: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class TrackAttemptRow(Base):
    """A wrong 进度查询 code, per client (``c:<address>``) or case (``n:<number>``), kept a
    minute: every hub worker counts the same tries."""

    __tablename__ = "track_attempts"
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(80), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
