"""Two hub workers on one PostgreSQL: nothing lost, nothing duplicated, feeds gap-free."""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from protocol.sync import Ack, FeedPage
from tests.hub.conftest import RunningHub, StartHub, table_counts
from tests.hub.fed import DISTRICT, Chain, Fed, member

pytestmark = pytest.mark.postgres

VILLAGES = [f"210102001{n:03d}" for n in range(3, 9)]  # illustrative
PER_VILLAGE = 24


def federation() -> Fed:
    return Fed(extra_members=[member(v, DISTRICT, "station") for v in VILLAGES])


async def follow(
    workers: list[RunningHub],
    village: str,
    session: aiohttp.ClientSession,
    expected: int,
) -> list[str]:
    """Read a feed to the end, alternating workers page by page, as a flaky link would."""
    seen: list[str] = []
    cursor: str | None = None
    turn = 0
    while len(seen) < expected:
        worker = workers[turn % 2]
        turn += 1
        page = FeedPage.from_dict(await worker.client(village, session).feed(cursor, 0.5))
        seen.extend(e.id for e in page.events)
        cursor = page.cursor
    return seen


async def test_two_workers_share_one_database(
    start_hub: StartHub, pg_url: str, session: aiohttp.ClientSession
) -> None:
    fed = federation()
    workers = [await start_hub(DISTRICT, db=pg_url, fed=fed, name=f"w{i}") for i in (1, 2)]
    rng = random.Random(7)
    chains = {v: Chain(v) for v in VILLAGES}
    # Every village writes to the next one, so all feeds grow at once from both workers.
    plan = {
        v: [
            chains[v].next(to=(VILLAGES[(i + 1) % len(VILLAGES)],), body={"n": k})
            for k in range(PER_VILLAGE)
        ]
        for i, v in enumerate(VILLAGES)
    }

    async def pusher(village: str) -> None:
        events = plan[village]
        sent = 0
        while sent < len(events):
            size = rng.randint(1, 6)
            batch = events[max(0, sent - rng.randint(0, 2)) : sent + size]  # overlapping resends
            worker = workers[rng.randint(0, 1)]
            ack = Ack.from_dict(
                await worker.client(village, session).push([e.to_dict() for e in batch])
            )
            assert all(r.reason == "gap" for r in ack.rejects), ack.rejects
            sent = ack.custody[village]

    async def duplicate_storm(village: str) -> None:
        # The same batch to both workers at the same moment: one stores, the other agrees.
        batch = [e.to_dict() for e in plan[village][:3]]
        answers = await asyncio.gather(*(w.client(village, session).push(batch) for w in workers))
        assert all(not a["rejects"] or a["rejects"][0]["reason"] == "gap" for a in answers)

    readers = [asyncio.create_task(follow(workers, v, session, PER_VILLAGE)) for v in VILLAGES]
    await asyncio.gather(*(duplicate_storm(v) for v in VILLAGES[:2]))
    await asyncio.gather(*(pusher(v) for v in VILLAGES))
    read = await asyncio.wait_for(asyncio.gather(*readers), 60)

    counts = await table_counts(workers[0].hub)
    assert counts["events"] == len(VILLAGES) * PER_VILLAGE
    assert counts["feed_entries"] == len(VILLAGES) * PER_VILLAGE
    for i, village in enumerate(VILLAGES):
        assert await workers[1].hub.store.chain_head(village) == (PER_VILLAGE, plan[village][-1].id)
        sender = VILLAGES[i - 1]
        positions = await workers[0].hub.store.feed_positions(village)
        assert [pos for pos, _ in positions] == list(range(1, PER_VILLAGE + 1))
        # Feed order follows commit order, which for one sender is its chain order.
        assert [event_id for _, event_id in positions] == [e.id for e in plan[sender]]
        assert read[i] == [e.id for e in plan[sender]]


async def test_a_long_poll_on_one_worker_wakes_for_a_push_to_the_other(
    start_hub: StartHub, pg_url: str, session: aiohttp.ClientSession
) -> None:
    one, two = [
        await start_hub(DISTRICT, db=pg_url, fed=federation(), name=f"w{i}") for i in (1, 2)
    ]
    receiver, sender = VILLAGES[0], VILLAGES[1]
    waiting = asyncio.create_task(one.client(receiver, session).feed(None, 30))
    await asyncio.sleep(0.3)
    event = Chain(sender).next(to=(receiver,))
    started = asyncio.get_running_loop().time()
    await two.client(sender, session).push([event.to_dict()])
    page = FeedPage.from_dict(await asyncio.wait_for(waiting, 5))
    assert [e.id for e in page.events] == [event.id]
    assert asyncio.get_running_loop().time() - started < 1.5  # the periodic re-check
