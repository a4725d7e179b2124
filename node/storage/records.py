"""Plain records the store reads and writes (no SQLAlchemy types leak out of storage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocol.case import Case
from protocol.event import Event


@dataclass(frozen=True)
class CaseRecord:
    """One row of the fold cache (``cases``)."""

    number: str
    state: str
    matter: str
    matter_name: str
    authority: str
    window: str
    pickup: str
    location: str
    applicant_name: str
    applicant_id_masked: str
    applicant_id_hash: str
    received: str
    deadline: str | None
    snapshot: dict[str, Any] = field(default_factory=dict)
    updated_at: str = ""


@dataclass(frozen=True)
class BundleRow:
    """一件事: the parent number a window gave a bundle and its child cases."""

    number: str
    code: str
    name: str
    children: list[str]
    created_at: str


@dataclass(frozen=True)
class PrivateData:
    """What only this station keeps: the full ID numbers, a phone number, the query code."""

    id_number: str
    agent_id_number: str | None = None
    phone: str | None = None
    query_code: str | None = None


@dataclass(frozen=True)
class StoredEvent:
    """An event as held: ``own`` for the station's chain, else received from the feed."""

    event: Event
    pos: int
    own: bool
    received_at: str
    fold_error: str | None = None


@dataclass(frozen=True)
class FoldOutcome:
    """What refolding a case's events produced: the row (None if nothing folds) and errors."""

    record: CaseRecord | None
    errors: dict[str, str] = field(default_factory=dict)  # event id -> "reason: detail"
    case: Case | None = None  # the fold the row was made from (for the 送达回执 callback)


@dataclass(frozen=True)
class SyncState:
    feed_cursor: str | None
    custody_seq: int
    last_success: str | None
    last_attempt: str | None
    last_error: str | None
    last_error_at: str | None
    config_serial: int | None


@dataclass(frozen=True)
class Backlog:
    """What waits to go up: own events beyond custody, blob bytes not yet held upstream."""

    events: int
    event_bytes: int
    blobs: int
    blob_bytes: int


@dataclass(frozen=True)
class BlobRow:
    hash: str
    size: int
    name: str
    mime: str


@dataclass(frozen=True)
class UploadRow:
    hash: str
    size: int
    url: str | None
    offset: int
    done: bool
    bytes_sent: int
    last_error: str | None


@dataclass(frozen=True)
class ClerkRow:
    id: int
    username: str
    display_name: str
    password_hash: str
    role: str
    active: bool
    password_changed_at: str | None


@dataclass(frozen=True)
class SessionRow:
    token_hash: str
    clerk: ClerkRow
    csrf: str
    expires_at: float


@dataclass(frozen=True)
class QuarantineRow:
    id: int
    event_id: str | None
    author: str | None
    seq: int | None
    case_no: str | None
    direction: str  # out: the hub refused our event; in: we refused a feed event
    reason: str
    detail: str
    at: str
    released_at: str | None


@dataclass(frozen=True)
class ConfigRow:
    city: str
    home: bool
    serial: int
    signed: str
    received_at: str


@dataclass(frozen=True)
class Refused:
    """A feed event this station could not take (bad signature, unknown author, …)."""

    event_id: str | None
    author: str | None
    seq: int | None
    case_no: str | None
    reason: str
    detail: str
    wire: bytes | None


@dataclass(frozen=True)
class FeedResult:
    """What storing one feed page did."""

    stored: list[str] = field(default_factory=list)  # ids of new events
    duplicates: int = 0
    refused: int = 0  # equivocations and unverifiable events, now in quarantine
    cases: list[str] = field(default_factory=list)  # case numbers refolded
    signed: list[str] = field(default_factory=list)  # ids of own 送达回执 signed meanwhile


@dataclass(frozen=True)
class CaseFolded:
    """Events a committed transaction newly took into a case's fold (ids, in fold order)."""

    number: str
    events: tuple[str, ...]
