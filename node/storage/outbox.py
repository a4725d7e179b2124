"""The outbox table: notifications kept for the window (SQL stays in this package)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from .db import Database
from .models import outbox


@dataclass(frozen=True)
class OutboxRow:
    """One notification as kept: ``destination`` is the full phone number (local only)."""

    id: int
    case_no: str
    event_id: str
    kind: str
    destination: str | None
    text: str
    at: str


class OutboxStore:
    """Read and append notifications; one per (event, kind), a replay adds nothing."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, row: OutboxRow) -> bool:
        return bool(await self.db.write(self._add_txn, row))

    def _add_txn(self, conn: Connection, row: OutboxRow) -> bool:
        held = conn.execute(
            select(outbox.c.id).where(outbox.c.event_id == row.event_id, outbox.c.kind == row.kind)
        ).scalar()
        if held is not None:
            return False
        conn.execute(
            insert(outbox).values(
                case_no=row.case_no,
                event_id=row.event_id,
                kind=row.kind,
                destination=row.destination,
                text=row.text,
                at=row.at,
            )
        )
        return True

    async def rows(self, limit: int = 500) -> list[OutboxRow]:
        return list(await self.db.read(self._list_txn, limit))

    def _list_txn(self, conn: Connection, limit: int) -> list[OutboxRow]:
        rows = conn.execute(select(outbox).order_by(outbox.c.id.desc()).limit(limit))
        return [
            OutboxRow(r.id, r.case_no, r.event_id, r.kind, r.destination, r.text, r.at)
            for r in rows
        ]
