"""Fixtures: a station initialised by the real CLI, its context, its app, a hub double."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from node.app import build_app
from node.cli import node
from node.metrics import NodeMetrics
from node.runtime import open_context
from node.services.auth import Auth
from node.services.context import NodeContext
from node.station import DataDir
from node.sync import SyncEngine
from protocol.http.server import RUNNER_KWARGS

from .helpers import ROOT, Clock, free_port, signed_config
from .hubdouble import HubDouble

STATION_ID = "210102001001"


@dataclass
class Initialised:
    data: DataDir
    password: str
    output: str


def init_station(path: Path, parent: str, *extra: str) -> Initialised:
    """``tongban node init`` through click, as an operator would run it."""
    result = CliRunner().invoke(
        node,
        [
            "init",
            "--id",
            STATION_ID,
            "--parent",
            parent,
            "--data",
            str(path),
            "--root",
            ROOT.public.to_text(),
            "--name",
            "测试村便民服务站",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    match = re.search(r"密码\s+(\S+)", result.output)
    assert match is not None
    return Initialised(DataDir(path), match.group(1), result.output)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def station(tmp_path: Path) -> Initialised:
    """A station whose parent hub is a port nobody listens on (offline)."""
    return init_station(tmp_path / "station", f"http://127.0.0.1:{free_port()}/")


@pytest.fixture
async def ctx(station: Initialised, clock: Clock) -> AsyncIterator[NodeContext]:
    """The station's context with the federation config adopted (as a sync would)."""
    context = await open_context(station.data, clock=clock)
    await context.configs.adopt(context.store, signed_config(context.key.public), context.stamp())
    yield context
    await context.store.db.close()


@pytest.fixture
async def api(
    ctx: NodeContext, station: Initialised, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> TestClient:
    """A test client of the station app, not logged in."""
    app = build_app(ctx, Auth(ctx.store), NodeMetrics())
    client: TestClient = await aiohttp_client(app, server_kwargs=dict(RUNNER_KWARGS))
    return client


async def login(client: TestClient, password: str, username: str = "admin") -> str:
    """Log in; returns the CSRF token."""
    resp = await client.post("/api/login", json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return str(body["csrf_token"])


@dataclass
class Synced:
    """A station context wired to a hub double through a real sync engine."""

    ctx: NodeContext
    hub: HubDouble
    engine: SyncEngine
    url: str
    data: DataDir


@pytest.fixture
async def synced(tmp_path: Path, station: Initialised, clock: Clock) -> AsyncIterator[Synced]:
    """A station whose parent is a :class:`HubDouble` served on 127.0.0.1."""
    init = station
    context = await open_context(init.data, clock=clock)
    config = signed_config(context.key.public)
    hub = HubDouble(config, tmp_path / "hub-blobs")
    server = TestServer(hub.app())
    await server.start_server(**RUNNER_KWARGS)
    url = str(server.make_url("/"))
    # The double's port is known only now: point the station's view at it.
    context.station = replace(context.station, parent_url=url)
    session = aiohttp.ClientSession()
    engine = SyncEngine(context, session, feed_wait=0, chunk_size=64 * 1024)
    assert await engine.refresh_config()  # the first config comes from the hub
    try:
        yield Synced(context, hub, engine, url, init.data)
    finally:
        await engine.stop()
        await session.close()
        await server.close()
        await context.store.db.close()  # a no-op when the test closed it already
