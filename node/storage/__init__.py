"""The station's persistence: SQLite through SQLAlchemy (async), all SQL in this package."""

from __future__ import annotations

from .db import Database, head_revision, make_engine
from .records import (
    Backlog,
    BlobRow,
    BundleRow,
    CaseFolded,
    CaseRecord,
    ClerkRow,
    ConfigRow,
    FeedResult,
    FoldOutcome,
    PrivateData,
    QuarantineRow,
    Refused,
    SessionRow,
    StoredEvent,
    SyncState,
    UploadRow,
)
from .store import Store, StoreError

__all__ = [
    "Backlog",
    "BlobRow",
    "BundleRow",
    "CaseFolded",
    "CaseRecord",
    "ClerkRow",
    "ConfigRow",
    "Database",
    "FeedResult",
    "FoldOutcome",
    "PrivateData",
    "QuarantineRow",
    "Refused",
    "SessionRow",
    "Store",
    "StoreError",
    "StoredEvent",
    "SyncState",
    "UploadRow",
    "head_revision",
    "make_engine",
]
