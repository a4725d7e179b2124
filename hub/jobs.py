"""Relay jobs: push up to the parent and across to metro peers, pull the parent's feed.

Theory of operation
-------------------
A hub is a client of its parent exactly as a village node is a client of its hub:

* **own chain** (chain mode): every event this hub signed goes up whole, so the parent holds
  custody of the hub's chain; its custody head is kept in ``peer_status.own_custody``;
* **relay outbox** (relay mode): events of other authors whose address leaves this subtree
  (to the parent) or this city (to a metro peer), each acknowledged per id and then deleted;
* **parent feed**: events addressed into this subtree, pulled with a long-poll from a
  persisted cursor and taken in like a relayed push (verified, stored, routed on down);
* **config**: the parent's newest signed config, adopted by the trust rules.

Each destination has a lease in ``peer_status`` (an atomic conditional UPDATE), so with
several hub workers on one database only one talks to a destination at a time; the others
skip it. Failures back off with jitter (protocol.http.Backoff) and are recorded for the
operator (last success, last error, backlog count and bytes); any success resets the
backoff at once. APScheduler runs the jobs on intervals; new outbox work wakes the push job
immediately. Tests call :meth:`push_destination`, :meth:`pull_parent` and friends directly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Connection

from protocol.errors import ProtocolError
from protocol.event import Event
from protocol.http import Backoff, PeerClient, PeerFailure
from protocol.http.signing import DEFAULT_WINDOW
from protocol.http.tus_client import TusClient
from protocol.sync import Ack, FeedPage, PushSession

from .core import Hub
from .logs import log
from .services import supervision
from .services.ingest import ingest_txn, record_effects, screen
from .services.push import index_events
from .services.receipts import sign_due

PUSH_INTERVAL: Final = 5.0
PULL_INTERVAL: Final = 1.0
CONFIG_INTERVAL: Final = 60.0
CONFIG_MISSING_INTERVAL: Final = 5.0  # while a config (home or a metro peer's) is missing
MAINTAIN_INTERVAL: Final = 30.0
RECEIPT_INTERVAL: Final = 2.0  # 送达回执: how soon after the last blob arrives
LONG_POLL: Final = 20.0
LEASE: Final = timedelta(seconds=60)
FEED_SUFFIX: Final = ":feed"

logger = logging.getLogger("tongban.hub.jobs")


class RelayJobs:
    """The periodic work of one hub worker."""

    def __init__(self, hub: Hub, *, rng: random.Random | None = None) -> None:
        self.hub = hub
        self._rng = rng or random.Random()
        self._backoff: dict[str, Backoff] = {}
        self._retry_at: dict[str, float] = {}
        self._scheduler: AsyncIOScheduler | None = None
        self._session: aiohttp.ClientSession | None = None
        self._more = False
        self._configs_checked = float("-inf")
        self._running: set[asyncio.Task[Any]] = set()
        hub.on_relay_work(self.wake)

    # -- lifetime ---------------------------------------------------------------------

    def start(self) -> None:
        """Schedule the jobs on the running loop."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        jobs: list[tuple[str, float, Callable[[], Awaitable[Any]]]] = [
            ("push", PUSH_INTERVAL, self.push_all),
            ("maintain", MAINTAIN_INTERVAL, self.maintain),
            ("receipts", RECEIPT_INTERVAL, self.sign_receipts),
            ("supervise", supervision.INTERVAL_SECONDS, self.supervise),
        ]
        if self.hub.settings.parent_url:
            jobs.append(("pull", PULL_INTERVAL, self.pull_parent))
        jobs.append(("config", CONFIG_MISSING_INTERVAL, self.refresh_all_configs))
        for name, seconds, job in jobs:
            scheduler.add_job(
                self._tracked(name, job),
                "interval",
                seconds=seconds,
                id=name,
                next_run_time=now,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=30,
            )
        scheduler.start()
        self._scheduler = scheduler

    def _tracked(
        self, name: str, job: Callable[[], Awaitable[Any]]
    ) -> Callable[[], Awaitable[None]]:
        """The job as a coroutine that :meth:`stop` can cancel and await, and that logs errors."""

        async def run() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                await job()
            except Exception as exc:  # a job must never die of one bad round
                error = f"{type(exc).__name__}: {exc}"[:300]
                log(logger, "job.failed", logging.ERROR, job=name, error=error)
            finally:
                self._running.discard(task)

        return run

    async def stop(self) -> None:
        """Stop the scheduler and wait for running jobs to be cancelled."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def wake(self) -> None:
        """New work to relay: run the push job now (or once more, if it is running)."""
        self._more = True
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.modify_job("push", next_run_time=datetime.now(UTC))

    # -- plumbing ---------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _parent(self) -> str | None:
        federation = self.hub.view.federation
        member = None if federation is None else federation.home.members.get(self.hub.me)
        return None if member is None else member.parent

    def _endpoint(self, destination: str) -> str | None:
        if destination == self._parent():
            return self.hub.settings.parent_url
        federation = self.hub.view.federation
        peer = None if federation is None else federation.home.peers.get(destination)
        return None if peer is None else peer.endpoint

    def _client(self, url: str, *, timeout: float = 30.0) -> PeerClient:
        return PeerClient(url, self.hub.me, self.hub.key, self._http(), timeout=timeout)

    def _due(self, channel: str) -> bool:
        return time.monotonic() >= self._retry_at.get(channel, 0.0)

    async def _succeeded(self, channel: str, **fields: Any) -> None:
        self._backoff.setdefault(channel, Backoff()).success()
        self._retry_at.pop(channel, None)
        now = self.hub.now()
        self.hub.metrics.relay_last_success.labels(destination=channel).set(now.timestamp())
        await self.hub.store.record_contact(channel, now, **fields)

    async def _failed(self, channel: str, exc: Exception) -> None:
        backoff = self._backoff.setdefault(channel, Backoff())
        backoff.failure()
        delay = backoff.next_delay(self._rng.random())
        self._retry_at[channel] = time.monotonic() + delay
        self.hub.metrics.relay_failures.labels(destination=channel).inc()
        self.hub.metrics.relay_last_error.labels(destination=channel).set(
            self.hub.now().timestamp()
        )
        text = f"{type(exc).__name__}: {exc}"[:500]
        await self.hub.store.record_contact(channel, self.hub.now(), error=text)
        log(
            logger,
            "relay.failed",
            logging.WARNING,
            destination=channel,
            retry_in=round(delay, 1),
            error=text,
        )

    async def _leased(self, channel: str) -> bool:
        now = self.hub.now()
        return await self.hub.store.claim_lease(channel, self.hub.worker, now, now + LEASE)

    # -- pushing ----------------------------------------------------------------------

    async def destinations(self) -> list[str]:
        """The parent (own chain and outbox) and every destination with relay work."""
        await self.hub.view.refresh()
        found = set(await self.hub.store.outbox_destinations())
        parent = self._parent()
        if parent is not None and self.hub.settings.parent_url:
            found.add(parent)
        return sorted(found)

    async def push_all(self) -> None:
        """Push to every destination; again while wake-ups arrived meanwhile."""
        while True:
            self._more = False
            for destination in await self.destinations():
                await self.push_destination(destination)
            if not self._more:
                return

    async def push_destination(self, destination: str) -> bool:
        """Push everything waiting for ``destination``; False when skipped or failed."""
        url = self._endpoint(destination)
        if url is None or not self._due(destination) or not await self._leased(destination):
            return False
        client = self._client(url)
        try:
            own = destination == self._parent()
            while True:
                moved = await self._push_own(client, destination) if own else False
                moved = await self._push_outbox(client, destination) or moved
                if not moved or not await self._leased(destination):  # renews the lease
                    break
            await self._push_blobs(url, destination)
        except (PeerFailure, ProtocolError) as exc:
            await self._failed(destination, exc)
            return False
        finally:
            await self.update_backlog(destination)
            await self.hub.store.release_lease(destination, self.hub.worker)
        await self._succeeded(destination)
        return True

    async def _push_own(self, client: PeerClient, destination: str) -> bool:
        held = (await self.hub.store.peer_status(destination)).own_custody
        wires = await self.hub.store.own_events_after(self.hub.me, held, 200)
        if not wires:
            return False
        session = PushSession({self.hub.me: held})
        for wire in wires:
            session.add(Event.from_json(wire))
        batch = session.next_batch()
        if batch is None:
            return False
        ack = Ack.from_dict(await self._timed_push(client, destination, batch.events))
        outcome = session.on_ack(ack)
        self.hub.metrics.events_pushed.labels("own").inc(len(outcome.in_custody))
        custody = session.custody.get(self.hub.me, held)
        await self.hub.store.record_contact(destination, self.hub.now(), own_custody=custody)
        for event, reject in outcome.quarantined:
            await self._refused(destination, event, reject.reason, reject.detail)
        log(logger, "relay.own_chain", destination=destination, custody=custody)
        return custody > held

    async def _push_outbox(self, client: PeerClient, destination: str) -> bool:
        rows = await self.hub.store.outbox_batch(destination, 200)
        if not rows:
            return False
        session = PushSession(relay=True)
        for _, wire in rows:
            session.add(Event.from_json(wire))
        batch = session.next_batch()
        if batch is None:
            return False
        ack = Ack.from_dict(await self._timed_push(client, destination, batch.events))
        outcome = session.on_ack(ack)
        self.hub.metrics.events_pushed.labels("relay").inc(len(outcome.in_custody))
        done = [e.id for e in outcome.in_custody]
        refused = [(e, r.reason, r.detail) for e, r in outcome.quarantined]
        at = self.hub.now()

        def txn(c: Connection) -> None:
            self.hub.store.outbox_done_txn(c, destination, done)
            for event, reason, detail in refused:
                self.hub.store.outbox_refused_txn(c, destination, event.id, reason, detail)
                self.hub.store.alert_txn(
                    c, "relay_refused", f"{destination}/{event.id[:16]}", f"{reason}: {detail}", at
                )

        await self.hub.db.run("outbox_acked", txn)
        log(logger, "relay.pushed", destination=destination, held=len(done), refused=len(refused))
        return bool(done or refused)

    async def _timed_push(
        self, client: PeerClient, destination: str, events: Sequence[Event]
    ) -> Any:
        """One push request, its round trip observed in ``tongban_hub_sync_latency_seconds``."""
        kind = "parent" if destination == self._parent() else "peer"
        started = time.monotonic()
        answer = await client.push_events(events)
        self.hub.metrics.sync_latency.labels(kind).observe(time.monotonic() - started)
        return answer

    async def supervise(self) -> None:
        """电子监察: yellow and red cards into the metrics, alerts for new red cards."""
        await supervision.supervise(self.hub)

    async def _push_blobs(self, url: str, destination: str) -> None:
        """Upload the materials of relayed events (tus; a blob the peer holds is skipped)."""
        tus = TusClient(url, self.hub.me, self.hub.key, self._http())
        while batch := await self.hub.store.blob_outbox(destination, 50):
            for blob, size in batch:
                path = self.hub.blobs.path(blob)

                async def read(offset: int, size: int, path: Path = path) -> bytes:
                    return await asyncio.to_thread(_read_at, path, offset, size)

                outcome = await tus.upload(blob, size, read)
                self.hub.metrics.blob_bytes_sent.inc(outcome.bytes_sent)
                await self.hub.store.blob_sent(destination, blob)
                log(
                    logger,
                    "relay.blob",
                    destination=destination,
                    blob=blob[:16],
                    sent=outcome.bytes_sent,
                    held=outcome.already_held,
                )

    async def _refused(self, destination: str, event: Event, reason: str, detail: str) -> None:
        at = self.hub.now()
        await self.hub.db.run(
            "own_refused",
            lambda c: self.hub.store.alert_txn(
                c, "relay_refused", f"{destination}/{event.id[:16]}", f"{reason}: {detail}", at
            ),
        )
        log(
            logger,
            "relay.refused",
            logging.ERROR,
            destination=destination,
            seq=event.seq,
            reason=reason,
        )

    # -- pulling ----------------------------------------------------------------------

    async def pull_parent(self, wait: float = LONG_POLL) -> int:
        """Take in the parent's feed from the saved cursor; the number of pages read."""
        parent, url = self._parent(), self.hub.settings.parent_url
        if parent is None or url is None:
            return 0
        channel = parent + FEED_SUFFIX
        if not self._due(channel) or not await self._leased(channel):
            return 0
        client = self._client(url, timeout=30.0)
        pages = 0
        try:
            while True:
                cursor = (await self.hub.store.peer_status(channel)).feed_cursor
                answer = await client.feed(cursor, 0 if pages else wait)
                more = await self._take_page(parent, channel, answer)
                pages += 1
                if not more or not await self._leased(channel):  # renews the lease
                    break
        except (PeerFailure, ProtocolError) as exc:
            await self._failed(channel, exc)
        else:
            await self._succeeded(channel)
        finally:
            await self.hub.store.release_lease(channel, self.hub.worker)
        return pages

    async def _take_page(self, parent: str, channel: str, answer: Any) -> bool:
        page, rejects = FeedPage.decode(answer)
        offered, undecodable = index_events(answer["events"], list(page.events), rejects)
        federation = self.hub.view.require()
        at = self.hub.now()
        screened = screen(federation, offered, lambda _event: "relay", at)

        def txn(c: Connection) -> Any:
            intake = ingest_txn(
                self.hub.store,
                federation,
                self.hub.me,
                c,
                source=parent,
                screened=screened,
                undecodable=undecodable,
                at=at,
                label="parent_feed",
            )
            self.hub.store.record_contact_txn(c, channel, at, feed_cursor=page.cursor)
            return intake

        intake = await self.hub.db.run("parent_feed", txn)
        self.hub.committed(intake.effects.recipients, intake.effects.relay)
        record_effects(self.hub.metrics, intake.effects)
        if page.events:
            log(logger, "relay.pulled", parent=parent, events=len(page.events), cursor=page.cursor)
        return page.more

    # -- config and upkeep -------------------------------------------------------------

    async def refresh_config(self) -> bool:
        """Adopt the parent's newer config, if any; True when one was adopted."""
        url, parent = self.hub.settings.parent_url, self._parent() or "parent"
        channel = parent + ":config"
        if url is None or not self._due(channel):
            return False
        home = self.hub.view.home
        try:
            answer = await self._client(url).config(None if home is None else home.serial)
            adopted = False
            if answer is not None:
                adopted = (await self.hub.view.adopt(answer, self.hub.now())).adopted
        except (PeerFailure, ProtocolError) as exc:
            await self._failed(channel, exc)
            return False
        await self._succeeded(channel)
        if adopted:
            log(
                logger,
                "config.adopted",
                source="parent",
                serial=self.hub.view.home.serial if self.hub.view.home else None,
            )
        return adopted

    async def refresh_all_configs(self) -> None:
        """The parent's config, then every metro peer's (see :meth:`refresh_peer_configs`):
        every :data:`CONFIG_INTERVAL`, and more often while one is still missing."""
        await self.hub.view.refresh()
        home = self.hub.view.home
        missing = home is None or any(
            self.hub.view.text(city) is None for city in home.config.peers
        )
        now = time.monotonic()
        if not missing and now - self._configs_checked < CONFIG_INTERVAL:
            return
        self._configs_checked = now
        await self.refresh_config()
        await self.refresh_peer_configs()

    async def refresh_peer_configs(self) -> list[str]:
        """Adopt newer configs of the metro peers; the cities whose config was adopted.

        A city hub asks each peer's own endpoint; a hub below it asks its parent
        (``?city=``), which serves the peer configs it verified. Either way the config is
        verified here against the peer's root keys in our home config (``adopt_peer``).
        """
        await self.hub.view.refresh()
        home = self.hub.view.home
        if home is None:
            return []
        parent_url = self.hub.settings.parent_url if self._parent() is not None else None
        adopted: list[str] = []
        for city, peer in sorted(home.config.peers.items()):
            url = parent_url or peer.endpoint
            channel = f"{city}:config"
            if not url or not self._due(channel):
                continue
            held = self.hub.view.text(city)
            try:
                answer = await self._client(url).config(
                    None if held is None else held[0], city if parent_url else None
                )
                if (
                    answer is not None
                    and (await self.hub.view.adopt_peer(answer, self.hub.now())).adopted
                ):
                    adopted.append(city)
            except (PeerFailure, ProtocolError) as exc:
                await self._failed(channel, exc)  # status page and /metrics, per peer
                continue
            await self._succeeded(channel)
        if adopted:
            log(logger, "config.peers_adopted", cities=",".join(adopted))
        return adopted

    async def update_backlog(self, destination: str) -> tuple[int, int]:
        """Recount what waits for ``destination`` (status table and gauges)."""
        me, own = self.hub.me, destination == self._parent()

        def txn(c: Connection) -> tuple[int, int]:
            count, size = self.hub.store.backlog_txn(c, destination)
            if own:
                custody = self.hub.store.peer_status_txn(c, destination).own_custody
                extra = self.hub.store.own_backlog_txn(c, me, custody)
                count, size = count + extra[0], size + extra[1]
            self.hub.store.set_backlog_txn(c, destination, count, size)
            return count, size

        count, size = await self.hub.db.run("backlog", txn)
        self.hub.metrics.backlog_events.labels(destination=destination).set(count)
        self.hub.metrics.backlog_bytes.labels(destination=destination).set(size)
        return count, size

    async def sign_receipts(self) -> int:
        """送达回执 now due (see :mod:`hub.services.receipts`)."""
        return await sign_due(self.hub)

    async def maintain(self) -> None:
        """Prune old nonces and sessions; recount backlogs."""
        now = self.hub.now()
        await self.hub.store.prune(nonces_before=int(now.timestamp()) - 2 * DEFAULT_WINDOW, now=now)
        for destination in await self.destinations():
            await self.update_backlog(destination)


def _read_at(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(size)


async def run_jobs_once(jobs: RelayJobs, destinations: Sequence[str] | None = None) -> None:
    """Push and pull once (tools and tests)."""
    for destination in destinations or await jobs.destinations():
        await jobs.push_destination(destination)
    await jobs.pull_parent(wait=0)
    await asyncio.sleep(0)
