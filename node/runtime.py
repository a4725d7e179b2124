"""Putting a station together: open its data directory, migrate, serve, sync."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from protocol.http.blobs import BlobStore
from protocol.http.server import RUNNER_KWARGS

from .app import build_app
from .logs import log
from .metrics import NodeMetrics
from .services import notify
from .services.auth import Auth
from .services.context import Clock, ConfigCache, NodeContext, utc_now
from .station import DataDir
from .storage import Database, Store
from .sync import FEED_WAIT, SyncEngine

logger = logging.getLogger("node.runtime")


async def open_context(data: DataDir, *, clock: Clock = utc_now) -> NodeContext:
    """Load station.json and the key, migrate the database, load the stored config."""
    station = data.load_station()
    key = data.load_key()
    db = Database.open(data.db_url)
    try:
        applied = await db.migrate()
    except BaseException:
        await db.close()
        raise
    if applied:
        log(logger, "db.migrated", revisions=",".join(applied))
    store = Store(db)
    configs = ConfigCache(station.root_keys)
    await configs.load(store)
    ctx = NodeContext(station, key, store, BlobStore(data.blob_dir), configs, clock)
    notify.hook(ctx)  # 通知 on every fold move, whichever code path made it
    return ctx


@dataclass
class RunningNode:
    """A station serving HTTP and syncing, as started by :func:`running`."""

    ctx: NodeContext
    app: web.Application
    engine: SyncEngine
    metrics: NodeMetrics
    url: str


@contextlib.asynccontextmanager
async def running(
    data: DataDir,
    *,
    host: str | None = None,
    port: int | None = None,
    sync: bool = True,
    feed_wait: float = FEED_WAIT,
    clock: Clock = utc_now,
) -> AsyncIterator[RunningNode]:
    """Serve the station on ``host:port`` (station.json's by default; port 0 picks one)
    and run the sync engine until the context exits."""
    ctx = await open_context(data, clock=clock)
    metrics = NodeMetrics()
    session = aiohttp.ClientSession()
    engine = SyncEngine(ctx, session, metrics=metrics, feed_wait=feed_wait)
    scheduler = AsyncIOScheduler(timezone=UTC)
    app = build_app(ctx, Auth(ctx.store), metrics)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=3.0, **RUNNER_KWARGS)
    try:
        await runner.setup()
        bind_host = host or ctx.station.host
        site = web.TCPSite(runner, bind_host, ctx.station.port if port is None else port)
        await site.start()
        bound = runner.addresses[0]
        url = f"http://{bind_host}:{bound[1]}/"
        if sync:
            engine.start(scheduler)
            scheduler.start()
        log(logger, "node.started", member=ctx.station.id, url=url, parent=ctx.station.parent_url)
        yield RunningNode(ctx, app, engine, metrics, url)
    finally:
        await engine.stop()
        if scheduler.running:
            scheduler.shutdown(wait=False)
        await runner.cleanup()
        await session.close()
        await ctx.store.db.close()
        log(logger, "node.stopped", member=ctx.station.id)
