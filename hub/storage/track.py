"""SQL of the 送达回执 due list and the shared 进度查询 wrong-code counters (see
:mod:`hub.services.receipts` and :mod:`hub.public`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from .models import BlobRow, EventBlobRow, EventRow, ReceiptDueRow, TrackAttemptRow
from .store import _table, insert_ignore_many


def note_receipts_due_txn(c: Connection, owed: Sequence[tuple[str, str]], at: datetime) -> None:
    """Remember that each ``(event id, case number)`` delivered here is owed a receipt
    (idempotent; one statement)."""
    rows = [{"event_id": e, "case_no": n, "since": at} for e, n in dict.fromkeys(owed)]
    insert_ignore_many(c, ReceiptDueRow, rows)


def receipts_due_txn(c: Connection, limit: int) -> list[tuple[str, str, str]]:
    """Due receipts whose event's blobs are all held here, oldest first, as (event id, case
    number, the event's author); rows another worker is signing are skipped (``SKIP
    LOCKED``)."""
    missing = (
        select(EventBlobRow.event_id)
        .where(EventBlobRow.event_id == ReceiptDueRow.event_id)
        .where(~select(BlobRow.hash).where(BlobRow.hash == EventBlobRow.blob).exists())
    )
    stmt = (
        select(ReceiptDueRow.event_id, ReceiptDueRow.case_no, EventRow.author)
        .join(EventRow, EventRow.id == ReceiptDueRow.event_id)
        .where(~missing.exists())
        .order_by(ReceiptDueRow.since, ReceiptDueRow.event_id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=_table(ReceiptDueRow))
    )
    return [(r.event_id, r.case_no, r.author) for r in c.execute(stmt)]


def receipts_waiting_txn(c: Connection) -> int:
    """How many receipts are owed (their events' blobs may still be on the way)."""
    return int(c.execute(select(func.count()).select_from(_table(ReceiptDueRow))).scalar_one())


def drop_receipt_due_txn(c: Connection, event_ids: Sequence[str]) -> None:
    if event_ids:
        c.execute(delete(_table(ReceiptDueRow)).where(ReceiptDueRow.event_id.in_(list(event_ids))))


def wrong_tries_txn(c: Connection, keys: Sequence[str], since: datetime) -> int:
    """The most wrong codes any of ``keys`` had since ``since``."""
    rows = c.execute(
        select(TrackAttemptRow.key, func.count())
        .where(TrackAttemptRow.key.in_(list(keys)), TrackAttemptRow.at > since)
        .group_by(TrackAttemptRow.key)
    )
    return max((int(n) for _, n in rows), default=0)


def add_wrong_try_txn(c: Connection, keys: Sequence[str], at: datetime, forget: datetime) -> None:
    """Count one wrong code for each key; tries before ``forget`` are dropped."""
    c.execute(delete(_table(TrackAttemptRow)).where(TrackAttemptRow.at <= forget))
    c.execute(insert(_table(TrackAttemptRow)), [{"key": k, "at": at} for k in keys])
