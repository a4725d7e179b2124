"""The station's tus client against the real hub's tus server (hub/, over 127.0.0.1).

Fixtures come from tests/hub/conftest.py: a real district hub on a real SQLite file.
"""

from __future__ import annotations

import aiohttp
import pytest

from protocol.http.client import PeerError
from protocol.http.tus_client import TusClient
from tests.hub.conftest import RunningHub, StartHub, session, start_hub
from tests.hub.fed import VILLAGE_A, VILLAGE_B, key, sha

__all__ = ["session", "start_hub"]  # fixtures used here

SCAN = bytes(range(256)) * 1000  # 256,000 bytes
CHUNK = 64 * 1024


class Crash(Exception):
    """Stands in for the station process dying mid-upload."""


@pytest.fixture
async def district(start_hub: StartHub) -> RunningHub:
    return await start_hub()


def client(hub: RunningHub, session: aiohttp.ClientSession, member: str = VILLAGE_A) -> TusClient:
    return TusClient(hub.url, member, key(member), session, chunk_size=CHUNK, timeout=10)


def received(hub: RunningHub) -> float:
    value = hub.hub.metrics.registry.get_sample_value("tongban_hub_blob_bytes_received_total")
    return value or 0.0


async def reader(offset: int, size: int) -> bytes:
    return SCAN[offset : offset + size]


async def test_upload_in_chunks(district: RunningHub, session: aiohttp.ClientSession) -> None:
    urls: list[str] = []
    progress: list[int] = []

    async def created(url: str) -> None:
        assert progress == []  # the URL is known before any byte goes
        urls.append(url)

    async def moved(offset: int, sent: int) -> None:
        progress.append(offset)

    outcome = await client(district, session).upload(
        sha(SCAN), len(SCAN), reader, on_created=created, on_progress=moved
    )
    assert not outcome.already_held and outcome.bytes_sent == len(SCAN)
    assert outcome.url == urls[0] and urls[0].startswith(district.url.rstrip("/"))
    assert progress == [*range(CHUNK, len(SCAN), CHUNK), len(SCAN)]
    assert await district.hub.store.blob_length(sha(SCAN)) == len(SCAN)
    assert received(district) == len(SCAN)


async def test_a_held_blob_is_not_sent(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    await client(district, session).upload(sha(SCAN), len(SCAN), reader)
    outcome = await client(district, session, VILLAGE_B).upload(sha(SCAN), len(SCAN), reader)
    assert outcome.already_held and outcome.bytes_sent == 0 and outcome.url is None
    assert received(district) == len(SCAN)


async def test_after_a_crash_the_upload_resumes_at_the_held_offset(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    persisted: dict[str, str] = {}

    async def created(url: str) -> None:
        persisted["url"] = url

    async def crash_after_two(offset: int, sent: int) -> None:
        if offset >= 2 * CHUNK:
            raise Crash

    with pytest.raises(Crash):
        await client(district, session).upload(
            sha(SCAN), len(SCAN), reader, on_created=created, on_progress=crash_after_two
        )
    assert received(district) == 2 * CHUNK
    outcome = await client(district, session).upload(
        sha(SCAN), len(SCAN), reader, url=persisted["url"]
    )
    assert outcome.bytes_sent == len(SCAN) - 2 * CHUNK
    assert received(district) == len(SCAN)  # not one byte twice
    assert await district.hub.store.blob_length(sha(SCAN)) == len(SCAN)


async def test_a_lost_url_resumes_the_open_upload(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    async def crash(offset: int, sent: int) -> None:
        raise Crash

    with pytest.raises(Crash):
        await client(district, session).upload(sha(SCAN), len(SCAN), reader, on_progress=crash)
    outcome = await client(district, session).upload(sha(SCAN), len(SCAN), reader)
    assert outcome.bytes_sent == len(SCAN) - CHUNK
    assert received(district) == len(SCAN)


async def test_a_lost_acknowledgement_resyncs_the_offset(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    tus = client(district, session)
    url, offset = await tus.create(sha(SCAN), len(SCAN))
    assert url is not None and offset == 0
    raced: list[int] = []

    async def read_racing(at: int, size: int) -> bytes:
        if not raced:  # a PATCH whose answer never came back lands first
            raced.append(await tus.patch(url, at, SCAN[at : at + size]))
        return SCAN[at : at + size]

    outcome = await tus.upload(sha(SCAN), len(SCAN), read_racing, url=url)
    assert raced == [CHUNK]
    assert outcome.bytes_sent == len(SCAN) - CHUNK  # the 409 chunk counts as not sent
    assert received(district) == len(SCAN)


async def test_content_that_does_not_match_its_name_is_refused(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    claimed = sha(b"something else")
    with pytest.raises(PeerError) as refused:
        await client(district, session).upload(claimed, len(SCAN), reader)
    assert refused.value.reason == "hash_mismatch"
    assert await district.hub.store.blob_length(claimed) is None


async def test_an_unknown_member_is_refused(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    stranger = TusClient(district.url, "210102009009", key("210102009009"), session)
    with pytest.raises(PeerError) as refused:
        await stranger.upload(sha(SCAN), len(SCAN), reader)
    assert refused.value.status == 401
