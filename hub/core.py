"""The running hub: settings, keys, store, federation view, blobs, metrics, notifications.

One :class:`Hub` per process (per app in tests). It holds no state that must survive a
restart or be shared with other workers: that is all in the database and the blob store.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from protocol.case import CHINA_TIME
from protocol.errors import ProtocolError
from protocol.http.blobs import BlobStore

from .config import HubSettings, read_initial_config
from .logs import log
from .metrics import HubMetrics
from .services.federation import FederationView
from .services.feed import FeedNotifier
from .storage import Database, HubStore, make_engine, migrate

Clock = Callable[[], datetime]

logger = logging.getLogger("tongban.hub")


def china_now() -> datetime:
    """The wall clock as an aware datetime in China time (how events are stamped)."""
    return datetime.now(CHINA_TIME)


@dataclass
class Hub:
    """Everything a request handler or job needs."""

    settings: HubSettings
    db: Database
    store: HubStore
    view: FederationView
    blobs: BlobStore
    metrics: HubMetrics
    feeds: FeedNotifier
    clock: Clock = china_now
    worker: str = field(default_factory=lambda: secrets.token_hex(8))
    _wake_relay: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = self.settings.load_member_key()
        self.seals = self.settings.load_seal_keys()

    @property
    def me(self) -> str:
        """This hub's member id."""
        return self.settings.id

    def now(self) -> datetime:
        return self.clock()

    def on_relay_work(self, callback: Callable[[], None]) -> None:
        """Register a wake-up for the relay job (called after new outbox or own events)."""
        self._wake_relay.append(callback)

    def committed(self, recipients: Iterable[str], relay: bool) -> None:
        """After a commit: wake feed long-polls and, if there is something to relay, the job."""
        self.feeds.notify(recipients)
        if relay:
            for wake in self._wake_relay:
                wake()

    async def close(self) -> None:
        await self.feeds.close()
        await self.db.close()


async def open_hub(
    settings: HubSettings,
    *,
    clock: Clock = china_now,
    run_migrations: bool = True,
) -> Hub:
    """Connect, migrate, load the federation view; import the init-time config if newer."""
    engine = make_engine(settings.db_url)
    try:
        if run_migrations:
            await migrate(engine)
    except BaseException:
        await engine.dispose()
        raise
    db = Database(engine)
    store = HubStore(db)
    view = FederationView(store, settings.id[:4], settings.anchors)
    hub = Hub(
        settings=settings,
        db=db,
        store=store,
        view=view,
        blobs=await asyncio.to_thread(BlobStore, settings.blob_dir),
        metrics=HubMetrics(),
        feeds=FeedNotifier(store.feed_heads),
        clock=clock,
    )
    await view.refresh(force=True)
    initial = read_initial_config(settings.data)
    if initial is not None:
        try:
            adoption = await view.adopt(initial, clock())
        except ProtocolError as exc:  # an older handed-over config is normal after updates
            log(logger, "config.initial_ignored", reason=exc.reason)
        else:
            if adoption.adopted:
                log(logger, "config.adopted", serial=adoption.signed.serial, source="init")
    return hub
