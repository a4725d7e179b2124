"""Hub test fixtures: real hubs on 127.0.0.1 over real SQLite files or a real PostgreSQL.

PostgreSQL: one fresh database per test module on ``TONGBAN_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``), dropped afterwards; tables are emptied
before each test. Without a reachable server those tests skip (fail in CI).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from hub.app import JOBS_KEY, build_app
from hub.config import HubSettings
from hub.core import Hub, open_hub
from hub.jobs import RelayJobs
from protocol.http import RUNNER_KWARGS, PeerClient
from protocol.keys import KeyPair
from tests.conftest import need_service
from tests.hub.fed import DISTRICT, Fed, key, make_data_dir

T = TypeVar("T")
PG_URL = os.environ.get("TONGBAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on its own loop in a thread (for sync fixtures around the test loop)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _database_url(name: str) -> str:
    url = URL(PG_URL)
    return str(url.with_scheme("postgresql+asyncpg").with_path(f"/{name}"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _empty_tables(name: str) -> None:
    conn = await asyncpg.connect(str(URL(PG_URL).with_path(f"/{name}")), timeout=5)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(f'"{t["tablename"]}"' for t in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this module (SQLAlchemy URL); dropped afterwards."""
    name = f"tongban_test_{secrets.token_hex(6)}"
    try:
        run_in_thread(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        need_service("PostgreSQL", f"{PG_URL}: {exc}")
    yield name
    run_in_thread(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The module's database, emptied for this test."""
    run_in_thread(_empty_tables(pg_database))
    return _database_url(pg_database)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """Run the test on SQLite (the data dir's default file) and on PostgreSQL."""
    if request.param == "sqlite":
        return None
    url = request.getfixturevalue("pg_url")
    assert isinstance(url, str)
    return url


@dataclass
class RunningHub:
    """A hub app served on 127.0.0.1."""

    hub: Hub
    app: web.Application
    server: TestServer
    settings: HubSettings

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))

    @property
    def jobs(self) -> RelayJobs:
        return self.app[JOBS_KEY]

    def client(
        self,
        member: str,
        session: aiohttp.ClientSession,
        *,
        signer: KeyPair | None = None,
        **kw: Any,
    ) -> PeerClient:
        return PeerClient(self.url, member, signer or key(member), session, timeout=10, **kw)


StartHub = Callable[..., Awaitable[RunningHub]]


@pytest.fixture
async def start_hub(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> AsyncIterator[StartHub]:
    """Start hubs: ``await start_hub(DISTRICT, db=url, parent_url=..., fed=Fed(...))``."""
    hubs: list[Hub] = []

    async def start(
        hub_id: str = DISTRICT,
        *,
        db: str | None = None,
        parent_url: str | None = None,
        fed: Fed | None = None,
        name: str | None = None,
        jobs: bool = False,
    ) -> RunningHub:
        settings = make_data_dir(
            tmp_path / (name or hub_id), hub_id, db=db, parent_url=parent_url, fed=fed
        )
        hub = await open_hub(settings)
        hubs.append(hub)
        app = build_app(hub, jobs=jobs)
        server = await aiohttp_server(app, **RUNNER_KWARGS)
        return RunningHub(hub, app, server, settings)

    yield start
    for hub in hubs:
        await hub.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def table_counts(hub: Hub) -> dict[str, int]:
    """Rows per table but the bookkeeping of authenticated requests (nonces, the caller's
    clock skew): the "nothing changed" check of refusal tests."""
    from sqlalchemy import func, select
    from sqlalchemy.engine import Connection

    from hub.storage.models import Base

    def txn(c: Connection) -> dict[str, int]:
        return {
            name: int(c.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in Base.metadata.tables.items()
            if name not in ("nonces", "peer_clocks")
        }

    return await hub.db.read("counts", txn)


def custody_tables(counts: dict[str, int]) -> dict[str, int]:
    """The tables a refused push must not touch (quarantine and alerts record the refusal)."""
    keep = ("events", "event_blobs", "chain_heads", "feed_entries", "feed_heads", "outbox", "cases")
    return {k: counts[k] for k in keep}
