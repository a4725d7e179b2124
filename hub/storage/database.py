"""The engine and the one way to run a transaction (``Database.run``), after Synapse.

A transaction is a plain synchronous function of a SQLAlchemy ``Connection`` run inside
``AsyncConnection.run_sync``, so the logic that decides what to write can read, decide and
write in one transaction without awaiting in between. ``run`` retries the whole function on
the conflicts that concurrent hub workers produce on PostgreSQL (deadlock, serialization
failure, a unique row another worker inserted first) and on a busy SQLite: functions given
to it must have no side effects outside the database (notify after it returns).

SQLite: WAL, ``synchronous=FULL`` (an acknowledged event survives a power cut),
``foreign_keys``, ``busy_timeout``; write transactions start with ``BEGIN IMMEDIATE`` so a
read-then-write never fails half way on a lock upgrade.

PostgreSQL: every round trip counts (a busy hub's time went to socket writes), so a read
(:meth:`Database.read`) runs in autocommit mode, without BEGIN and COMMIT: under READ
COMMITTED each statement has its own snapshot anyway. A pooled connection is checked by
the driver's view of its socket, not by a query.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

P = ParamSpec("P")
T = TypeVar("T")

READONLY: Final = "tongban_readonly"
POOL_SIZE: Final = 30
MAX_ATTEMPTS: Final = 8
# PostgreSQL: serialization_failure, deadlock_detected, unique_violation (a racing worker).
RETRY_SQLSTATES: Final = frozenset({"40001", "40P01", "23505"})

log = logging.getLogger("tongban.hub.db")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str) -> AsyncEngine:
    """An async engine for ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URLs."""
    if is_sqlite(url):
        engine = create_async_engine(url)
        _sqlite_setup(engine)
        return engine
    # Connections are kept, never opened and closed per request: each new one costs a
    # connect and loses the prepared statements of the one before (a pool that overflows
    # under load does exactly that). Requests beyond the pool wait for a connection; more
    # concurrent transactions than this would only queue inside PostgreSQL.
    engine = create_async_engine(url, pool_size=POOL_SIZE, max_overflow=0, pool_timeout=60)
    _postgres_setup(engine)
    return engine


def _postgres_setup(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "checkout")
    def _alive(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # A restarted server closed its connections; the driver saw the socket close. The
        # pool's own pre-ping would ask the server instead: three round trips (BEGIN, a
        # query, ROLLBACK) before every transaction.
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection")


def _sqlite_setup(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (below); the driver must not start transactions on its own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get(READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    if code in RETRY_SQLSTATES:
        return True
    if isinstance(exc, IntegrityError):
        return False
    return isinstance(exc, OperationalError) and "locked" in str(exc.orig)


class Database:
    """One engine; ``run`` executes a transaction function with retries."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def run(
        self,
        desc: str,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, *args, **kwargs)`` in one write transaction, retrying conflicts."""
        return await self._run(desc, False, fn, *args, **kwargs)

    async def read(
        self,
        desc: str,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """As :meth:`run` for a function that only reads (no write lock on SQLite)."""
        return await self._run(desc, True, fn, *args, **kwargs)

    async def _run(
        self,
        desc: str,
        readonly: bool,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        delay = 0.005
        attempt = 1
        while True:
            try:
                async with self.engine.connect() as conn:
                    if readonly and self.dialect == "postgresql":
                        # Each statement reads its own snapshot under READ COMMITTED anyway:
                        # without BEGIN and COMMIT a read is one round trip, not three.
                        await conn.execution_options(isolation_level="AUTOCOMMIT")
                    elif readonly:
                        await conn.execution_options(**{READONLY: True})
                    async with conn.begin():
                        return await conn.run_sync(lambda c: fn(c, *args, **kwargs))
            except DBAPIError as exc:
                if attempt >= MAX_ATTEMPTS or not _retryable(exc):
                    raise
                log.info(
                    "event=db.retry txn=%s attempt=%d error=%s",
                    desc,
                    attempt,
                    type(exc.orig).__name__,
                )
            attempt += 1
            await asyncio.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.5)

    async def close(self) -> None:
        await self.engine.dispose()
