"""The station's SQLite database: engine set-up, transactions, migrations.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed transaction survives a power
cut), foreign keys on, and a busy timeout, set on every new connection. The driver's own
transaction handling is switched off so we emit ``BEGIN`` ourselves: write transactions take
``BEGIN IMMEDIATE`` (the write lock up front, so a read-then-write transaction can never
fail half-way with SQLITE_BUSY), read transactions a plain deferred ``BEGIN`` (WAL lets them
run beside a writer).

Store methods pair a public async call with an inner ``_txn`` function that takes a sync
:class:`~sqlalchemy.engine.Connection` (after Synapse): ``await db.write(self._x_txn, …)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Concatenate, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

P = ParamSpec("P")
T = TypeVar("T")

_WRITE = "tongban_write"
_NOTES = "tongban_notes"
BUSY_TIMEOUT_MS = 10_000
MIGRATIONS = "node.storage:migrations"


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # isolation_level None: the driver never BEGINs on its own; _on_begin does.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
        f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    ):
        cursor.execute(pragma)
    cursor.close()


def _on_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str) -> AsyncEngine:
    """An async engine for a SQLite file URL (``sqlite+aiosqlite:///…``) with our pragmas."""
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _on_connect)
    event.listen(engine.sync_engine, "begin", _on_begin)
    return engine


def note(conn: Connection, item: Any) -> None:
    """Tell the :meth:`Database.after_commit` listeners about ``item`` once this write
    transaction commits (nothing if it rolls back)."""
    conn.info.setdefault(_NOTES, []).append(item)


Listener = Callable[[list[Any]], Awaitable[None]]


class Database:
    """Read and write transactions over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(**{_WRITE: True})
        self._listeners: list[Listener] = []

    def after_commit(self, listener: Listener) -> None:
        """Call ``listener(notes)`` after each write transaction that left notes (:func:`note`)."""
        self._listeners.append(listener)

    @classmethod
    def open(cls, url: str) -> Database:
        return cls(make_engine(url))

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(conn, …)`` in a read transaction."""
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    async def write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(conn, …)`` in a write transaction (``BEGIN IMMEDIATE``); commit on return;
        then hand the transaction's notes to the listeners."""
        async with self._writer.begin() as conn:
            conn.info.pop(_NOTES, None)  # left by a transaction that rolled back
            result = await conn.run_sync(fn, *args, **kwargs)
            notes = conn.info.pop(_NOTES, [])
        if notes:
            for listener in self._listeners:
                await listener(notes)
        return result

    async def migrate(self) -> list[str]:
        """Apply every pending alembic revision; returns the revisions applied."""
        async with self._writer.begin() as conn:
            return await conn.run_sync(_upgrade)

    async def current_revision(self) -> str | None:
        async with self.engine.begin() as conn:
            return await conn.run_sync(_current)

    async def close(self) -> None:
        await self.engine.dispose()


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _upgrade(conn: Connection) -> list[str]:
    before = _current(conn)
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")
    after = _current(conn)
    if after == before:
        return []
    script = ScriptDirectory.from_config(cfg)
    applied = [rev.revision for rev in script.iterate_revisions(after, before)]
    return list(reversed(applied))


def migrations_dir() -> str:
    """Where the revisions live (for tests and tools)."""
    return str(resources.files("node.storage") / "migrations")
