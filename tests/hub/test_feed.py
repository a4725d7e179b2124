"""GET /v1/feed: each child sees only what is addressed into its subtree, long-polled."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from protocol.http import PeerError
from protocol.sync import FeedPage
from tests.hub.conftest import RunningHub, StartHub
from tests.hub.fed import OTHER_VILLAGE, VILLAGE_A, VILLAGE_B, Chain, wire


@pytest.fixture
async def district(start_hub: StartHub, db_url: str | None) -> RunningHub:
    return await start_hub(db=db_url)


async def test_a_station_sees_only_its_own_feed(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    a, b = Chain(VILLAGE_A), Chain(VILLAGE_B)
    to_b = a.next(to=(VILLAGE_B,))
    to_a = b.next(to=(VILLAGE_A,))
    a_private = a.next(to=(VILLAGE_A,))  # addressed to itself: never bounced back
    await district.client(VILLAGE_A, session).push(wire(to_b, a_private))
    await district.client(VILLAGE_B, session).push(wire(to_a))
    page_a = FeedPage.from_dict(await district.client(VILLAGE_A, session).feed(None, 0))
    page_b = FeedPage.from_dict(await district.client(VILLAGE_B, session).feed(None, 0))
    assert [e.id for e in page_a.events] == [to_a.id]
    assert [e.id for e in page_b.events] == [to_b.id]
    assert not page_a.more and page_a.cursor == "1"


async def test_cursor_pages_in_order(district: RunningHub, session: aiohttp.ClientSession) -> None:
    a = Chain(VILLAGE_A)
    events = [a.next(to=(VILLAGE_B,), body={"n": i}) for i in range(5)]
    await district.client(VILLAGE_A, session).push(wire(*events))
    rows, more = await district.hub.store.feed_page(VILLAGE_B, 0, 2, 1 << 20)
    assert [pos for pos, _ in rows] == [1, 2] and more
    client = district.client(VILLAGE_B, session)
    page = FeedPage.from_dict(await client.feed("2", 0))
    assert [e.id for e in page.events] == [e.id for e in events[2:]]
    assert (page.cursor, page.more) == ("5", False)
    empty = FeedPage.from_dict(await client.feed("5", 0))
    assert (empty.events, empty.cursor) == ((), "5")


async def test_long_poll_wakes_when_an_event_arrives(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    waiting = asyncio.create_task(district.client(VILLAGE_B, session).feed(None, 30))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    event = Chain(VILLAGE_A).next(to=(VILLAGE_B,))
    started = time.monotonic()
    await district.client(VILLAGE_A, session).push(wire(event))
    page = FeedPage.from_dict(await asyncio.wait_for(waiting, 5))
    assert [e.id for e in page.events] == [event.id]
    assert time.monotonic() - started < 1.0


async def test_long_poll_times_out_empty(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    started = time.monotonic()
    page = FeedPage.from_dict(await district.client(VILLAGE_B, session).feed("0", 0.3))
    assert page.events == () and page.cursor == "0"
    assert 0.3 <= time.monotonic() - started < 2


async def test_feed_refuses_strangers_and_bad_queries(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(PeerError) as caught:
        await district.client(OTHER_VILLAGE, session).feed(None, 0)
    assert (caught.value.status, caught.value.reason) == (403, "not_a_child")
    client = district.client(VILLAGE_A, session)
    with pytest.raises(PeerError) as caught:
        await client.feed("../1", 0)
    assert caught.value.reason == "bad_cursor"
    with pytest.raises(PeerError) as caught:
        await client.feed(None, 61)
    assert caught.value.reason == "bad_wait"
