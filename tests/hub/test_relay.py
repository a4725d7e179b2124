"""A district hub relaying to its city hub and back: two hub apps, one the other's parent."""

from __future__ import annotations

import asyncio

import aiohttp

from hub.services import review, staff
from protocol.event import Event
from protocol.seal import verify_result
from protocol.sync import FeedPage
from tests.hub.clients import Tus
from tests.hub.conftest import RunningHub, StartHub
from tests.hub.fed import (
    ANNUAL,
    CITY,
    CITY_REVIEWER,
    DISTRICT,
    PASSWORD,
    REVIEWER,
    SFJ,
    VILLAGE_A,
    Chain,
    Fed,
    sha,
    submit,
    wire,
)


async def pair(start_hub: StartHub, db: str | None = None) -> tuple[RunningHub, RunningHub]:
    city = await start_hub(CITY)
    district = await start_hub(DISTRICT, parent_url=city.url, db=db)
    return city, district


async def feed_of(hub: RunningHub, member: str, session: aiohttp.ClientSession) -> FeedPage:
    return FeedPage.from_dict(await hub.client(member, session).feed(None, 0))


async def test_city_matter_goes_up_and_its_result_comes_home(
    start_hub: StartHub, session: aiohttp.ClientSession
) -> None:
    city, district = await pair(start_hub)
    chain = Chain(VILLAGE_A)
    scan = b"\xff\xd8\xff" + bytes(range(256)) * 300
    submitted = submit(chain, ANNUAL, to=SFJ, blobs={"idcard": [sha(scan)], "form": []})
    number = submitted.case or ""
    await district.client(VILLAGE_A, session).push(wire(submitted))
    tus = Tus(district, session, VILLAGE_A)  # events first, the scan after
    _, headers = await tus.create(sha(scan), len(scan))
    await tus.patch(headers["Location"], 0, scan)
    assert await district.jobs.update_backlog(CITY) == (2, len(submitted.wire_bytes) + len(scan))

    # 市区联办: the district relays the application and its materials to the city authority.
    assert await district.jobs.push_destination(CITY)
    assert await district.hub.store.outbox_batch(CITY, 10) == []
    case = await city.hub.store.case(number)
    assert case is not None and (case.state, case.authority) == ("submitted", SFJ)
    assert await city.hub.store.blob_length(sha(scan)) == len(scan)
    status = await district.hub.store.peer_status(CITY)
    assert status.last_success is not None and (status.backlog_count, status.backlog_bytes) == (
        0,
        0,
    )

    # The city reviewer decides; the decision lands in the district's feed at the city.
    await staff.set_password(city.hub, CITY_REVIEWER, PASSWORD)
    _, reviewer = await staff.login(city.hub, CITY_REVIEWER, PASSWORD)
    await review.act(city.hub, reviewer, number, "accept", {"opinion": "受理"})
    decided = await review.act(city.hub, reviewer, number, "decide", {"result_code": 0})
    assert verify_result(decided["result"], Fed().federation()).genuine

    # The district pulls its feed from the city and routes the result down to the window.
    assert await district.jobs.pull_parent(wait=0) == 1
    page = await feed_of(district, VILLAGE_A, session)
    assert [(e.type, e.author) for e in page.events] == [
        ("case.accepted", CITY),
        ("case.decided", CITY),
    ]
    assert verify_result(page.events[1].body["result"], Fed().federation()).genuine
    # Pulling again takes nothing twice (the cursor is saved).
    assert await district.jobs.pull_parent(wait=0) == 1
    assert len((await feed_of(district, VILLAGE_A, session)).events) == 2


async def test_the_districts_own_chain_goes_up_whole(
    start_hub: StartHub, session: aiohttp.ClientSession
) -> None:
    city, district = await pair(start_hub)
    chain = Chain(VILLAGE_A)
    submitted = submit(chain)  # a district matter: decided at the district
    await district.client(VILLAGE_A, session).push(wire(submitted))
    await staff.set_password(district.hub, REVIEWER, PASSWORD)
    _, reviewer = await staff.login(district.hub, REVIEWER, PASSWORD)
    await review.act(district.hub, reviewer, submitted.case or "", "accept", {})
    assert await district.jobs.push_destination(CITY)
    # The city holds the district's chain (custody), but routes nothing back down.
    assert await city.hub.store.chain_head(DISTRICT) == await district.hub.store.chain_head(
        DISTRICT
    )
    assert (await district.hub.store.peer_status(CITY)).own_custody == 1
    assert await city.hub.store.feed_positions(DISTRICT) == []


async def test_a_dead_parent_is_recorded_and_backed_off(
    start_hub: StartHub, session: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    district = await start_hub(DISTRICT, parent_url=f"http://127.0.0.1:{unused_tcp_port}/")
    chain = Chain(VILLAGE_A)
    no_scans: dict[str, list[str]] = {"form": [], "idcard": []}
    await district.client(VILLAGE_A, session).push(
        wire(submit(chain, ANNUAL, to=SFJ, blobs=no_scans))
    )
    assert not await district.jobs.push_destination(CITY)
    status = await district.hub.store.peer_status(CITY)
    assert status.last_error is not None and status.last_success is None
    assert status.backlog_count == 1 and status.backlog_bytes > 0
    assert not await district.jobs.push_destination(CITY)  # backing off: not even tried
    assert (await district.hub.store.peer_status(CITY)).last_error_at == status.last_error_at


async def test_the_district_adopts_the_citys_newer_config(start_hub: StartHub) -> None:
    city, district = await pair(start_hub)
    assert not await district.jobs.refresh_config()  # both hold serial 1
    newer = Fed(serial=2, issued="2026-02-01T00:00:00+08:00")
    await city.hub.view.adopt(newer.signed_dict(), city.hub.now())
    assert await district.jobs.refresh_config()
    home = district.hub.view.home
    assert home is not None and home.serial == 2


async def test_the_scheduled_jobs_carry_a_case_up_and_its_result_down(
    start_hub: StartHub, session: aiohttp.ClientSession
) -> None:
    city = await start_hub(CITY, jobs=True)
    district = await start_hub(DISTRICT, parent_url=city.url, jobs=True)
    chain = Chain(VILLAGE_A)
    submitted = submit(chain, ANNUAL, to=SFJ, blobs={"form": [], "idcard": []})
    number = submitted.case or ""
    # The window waits on its feed while the case travels: no test code moves anything.
    waiting = asyncio.create_task(feed_until(district, VILLAGE_A, session, 3))
    await district.client(VILLAGE_A, session).push(wire(submitted))
    for _ in range(100):
        if await city.hub.store.case(number) is not None:
            break
        await asyncio.sleep(0.05)
    await staff.set_password(city.hub, CITY_REVIEWER, PASSWORD)
    _, reviewer = await staff.login(city.hub, CITY_REVIEWER, PASSWORD)
    await review.act(city.hub, reviewer, number, "accept", {})
    await review.act(city.hub, reviewer, number, "decide", {"result_code": 0})
    events = await asyncio.wait_for(waiting, 10)
    types = [e.type for e in events]  # the 送达回执 comes by the receipts job, in between
    assert [t for t in types if t != "case.received"] == ["case.accepted", "case.decided"]
    assert types.count("case.received") == 1


async def feed_until(
    hub: RunningHub, member: str, session: aiohttp.ClientSession, count: int
) -> list[Event]:
    events: list[Event] = []
    cursor = None
    while len(events) < count:
        page = FeedPage.from_dict(await hub.client(member, session).feed(cursor, 20))
        events.extend(page.events)
        cursor = page.cursor
    return events
