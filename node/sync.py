"""The station's sync engine: push own events, upload blobs, pull the feed, refresh config.

Theory of operation
-------------------
The database is the truth; the engine holds nothing that a restart (or a SIGKILL) could
lose. Each cycle rebuilds what it needs from the store:

1. **push** (events first, so a case is visible upstream at once): a chain-mode
   :class:`~protocol.sync.PushSession` seeded with the stored custody head gets every own
   event above it (stopping below the lowest own event the hub refused: in chain mode the
   later ones could not be accepted anyway). Batches go out with ``PeerClient.push``; each
   ack's custody head and rejects are persisted before the next batch;
2. **blobs**: every blob whose upload is not done goes up through the tus client; the
   upload URL is persisted before any byte is sent, so a restart resumes with HEAD and
   never resends what the hub holds; a blob the hub already has is not sent at all;
3. **feed**: one long-poll ``GET /v1/feed`` after the persisted cursor. Each event is
   verified against the federation (the author's key valid at the event's ``ts``), stored,
   and folded into its case; refused events go to the quarantine; the 送达回执 the cases
   then await from this station are signed (:mod:`node.services.receipts`) and the cursor
   moves, all in the same transaction. Receipts signed wake the engine, so the cycle loops
   and pushes them at once. A wake-up (a new own event) while the long-poll waits pushes
   the event (and uploads its blobs) on another connection; the long-poll stays open;
4. **config**: ``GET /v1/config?have=<serial>`` first thing after start, after a long-poll
   that brought nothing, and at least every :data:`CONFIG_EVERY` seconds; a newer config
   that passes the trust rules is adopted and every case refolded under it.

Scheduling: an APScheduler job runs the cycle. After a successful cycle it is rescheduled
at once (the long-poll paces it); after a failure, after a jittered exponential backoff
(:class:`~protocol.http.backoff.Backoff`), reset by any successful request. :meth:`wake`
(called after each new own event) runs the job now, or, if a cycle is running, makes it
loop once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from protocol.case import CaseState, day_of
from protocol.config import Federation, parse_signed
from protocol.errors import ProtocolError
from protocol.event import Event
from protocol.http.backoff import Backoff
from protocol.http.client import PeerClient, PeerError, PeerFailure, PeerUnavailable
from protocol.http.clock import PeerClock
from protocol.http.tus_client import TusClient
from protocol.sync import Ack, FeedPage, PushSession

from .logs import log
from .metrics import NodeMetrics
from .services.context import EngineRuntime, NodeContext
from .services.folding import refolder
from .services.receipts import receipt_maker
from .storage import Refused, UploadRow

logger = logging.getLogger("node.sync")

T = TypeVar("T")

# The long-poll's wait: how often an idle window asks again. Each renewal is a signed request
# and an answer, ~1.1 kB on the wire: every 40 s that is ~2.4 MB a day on a metered 2G link
# (3.8 MB at 25 s), and for the hub, 2,000 idle windows ask 50 times a second, not 80.
# Well inside the hub's 60 s limit and the idle timeouts of NATs and proxies.
FEED_WAIT = 40.0
SAFETY_INTERVAL = 60.0
MIN_CYCLE = 1.0  # seconds: the shortest time between two healthy cycles
# A wake-up that comes within BURST of the one before (a window accepting applications one
# after another, several clerks at a township hall) waits PUSH_SETTLE before pushing, so the
# burst goes up as one batch (one signed request, one gzip stream) rather than a request per
# event; a lone application goes up at once.
PUSH_SETTLE = 0.3
BURST = 0.5
UPLOAD_STREAMS = 3  # blobs uploaded at once (see upload_blobs)
SUCCESS_RECORD_INTERVAL = 1.0
CONFIG_EVERY = 60.0  # seconds: the longest a busy window goes without asking for the config
CARD_NEAR_DAYS = 1  # a yellow card within this many working days of the deadline
CARD_STATES = (
    CaseState.SUBMITTED,
    CaseState.CORRECTION,
    CaseState.ACCEPTED,
    CaseState.IN_REVIEW,
    CaseState.AWAITING_SUPPLEMENT,
    CaseState.SUSPENDED,
)
BLOB_RETRY_REASONS = frozenset({"hash_mismatch", "no_such_upload", "offset_mismatch"})


def error_text(exc: Exception) -> str:
    """``<reason>: <detail>`` of a sync failure; the reason is what the sync bar explains."""
    if isinstance(exc, PeerUnavailable):
        return f"unreachable: {exc}"[:500]
    if isinstance(exc, PeerError):
        return f"{exc.reason}: HTTP {exc.status} {exc.detail}"[:500]
    if isinstance(exc, ProtocolError):
        return f"{exc.reason}: {exc.detail}"[:500]
    return f"error: {exc}"[:500]


def _read_range(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(size)


def _verified(
    federation: Federation, events: Iterable[Event], refused: list[Refused]
) -> list[Event]:
    """The events whose signature checks against the author's key valid at their ``ts``;
    the others are appended to ``refused``."""
    accepted: list[Event] = []
    for event in events:
        try:
            event.verify(federation.member_key(event.author, event.sig.kid, event.at))
        except ProtocolError as exc:
            refused.append(
                Refused(
                    event.id,
                    event.author,
                    event.seq,
                    event.case,
                    exc.reason,
                    exc.detail,
                    event.wire_bytes,
                )
            )
            continue
        accepted.append(event)
    return accepted


class SyncEngine:
    """Sync of one station with its parent hub."""

    def __init__(
        self,
        ctx: NodeContext,
        session: aiohttp.ClientSession,
        *,
        metrics: NodeMetrics | None = None,
        feed_wait: float = FEED_WAIT,
        chunk_size: int | None = None,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ctx = ctx
        self.metrics = metrics or NodeMetrics()
        self.feed_wait = feed_wait
        self.push_settle = PUSH_SETTLE
        self._quiet = False  # the last pull's long-poll ran its course with nothing new
        self._woken_at = float("-inf")  # the last wake-up (monotonic)
        self._in_burst = False  # it came within BURST of the one before
        self._config_at = float("-inf")  # when the config was last asked for (monotonic)
        station = ctx.station
        # One view of the hub's clock for both clients: a station whose clock is off learns
        # the hub's time once (protocol.http.clock) and signs every request with it.
        self.clock = PeerClock(clock)
        self.peer = PeerClient(
            station.parent_url, station.id, ctx.key, session, peer_clock=self.clock
        )
        tus_kwargs: dict[str, Any] = {} if chunk_size is None else {"chunk_size": chunk_size}
        self.tus = TusClient(
            station.parent_url, station.id, ctx.key, session, peer_clock=self.clock, **tus_kwargs
        )
        self.backoff = Backoff()
        self._rng = rng or random.Random()
        self._monotonic = monotonic
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._in_cycle = False
        self._online: bool | None = None
        self._last_error: str | None = None
        self._next_at: float | None = None
        self._more = False
        self._polled = False  # whether the last cycle's feed request was a real long-poll
        self._scheduler: AsyncIOScheduler | None = None
        self._task: asyncio.Task[Any] | None = None
        self._stopping = False
        self._last_recorded: float | None = None
        ctx.wake = self.wake
        ctx.probe = self
        ctx.fetch_case = self.fetch_case

    # -- what others see ---------------------------------------------------------------

    def runtime(self) -> EngineRuntime:
        next_in = None
        if self._next_at is not None:
            next_in = max(0.0, self._next_at - self._monotonic())
        return EngineRuntime(
            running=self._scheduler is not None and not self._stopping,
            online=self._online,
            failures=self.backoff.failures,
            next_attempt_in=None if self._in_cycle else next_in,
            last_error=self._last_error,
            clock_offset=self.clock.offset,
        )

    @property
    def more(self) -> bool:
        """Whether the last feed page said more events are waiting."""
        return self._more

    def wake(self) -> None:
        """A new own event (or the clerk's 立即同步): push now (alongside a held long-poll)
        and cut a back-off wait short."""
        now = self._monotonic()
        self._in_burst = now - self._woken_at < BURST
        self._woken_at = now
        self._wake.set()

    # -- scheduling --------------------------------------------------------------------
    #
    # One long-lived loop task does the syncing: a healthy cycle ends in a long-poll, so the
    # loop paces itself; after a failure it sleeps the backoff delay. A wake-up pushes while
    # the long-poll waits and cuts the backoff sleep short. The APScheduler job is only the
    # safety net that (re)starts the loop if it is not running; it never runs a cycle
    # itself, because a job that reschedules itself while still running is skipped by
    # APScheduler (max_instances=1), which left results waiting a whole interval.

    def start(self, scheduler: AsyncIOScheduler) -> None:
        """Add the sync job to ``scheduler`` (which the caller starts and shuts down)."""
        self._scheduler = scheduler
        scheduler.add_job(
            self._ensure_loop,
            IntervalTrigger(seconds=SAFETY_INTERVAL),
            id="sync",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )

    async def stop(self) -> None:
        """Stop scheduling and cut a running cycle (nothing is lost: the DB is the truth)."""
        self._stopping = True
        if self._scheduler is not None and self._scheduler.get_job("sync") is not None:
            self._scheduler.remove_job("sync")
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _ensure_loop(self) -> None:
        if self._stopping or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while not self._stopping:
            started = self._monotonic()
            ok = await self.cycle()
            if self._wake.is_set():
                continue
            if ok and self._polled:
                continue  # the feed long-poll paces a healthy link: go straight on
            if ok:
                # No long-poll was possible (no config yet): do not spin.
                pause = MIN_CYCLE - (self._monotonic() - started)
            else:
                pause = self.backoff.next_delay(self._rng.random())
            self._next_at = self._monotonic() + max(pause, 0.0)
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), pause)

    # -- one cycle ---------------------------------------------------------------------

    async def cycle(self) -> bool:
        """Push, blobs, feed, config; again while woken or the feed has more. True on
        success; on failure the error is recorded and the backoff advanced."""
        async with self._lock:
            self._in_cycle = True
            try:
                while True:
                    self._wake.clear()
                    self._more = False
                    if self.ctx.configs.home is None or self._config_stale():
                        await self.refresh_config()
                    await self.push()
                    await self.upload_blobs()
                    await self.pull(self.feed_wait)
                    if self._quiet or self._config_stale():
                        await self.refresh_config()
                    if not (self._wake.is_set() or self._more) or self._stopping:
                        break
            except (PeerFailure, ProtocolError) as exc:
                await self._failed(exc)
                return False
            finally:
                self._in_cycle = False
                await self._update_backlog()
            await self.ctx.store.record_attempt(self.ctx.stamp(), None)
            self._last_error = None
            return True

    async def _failed(self, exc: Exception) -> None:
        self.backoff.failure()
        self.metrics.sync_failures.inc()
        if isinstance(exc, PeerUnavailable) or (isinstance(exc, PeerError) and exc.status >= 500):
            self._set_online(False)
        message = error_text(exc)
        self._last_error = message
        log(
            logger,
            "sync.failed",
            level=logging.WARNING,
            error=type(exc).__name__,
            detail=message,
            failures=self.backoff.failures,
        )
        await self.ctx.store.record_attempt(self.ctx.stamp(), message)

    def _set_online(self, online: bool) -> None:
        self._online = online
        self.metrics.online.set(1 if online else 0)

    async def _request(self, step: str, call: Awaitable[T]) -> T:
        """Time one request; any answer from the hub resets the backoff."""
        started = self._monotonic()
        try:
            result = await call
        except PeerError:
            self._set_online(True)  # the hub answered, if only to refuse
            raise
        now = self._monotonic()
        self.metrics.sync_latency.labels(step).observe(now - started)
        self.backoff.success()
        self._set_online(True)
        self._last_error = None
        if self._last_recorded is None or now - self._last_recorded >= SUCCESS_RECORD_INTERVAL:
            # "last successful sync" moves while a long cycle runs, at most once a second.
            self._last_recorded = now
            await self.ctx.store.record_attempt(self.ctx.stamp(), None)
        return result

    async def _update_backlog(self) -> None:
        backlog = await self.ctx.store.backlog(self.ctx.station.id)
        self.metrics.backlog_events.set(backlog.events)
        self.metrics.backlog_bytes.set(backlog.event_bytes)
        self.metrics.backlog_blob_bytes.set(backlog.blob_bytes)
        await self._update_cards()

    async def _update_cards(self) -> None:
        """电子监察 at the window: how many open cases are near (yellow) or past (red) their
        promised date, by the federation calendar."""
        home = self.ctx.configs.home
        if home is None:
            return
        calendar, today = home.config.calendar, day_of(self.ctx.clock())
        counts = {"yellow": 0, "red": 0}
        for text in await self.ctx.store.open_deadlines([s.value for s in CARD_STATES]):
            due = date.fromisoformat(text)
            if due < today:
                counts["red"] += 1
            elif calendar.count_workdays(today, due) <= CARD_NEAR_DAYS:
                counts["yellow"] += 1
        for colour, count in counts.items():
            self.metrics.overdue_cases.labels(colour).set(count)

    # -- 1. push -----------------------------------------------------------------------

    async def push(self) -> int:
        """Push own events beyond custody; returns how many the hub took into custody."""
        store, me = self.ctx.store, self.ctx.station.id
        state = await store.sync_state()
        floor = await store.own_quarantine_floor(me)
        pending = await store.own_events_after(me, state.custody_seq, before=floor)
        if not pending:
            return 0
        session = PushSession({me: state.custody_seq})
        for event in pending:
            session.add(event)
        taken = 0
        while (batch := session.next_batch()) is not None:
            try:
                answer = await self._request("push", self.peer.push_events(batch.events))
                outcome = session.on_ack(Ack.from_dict(answer))
            except (PeerFailure, ProtocolError):
                session.on_failure()
                raise
            custody = session.custody.get(me, state.custody_seq)
            rejected = [(e, r.reason, r.detail) for e, r in outcome.quarantined]
            await store.record_ack(custody, rejected, self.ctx.stamp())
            self._observe_custody(outcome.in_custody)
            for event, reason, _ in rejected:
                self.metrics.events_quarantined.labels("out").inc()
                log(
                    logger,
                    "push.rejected",
                    level=logging.WARNING,
                    event=event.id,
                    seq=event.seq,
                    reason=reason,
                )
            taken += len(outcome.in_custody)
            if not outcome.in_custody and not outcome.quarantined:
                break  # nothing moved: the rest waits for the next cycle
        if taken:
            log(logger, "push.custody", events=taken, head=session.custody.get(me))
        return taken

    def _observe_custody(self, events: list[Event]) -> None:
        now = self.ctx.clock()
        for event in events:
            self.metrics.events_pushed.inc()
            self.metrics.custody_latency.observe(max(0.0, (now - event.at).total_seconds()))

    # -- 2. blobs ----------------------------------------------------------------------

    async def upload_blobs(self) -> int:
        """Upload every pending blob, :data:`UPLOAD_STREAMS` at a time; returns how many
        completed.

        One tus upload is stop-and-wait (a chunk, then its answer a round trip later), so on
        a slow, distant link a single stream leaves the line idle between chunks and between
        blobs; the other streams send while one waits. The first failure that stops the
        cycle cancels the other streams (their chunks resume next time, from the hub's offset).
        """
        rows = iter(await self.ctx.store.uploads(pending_only=True))
        done = 0

        async def stream() -> None:
            nonlocal done
            for row in rows:  # shared: each stream takes the next waiting blob
                if await self._upload(row):
                    done += 1

        tasks = [asyncio.create_task(stream()) for _ in range(UPLOAD_STREAMS)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return done

    async def _upload(self, row: UploadRow) -> bool:
        store, blob = self.ctx.store, row.hash
        path = self.ctx.blobs.path(blob)
        if not path.is_file():
            await store.update_upload(blob, self.ctx.stamp(), last_error="本地文件缺失")
            log(logger, "blob.missing", level=logging.ERROR, blob=blob)
            return False

        async def read_chunk(offset: int, size: int) -> bytes:
            return await asyncio.to_thread(_read_range, path, offset, size)

        async def created(url: str) -> None:
            await store.update_upload(blob, self.ctx.stamp(), url=url, offset=0)

        async def progress(offset: int, sent: int) -> None:
            self.metrics.blob_bytes_sent.inc(sent)
            await store.update_upload(blob, self.ctx.stamp(), offset=offset, sent=sent)

        try:
            outcome = await self._request(
                "blob",
                self.tus.upload(
                    blob,
                    row.size,
                    read_chunk,
                    url=row.url,
                    on_created=created,
                    on_progress=progress,
                ),
            )
        except PeerError as exc:
            if exc.status >= 500 or exc.status == 401:
                raise
            # This blob alone is refused (e.g. no event of ours refers to it yet): note it
            # and go on with the others; a damaged upload starts over next time.
            fields: dict[str, Any] = {"last_error": f"{exc.reason}: {exc.detail}"[:500]}
            if exc.reason in BLOB_RETRY_REASONS or exc.status in (404, 410):
                fields["url"] = None
                fields["offset"] = 0
            await store.update_upload(blob, self.ctx.stamp(), **fields)
            log(logger, "blob.refused", level=logging.WARNING, blob=blob, reason=exc.reason)
            return False
        if outcome.already_held:
            self.metrics.blobs_skipped.inc()
        await store.update_upload(
            blob, self.ctx.stamp(), done=True, offset=row.size, last_error=None
        )
        log(
            logger,
            "blob.uploaded",
            blob=blob,
            size=row.size,
            sent=outcome.bytes_sent,
            already_held=outcome.already_held,
        )
        return True

    # -- 3. feed -----------------------------------------------------------------------

    async def pull(self, wait: float) -> int:
        """One (long-poll) feed request; returns how many new events were stored. Own
        events accepted meanwhile are pushed while it waits (:meth:`_pushing_meanwhile`)."""
        federation = self.ctx.configs.federation
        self._polled = federation is not None
        self._quiet = True
        if federation is None:
            return 0  # nothing could be verified yet
        store = self.ctx.store
        state = await store.sync_state()
        answer = await self._pushing_meanwhile(
            self._request("feed", self.peer.feed(state.feed_cursor, wait))
        )
        page, bad = FeedPage.decode(answer)
        refused = [Refused(r.id, r.author, r.seq, None, r.reason, r.detail, None) for r in bad]
        accepted = _verified(federation, page.events, refused)
        result = await store.store_feed_page(
            accepted,
            refused,
            page.cursor,
            refolder(federation),
            self.ctx.stamp(),
            receipt_maker(self.ctx, federation),
        )
        self._signed(result.signed)
        self._quiet = not page.events
        self._more = page.more  # 通知 follow the fold (node.services.notify.hook)
        self.metrics.events_received.inc(len(result.stored))
        if result.refused:
            self.metrics.events_quarantined.labels("in").inc(result.refused)
        if result.stored or result.refused:
            log(
                logger,
                "feed.page",
                stored=len(result.stored),
                duplicates=result.duplicates,
                refused=result.refused,
                cases=len(result.cases),
            )
        return len(result.stored)

    async def fetch_case(self, number: str, id_hash: str) -> int:
        """补齐补正 at a window that did not accept the case: fetch its events from the hub
        (``POST /v1/cases/lookup``), verify and store them like feed events (the cursor
        stays). Returns how many events were new here."""
        federation = self.ctx.configs.require()
        answer = await self._request("lookup", self.peer.case_for_window(number, id_hash))
        raw = answer.get("events")
        if not isinstance(raw, list):
            raise PeerError(200, "bad_response", "events must be a list")
        page, bad = FeedPage.decode({"cursor": "0", "events": raw, "more": False})
        refused = [Refused(r.id, r.author, r.seq, None, r.reason, r.detail, None) for r in bad]
        accepted = [e for e in _verified(federation, page.events, refused) if e.case == number]
        result = await self.ctx.store.store_feed_page(
            accepted,
            refused,
            None,
            refolder(federation),
            self.ctx.stamp(),
            receipt_maker(self.ctx, federation),
        )
        self._signed(result.signed)
        log(logger, "case.fetched", case=number, stored=len(result.stored), refused=result.refused)
        return len(result.stored)

    def _signed(self, receipts: list[str]) -> None:
        """送达回执 just signed in a feed transaction: push them on the next round, now."""
        if receipts:
            log(logger, "receipt.signed", count=len(receipts))
            # Up at once: a receipt is not a clerk's act, so it neither starts a burst nor
            # makes the clerk's next application wait for one (B6 in docs/benchmarks.md).
            self._in_burst = False
            self._wake.set()

    async def _pushing_meanwhile(self, call: Awaitable[T]) -> T:
        """Await ``call`` (the long-poll); a wake-up meanwhile (a new own event) is pushed,
        with its blobs, on another connection while the long-poll stays open.

        Cutting the long-poll short instead would close its connection: a new one (and, in
        a deployment, a new TLS handshake) and a new signed request for every application
        a busy window accepts, bytes a 2G link pays for (B2 in docs/benchmarks.md).
        """
        task = asyncio.ensure_future(call)
        try:
            while True:
                waker = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({task, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waker.cancel()
                if task.done():
                    return task.result()
                if self._in_burst and self.push_settle > 0:
                    await asyncio.sleep(self.push_settle)  # the burst goes up as one batch
                self._wake.clear()
                await self.push()
                await self.upload_blobs()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _config_stale(self) -> bool:
        """Whether the config was last asked for :data:`CONFIG_EVERY` seconds ago or more
        (or never since start: a station back from a restart asks first, keys may have
        rotated meanwhile). Besides this it is asked after a long-poll that brought
        nothing; not after every page (a busy window's feed brings pages all day)."""
        return self._monotonic() - self._config_at >= CONFIG_EVERY

    # -- 4. config ---------------------------------------------------------------------

    async def refresh_config(self) -> bool:
        """Fetch a newer config; True when one was adopted."""
        self._config_at = self._monotonic()
        home = self.ctx.configs.home
        answer = await self._request(
            "config", self.peer.config(None if home is None else home.serial)
        )
        changed = False
        if answer is not None:
            try:
                offered = parse_signed(answer)
                changed = await self.ctx.configs.adopt(self.ctx.store, offered, self.ctx.stamp())
            except ProtocolError as exc:
                log(
                    logger,
                    "config.refused",
                    level=logging.WARNING,
                    reason=exc.reason,
                    detail=exc.detail,
                )
                return False
        peers = await self.refresh_peer_configs()
        if changed or peers:
            federation = self.ctx.configs.require()
            count, signed = await self.ctx.store.refold_all(
                refolder(federation), self.ctx.stamp(), receipt_maker(self.ctx, federation)
            )
            self._signed(signed)
            serial = self.ctx.configs.home.serial if self.ctx.configs.home else None
            log(logger, "config.adopted", serial=serial, peers=peers, refolded=count)
        return changed

    async def refresh_peer_configs(self) -> int:
        """Fetch newer metro peer configs through the hub (``?city=``); how many adopted."""
        home = self.ctx.configs.home
        if home is None:
            return 0
        adopted = 0
        for city in sorted(home.config.peers):
            held = self.ctx.configs.peers.get(city)
            try:
                answer = await self.peer.config(None if held is None else held.serial, city)
                if answer is None:
                    continue
                offered = parse_signed(answer)
                if await self.ctx.configs.adopt_peer(self.ctx.store, offered, self.ctx.stamp()):
                    adopted += 1
            except (PeerFailure, ProtocolError) as exc:
                # The hub may not hold this peer's config yet: try again next round.
                log(
                    logger,
                    "config.peer_unavailable",
                    level=logging.INFO,
                    city=city,
                    error=str(exc)[:200],
                )
        return adopted
