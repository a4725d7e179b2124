"""The station database: migrations, pragmas, and surviving a crash."""

from __future__ import annotations

import shutil
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from node.runtime import open_context
from node.services.accept import accept_application
from node.services.context import NodeContext
from node.station import DataDir
from node.storage import Database, head_revision
from node.storage.models import metadata

from .conftest import STATION_ID, Initialised
from .helpers import Clock
from .test_accept import application


async def test_migrations_create_exactly_the_models(tmp_path: Path) -> None:
    db = Database.open(f"sqlite+aiosqlite:///{(tmp_path / 'm.db').as_posix()}")
    applied = await db.migrate()  # every revision in order, ending at the head
    assert applied[0] == "0001" and applied[-1] == head_revision()
    assert await db.migrate() == []

    def diff(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    assert await db.read(diff) == []
    await db.close()


async def test_connections_use_wal_full_sync_foreign_keys(ctx: NodeContext) -> None:
    def pragmas(conn: Connection) -> list[object]:
        names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        return [conn.exec_driver_sql(f"PRAGMA {n}").scalar() for n in names]

    assert await ctx.store.db.read(pragmas) == ["wal", 2, 1, 10000]


async def test_the_case_survives_a_crash(
    ctx: NodeContext, station: Initialised, clock: Clock, tmp_path: Path
) -> None:
    """Copy the files as a power cut leaves them (no close, no checkpoint) and reopen."""
    receipt = await accept_application(ctx, application())
    crashed = tmp_path / "after-crash"
    shutil.copytree(station.data.root, crashed)  # node.db and node.db-wal as they are now
    assert (crashed / "node.db-wal").exists()

    reopened = await open_context(DataDir(crashed), clock=clock)
    try:
        case = await reopened.store.case(receipt["number"])
        assert case is not None and case.state == "submitted"
        events = await reopened.store.own_events_after(STATION_ID, 0)
        assert [e.case for e in events] == [receipt["number"]]
        assert reopened.configs.home is not None  # the adopted config too
        # The chain and the day's numbering continue where they were.
        nxt = await accept_application(reopened, application())
        assert nxt["number"].endswith("-0002")
        assert (await reopened.store.head())[0] == 2
    finally:
        await reopened.store.db.close()
