"""Clock skew (issue 8): a station clock hours or days off still syncs; the hub records its
own receipt time, flags the skew per peer (status data and a metric), and counts time limits
on its own clock.

The rule (protocol.http.clock, docs/reliability.md): the ±300 s request window is never
widened; the client learns the hub's time from the ``Date`` of the ``stale_request``
refusal and retries once with a corrected ``created``; its own clock travels in the signed
``Tongban-Clock`` header.
"""

from __future__ import annotations

import gzip
import itertools
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from hub.services.status import health
from protocol.encoding import canonical
from protocol.http import PeerError, sign_request
from protocol.http.tus_client import TusClient
from tests.hub.conftest import RunningHub, StartHub, custody_tables, table_counts
from tests.hub.fed import CST, VILLAGE_A, Chain, key, sha, submit

DAY = 86_400


@pytest.fixture
async def district(start_hub: StartHub) -> RunningHub:
    return await start_hub()


def skewed(seconds: float) -> object:
    """A station clock ``seconds`` ahead of the real one (negative: behind)."""
    return lambda: time.time() + seconds


async def clocks(hub: RunningHub) -> dict[str, dict[str, object]]:
    return {c["member"]: c for c in (await health(hub.hub))["clocks"]}


@pytest.mark.parametrize("offset", [-3 * DAY, -5 * 3600, 7 * 3600, 2 * DAY])
async def test_a_skewed_station_still_pushes_and_is_flagged(
    district: RunningHub, session: aiohttp.ClientSession, offset: int
) -> None:
    client = district.client(VILLAGE_A, session, clock=skewed(offset))
    chain = Chain(VILLAGE_A)
    # The clerk's event carries the station's (wrong) clock, as it would.
    claimed = datetime.now(CST) + timedelta(seconds=offset)
    event = submit(chain, ts=claimed)
    before = datetime.now(UTC)
    ack = await client.push([event.to_dict()])
    after = datetime.now(UTC)
    assert ack["custody"] == {VILLAGE_A: 1}
    # The client learned the hub's clock (within the Date header's one-second resolution).
    assert abs(client.clock.offset + offset) <= 2
    # The hub's receipt time is its own clock, not the station's.
    (stored,) = await district.hub.store.events_of_case(event.case or "")
    assert stored.id == event.id and before <= stored.received_at <= after
    record = await district.hub.store.case(event.case or "")
    assert record is not None
    # Time limits count the submission on the hub's clock: corrected by the measured skew,
    # never later than the hub received it.
    assert before - timedelta(seconds=3) <= record.received_at <= after
    seen = (await clocks(district))[VILLAGE_A]
    assert abs(int(seen["skew_seconds"]) + offset) <= 2  # type: ignore[call-overload]
    assert seen["skewed"] is True
    gauge = district.hub.metrics.registry.get_sample_value(
        "tongban_hub_peer_clock_skew_seconds", {"peer": VILLAGE_A}
    )
    assert gauge is not None and abs(gauge + offset) <= 2


async def test_an_offline_backlog_keeps_its_own_time(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    """A right clock: an application taken offline two days ago counts from two days ago."""
    client = district.client(VILLAGE_A, session)
    taken = datetime.now(CST) - timedelta(days=2)
    event = submit(Chain(VILLAGE_A), ts=taken)
    await client.push([event.to_dict()])
    record = await district.hub.store.case(event.case or "")
    assert record is not None
    assert abs((record.received_at - taken).total_seconds()) <= 2
    seen = (await clocks(district))[VILLAGE_A]
    assert abs(int(seen["skew_seconds"])) <= 2  # type: ignore[call-overload]
    assert seen["skewed"] is False


async def test_the_window_itself_is_not_widened(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    """A request signed an hour off is refused (stale_request) and changes nothing; only a
    client that corrects its clock gets in."""
    before = await table_counts(district.hub)
    body = gzip.compress(canonical({"events": [submit(Chain(VILLAGE_A)).to_dict()]}), mtime=0)
    url = district.url.rstrip("/") + "/v1/push"
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    headers.update(
        sign_request(
            "POST", url, headers, body, key(VILLAGE_A), created=int(time.time()) - 3600, nonce="n1"
        )
    )
    async with session.post(url, data=body, headers=headers) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "stale_request"
        assert resp.headers.get("Date")  # what a client corrects itself with
    assert custody_tables(await table_counts(district.hub)) == custody_tables(before)
    assert VILLAGE_A not in await clocks(district)


async def test_a_forged_clock_header_is_refused(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    """Tongban-Clock is covered by the signature: changing it in flight breaks it."""
    url = district.url.rstrip("/") + "/v1/feed?wait=0"
    headers = {"Tongban-Clock": str(int(time.time()))}
    headers.update(
        sign_request("GET", url, headers, b"", key(VILLAGE_A), created=int(time.time()), nonce="x")
    )
    headers["Tongban-Clock"] = str(int(time.time()) - 3 * DAY)
    async with session.get(url, headers=headers) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "bad_request_signature"
    assert VILLAGE_A not in await clocks(district)


async def test_tus_uploads_from_a_skewed_station(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    data = b"scan " * 2000
    tus = TusClient(
        district.url, VILLAGE_A, key(VILLAGE_A), session, clock=skewed(-DAY), chunk_size=4096
    )
    outcome = await tus.upload(sha(data), len(data), _reader(data))
    assert outcome.bytes_sent == len(data)
    assert abs(tus.clock.offset - DAY) <= 2
    assert district.hub.blobs.has(sha(data))


async def test_a_clock_that_cannot_be_corrected_reports_the_refusal(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    """A clock running away between two requests: the one retry fails, the caller sees why."""
    calls = itertools.count()

    def runaway() -> float:
        # Header, created and the correction of the first try read a day behind; then the
        # clock jumps a day ahead, so the corrected retry is a day off again.
        return time.time() + (-DAY if next(calls) < 3 else DAY)

    client = district.client(VILLAGE_A, session, clock=runaway)
    with pytest.raises(PeerError) as refused:
        await client.feed(None, 0)
    assert refused.value.reason == "stale_request"


def _reader(data: bytes):  # type: ignore[no-untyped-def]
    async def read(offset: int, size: int) -> bytes:
        return data[offset : offset + size]

    return read
