"""The station's tables (SQLAlchemy Core). The alembic revisions under ``migrations/`` create
exactly these; a test compares the two.

Times the station records itself (``received_at``, ``updated_at`` …) are UTC ISO 8601 text,
so they sort as text; ``ts`` is the event's own claim, as signed. Rate-limit counters use
epoch seconds.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

#: Every event this station holds: its own chain and what it received from its feed.
events = Table(
    "events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("pos", Integer, nullable=False, unique=True),  # storage order, for folding
    Column("author", String(20), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("prev", String(64), nullable=True),
    Column("type", String(100), nullable=False),
    Column("case_no", String(40), nullable=True, index=True),
    Column("to", Text, nullable=False),  # JSON list of addresses
    Column("wire", LargeBinary, nullable=False),  # canonical bytes of the signed event
    Column("ts", String(40), nullable=False),
    Column("received_at", String(40), nullable=False),
    Column("own", Boolean, nullable=False),
    Column("fold_error", Text, nullable=True),  # why the case fold refused it, if it did
    UniqueConstraint("author", "seq", name="uq_events_author_seq"),
)

#: The head of the station's own chain (one row).
chain_head = Table(
    "chain_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("event_id", String(64), ForeignKey("events.id"), nullable=True),
    CheckConstraint("id = 1", name="single_row"),
)

#: The fold cache: one row per case the station can fold.
cases = Table(
    "cases",
    metadata,
    Column("number", String(40), primary_key=True),
    Column("state", String(30), nullable=False),
    Column("matter", String(50), nullable=False),
    Column("matter_name", String(200), nullable=False),
    Column("authority", String(40), nullable=False),
    Column("window_member", String(20), nullable=False),
    Column("pickup", String(20), nullable=False),
    Column("location", String(12), nullable=False),
    Column("applicant_name", String(100), nullable=False, index=True),
    Column("applicant_id_masked", String(40), nullable=False),
    Column("applicant_id_hash", String(64), nullable=False),
    Column("received", String(40), nullable=False),
    Column("deadline", String(10), nullable=True),
    Column("snapshot", Text, nullable=False),  # JSON of the folded case
    Column("updated_at", String(40), nullable=False),
)

#: Personal data that never leaves the station (DOMAIN.md rule 8).
case_private = Table(
    "case_private",
    metadata,
    Column("case_no", String(40), ForeignKey("cases.number"), primary_key=True),
    Column("id_number", String(40), nullable=False),
    Column("agent_id_number", String(40), nullable=True),
    Column("phone", String(20), nullable=True),
    # 进度查询码 in clear, only here: a reprinted receipt shows it (never in events or logs).
    Column("query_code", String(8), nullable=True),
)

#: Content-addressed materials held in ``<data>/blobs``.
blobs = Table(
    "blobs",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("mime", String(100), nullable=False),
    Column("created_at", String(40), nullable=False),
)

#: Resumable upload state per blob (tus): survives restarts.
blob_uploads = Table(
    "blob_uploads",
    metadata,
    Column("hash", String(64), ForeignKey("blobs.hash"), primary_key=True),
    Column("url", Text, nullable=True),  # persisted before any byte is sent
    Column("offset", Integer, nullable=False),
    Column("done", Boolean, nullable=False),
    Column("bytes_sent", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)

#: Sync with the parent hub (one row).
sync_state = Table(
    "sync_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_cursor", String(200), nullable=True),
    Column("custody_seq", Integer, nullable=False),
    Column("last_success", String(40), nullable=True),
    Column("last_attempt", String(40), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", String(40), nullable=True),
    Column("config_serial", Integer, nullable=True),
    CheckConstraint("id = 1", name="single_row"),
)

#: Signed federation configs: the home city's and metro peers'.
configs = Table(
    "configs",
    metadata,
    Column("city", String(4), primary_key=True),
    Column("home", Boolean, nullable=False),
    Column("serial", Integer, nullable=False),
    Column("signed", Text, nullable=False),  # the signed config as JSON
    Column("received_at", String(40), nullable=False),
)

#: Window clerks (窗口人员) who may log in to this station.
clerks = Table(
    "clerks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(50), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(20), nullable=False),  # admin | clerk
    Column("active", Boolean, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("password_changed_at", String(40), nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("clerk_id", Integer, ForeignKey("clerks.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(50), nullable=False),
    Column("remote", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_login_failures_username_at", "username", "at"),
    Index("ix_login_failures_remote_at", "remote", "at"),
)

#: Case numbers per day: ``<member>-<yyyymmdd>-<nnnn>``.
case_counters = Table(
    "case_counters",
    metadata,
    Column("day", String(8), primary_key=True),
    Column("last", Integer, nullable=False),
)

#: Events set aside: ``out`` = our event the hub rejected; ``in`` = a feed event we refused.
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=True, index=True),
    Column("author", String(20), nullable=True),
    Column("seq", Integer, nullable=True),
    Column("case_no", String(40), nullable=True),
    Column("direction", String(3), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("wire", LargeBinary, nullable=True),
    Column("at", String(40), nullable=False),
    Column("released_at", String(40), nullable=True),
)

#: 通知发件箱: applicant notifications the default notifier keeps for the window to print or
#: export (``destination`` is the phone number, local only; pages show it masked).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_no", String(40), nullable=False, index=True),
    Column("event_id", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("destination", String(40), nullable=True),
    Column("text", Text, nullable=False),
    Column("at", String(40), nullable=False),
    UniqueConstraint("event_id", "kind"),
)

#: Wrong 进度查询 codes per client (``c:``) and per case (``n:``), kept a minute.
track_attempts = Table(
    "track_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(80), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_track_attempts_key_at", "key", "at"),
)

#: 一件事一次办: a bundle's parent number (taken from the day's case numbers, never an event
#: of its own) and its children, one case per matter, each carrying ``body.bundle``.
bundles = Table(
    "bundles",
    metadata,
    Column("number", String(40), primary_key=True),
    Column("code", String(50), nullable=False),
    Column("name", String(200), nullable=False),
    Column("children", Text, nullable=False),  # JSON list of child case numbers
    Column("created_at", String(40), nullable=False),
)
