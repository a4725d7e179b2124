"""Children's feeds: what a child pulls with ``GET /v1/feed``, and the long-poll.

A feed is the ordered list of events addressed into one child's subtree (feed entries with
gap-free positions, see :meth:`HubStore.append_feed_txn`). The cursor is the last position
the child has seen, as decimal text. A long-poll waits on an in-process notification set
after each commit, and on a watcher that reads the feed heads every :data:`RECHECK_SECONDS`,
because the entry may have been committed by another hub worker on the same PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

from protocol.errors import RemoteProtocolError
from protocol.sync import MAX_BATCH_BYTES, MAX_BATCH_EVENTS

from ..logs import log
from ..storage import HubStore

MAX_WAIT = 60.0
RECHECK_SECONDS = 0.5
MAX_CURSOR_DIGITS = 18
SPREAD_FROM = 5.0  # seconds: shorter waits are kept as asked
logger = logging.getLogger("tongban.hub.feed")


class _Waiter:
    """One long-poll: woken when its recipient's feed grows past ``after``."""

    __slots__ = ("after", "wake")

    def __init__(self, after: int) -> None:
        self.after = after
        self.wake = asyncio.Event()


HeadsOf = Callable[[list[str]], Awaitable[dict[str, int]]]


class FeedNotifier:
    """Wakes long-polls: at once after a commit in this process, and within
    :data:`RECHECK_SECONDS` after a commit by another worker.

    The cross-worker check is one query per tick for all waiting recipients (their feed heads),
    not one per long-poll, so thousands of waiting windows cost the database little.
    """

    def __init__(self, heads_of: HeadsOf | None = None, interval: float = RECHECK_SECONDS) -> None:
        self._heads_of = heads_of
        self._interval = interval
        self._waiters: dict[str, set[_Waiter]] = {}
        self._watcher: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def subscribe(self, recipient: str, after: int) -> Iterator[asyncio.Event]:
        waiter = _Waiter(after)
        self._waiters.setdefault(recipient, set()).add(waiter)
        if self._heads_of is not None and (self._watcher is None or self._watcher.done()):
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        try:
            yield waiter.wake
        finally:
            waiters = self._waiters.get(recipient)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[recipient]

    def notify(self, recipients: Iterable[str]) -> None:
        for recipient in recipients:
            for waiter in self._waiters.get(recipient, ()):
                waiter.wake.set()

    async def _watch(self) -> None:
        assert self._heads_of is not None
        while self._waiters:
            await asyncio.sleep(self._interval)
            try:
                heads = await self._heads_of(sorted(self._waiters))
            except Exception as exc:  # a database hiccup: long-polls still time out normally
                log(logger, "feed.watch_failed", logging.WARNING, error=type(exc).__name__)
                continue
            for recipient, head in heads.items():
                for waiter in self._waiters.get(recipient, ()):
                    if head > waiter.after:
                        waiter.wake.set()

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None


@dataclass(frozen=True)
class FeedSlice:
    """Wire bytes of the events of one page, the cursor after them, and whether more wait."""

    wires: list[bytes]
    cursor: str
    more: bool

    def body(self) -> bytes:
        """The ``FeedPage`` JSON built from the stored canonical event bytes."""
        events = b",".join(self.wires)
        more = b"true" if self.more else b"false"
        return (
            b'{"cursor":"'
            + self.cursor.encode()
            + b'","events":['
            + events
            + b'],"more":'
            + more
            + b"}"
        )


def parse_cursor(after: str | None) -> int:
    """The position a cursor stands for (absent: the start)."""
    if after is None or after == "":
        return 0
    if not after.isascii() or not after.isdigit() or len(after) > MAX_CURSOR_DIGITS:
        raise RemoteProtocolError("bad_cursor", "a cursor is what an earlier page returned")
    return int(after)


def parse_wait(wait: str | None) -> float:
    if wait is None or wait == "":
        return 0.0
    try:
        seconds = float(wait)
    except ValueError:
        raise RemoteProtocolError("bad_wait", "wait is a number of seconds") from None
    if not 0 <= seconds <= MAX_WAIT:
        raise RemoteProtocolError("bad_wait", f"wait must be 0..{MAX_WAIT:g} seconds")
    return seconds


def spread_wait(wait: float, draw: Callable[[], float] = random.random) -> float:
    """A long wait shortened by up to a quarter, at random.

    Windows that started their long-polls together (after a hub restart, a network
    outage) would otherwise come back together every ``wait`` seconds, each time a burst
    of signature checks and nonce commits that delays every push behind it; answering
    "nothing yet" a little early spreads them out within a few rounds.
    """
    if wait < SPREAD_FROM:
        return wait
    return wait * (1 - 0.25 * draw())


async def read_feed(
    store: HubStore,
    notifier: FeedNotifier,
    recipient: str,
    after: int,
    wait: float,
    *,
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> FeedSlice:
    """The next page of ``recipient``'s feed, waiting up to ``wait`` s for a first entry."""
    deadline = time.monotonic() + wait
    with notifier.subscribe(recipient, after) as wake:
        while True:
            wake.clear()
            rows, more = await store.feed_page(recipient, after, max_events, max_bytes)
            remaining = deadline - time.monotonic()
            if rows or remaining <= 0:
                break
            # asyncio.timeout, not wait_for: no extra task per waiting window (a hub holds
            # thousands, and every object they keep is walked by each full collection).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await wake.wait()
    cursor = rows[-1][0] if rows else after
    return FeedSlice([wire for _, wire in rows], str(cursor), more)
