"""The station's wrong 进度查询 codes (SQL stays in this package): counted in SQLite, so
a restart does not forgive them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Connection, delete, func, insert, select

from .db import Database
from .models import track_attempts


class WrongCodeStore:
    """:class:`protocol.http.web.track.WrongCodes` over the station's database."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock  # seconds (the station's injected clock)

    async def count(self, keys: Sequence[str], window: float) -> int:
        return int(await self.db.read(self._count_txn, list(keys), self.clock() - window))

    def _count_txn(self, conn: Connection, keys: list[str], since: float) -> int:
        rows = conn.execute(
            select(track_attempts.c.key, func.count())
            .where(track_attempts.c.key.in_(keys), track_attempts.c.at > since)
            .group_by(track_attempts.c.key)
        )
        return max((int(n) for _, n in rows), default=0)

    async def add(self, keys: Sequence[str], window: float) -> None:
        await self.db.write(self._add_txn, list(keys), self.clock(), window)

    def _add_txn(self, conn: Connection, keys: list[str], now: float, window: float) -> None:
        conn.execute(delete(track_attempts).where(track_attempts.c.at <= now - window))
        conn.execute(insert(track_attempts), [{"key": k, "at": now} for k in keys])
