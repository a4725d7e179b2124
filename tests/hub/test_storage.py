"""The schema: migrations produce exactly the models; SQLite runs durable (WAL, FULL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from hub.storage import make_engine, migrate
from hub.storage.migrate import current_revision, head_revision
from hub.storage.models import Base
from tests.hub.conftest import StartHub


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(tmp_path: Any, db_url: str | None) -> None:
    engine = make_engine(db_url or f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    try:
        await migrate(engine)
        await migrate(engine)  # a second run (another worker starting) changes nothing
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_sqlite_is_durable(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    try:
        async with engine.connect() as conn:
            pragmas = [
                (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            ]
        assert pragmas == ["wal", 2, 1, 30000]
    finally:
        await engine.dispose()


async def test_one_worker_at_a_time_talks_to_a_destination(
    start_hub: StartHub, db_url: str | None
) -> None:
    running = await start_hub(db=db_url)
    store, now = running.hub.store, running.hub.now()
    minute = timedelta(seconds=60)
    assert await store.claim_lease("2101", "w1", now, now + minute)
    assert await store.claim_lease("2101", "w1", now, now + minute)  # renewing is fine
    assert not await store.claim_lease("2101", "w2", now, now + minute)
    assert await store.claim_lease("2101", "w2", now + 2 * minute, now + 3 * minute)  # expired
    await store.release_lease("2101", "w2")
    assert await store.claim_lease("2101", "w1", now, now + minute)
