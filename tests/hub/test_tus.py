"""tus 1.0 blob upload (create, resume, skip held, checksums, hash check) and downloads."""

from __future__ import annotations

import base64

import aiohttp
import pytest

from protocol.http.tus import encode_metadata
from protocol.http.tus_client import TusClient
from tests.hub.clients import Tus
from tests.hub.conftest import RunningHub, StartHub
from tests.hub.fed import VILLAGE_A, VILLAGE_B, Chain, key, sha, wire

SCAN = bytes(range(256)) * 1000  # 256,000 bytes standing in for an ID-card scan
HALF = len(SCAN) // 2


@pytest.fixture
async def district(start_hub: StartHub) -> RunningHub:
    return await start_hub()


def received(hub: RunningHub) -> float:
    value = hub.hub.metrics.registry.get_sample_value("tongban_hub_blob_bytes_received_total")
    return value or 0.0


async def test_upload_in_chunks_then_download(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    tus = Tus(district, session, VILLAGE_A)
    blob = sha(SCAN)
    status, headers = await tus.create(blob, len(SCAN))
    assert (status, headers["Upload-Offset"]) == (201, "0")
    location = headers["Location"]
    assert location.startswith("/v1/blobs/uploads/")
    status, headers, _ = await tus.patch(location, 0, SCAN[:HALF])
    assert (status, headers["Upload-Offset"]) == (204, str(HALF))
    assert await tus.offset(location) == HALF
    status, headers, _ = await tus.patch(location, HALF, SCAN[HALF:])
    assert (status, headers["Upload-Offset"]) == (204, str(len(SCAN)))
    assert await district.hub.store.blob_length(blob) == len(SCAN)
    assert received(district) == len(SCAN)
    status, _, body = await tus.request("GET", f"/v1/blobs/{blob}")
    assert (status, body) == (200, SCAN)


async def test_a_lost_upload_resumes_where_the_hub_stopped(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    tus = Tus(district, session, VILLAGE_A)
    blob = sha(SCAN)
    _, headers = await tus.create(blob, len(SCAN))
    await tus.patch(headers["Location"], 0, SCAN[:HALF])
    # The node was killed and forgot its upload URL: creating again resumes the same upload.
    status, again = await tus.create(blob, len(SCAN))
    assert (status, again["Location"], again["Upload-Offset"]) == (
        201,
        headers["Location"],
        str(HALF),
    )
    await tus.patch(again["Location"], HALF, SCAN[HALF:])
    assert received(district) == len(SCAN)  # not one byte twice
    assert await district.hub.store.blob_length(blob) == len(SCAN)


async def test_the_station_client_resumes_after_a_crash(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    blob = sha(SCAN)

    async def read(offset: int, size: int) -> bytes:
        return SCAN[offset : offset + size]

    async def dying_read(offset: int, size: int) -> bytes:
        if offset >= 2 * 64 * 1024:
            raise RuntimeError("SIGKILL")
        return await read(offset, size)

    def client() -> TusClient:
        return TusClient(district.url, VILLAGE_A, key(VILLAGE_A), session, chunk_size=64 * 1024)

    with pytest.raises(RuntimeError):
        await client().upload(blob, len(SCAN), dying_read)
    # Restarted without the URL it never persisted: creation finds the upload and resumes.
    outcome = await client().upload(blob, len(SCAN), read)
    assert (outcome.already_held, outcome.bytes_sent) == (False, len(SCAN) - 2 * 64 * 1024)
    assert received(district) == len(SCAN)
    again = await client().upload(blob, len(SCAN), read)
    assert (again.already_held, again.bytes_sent) == (True, 0)


async def test_a_held_blob_is_not_sent_again(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    first = Tus(district, session, VILLAGE_A)
    blob = sha(SCAN)
    _, headers = await first.create(blob, len(SCAN))
    await first.patch(headers["Location"], 0, SCAN)
    status, headers = await Tus(district, session, VILLAGE_B).create(blob, len(SCAN))
    assert (status, headers["Upload-Offset"], "Location" in headers) == (200, str(len(SCAN)), False)
    assert received(district) == len(SCAN)


async def test_a_bad_chunk_checksum_stores_nothing(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    tus = Tus(district, session, VILLAGE_A)
    _, headers = await tus.create(sha(SCAN), len(SCAN))
    location = headers["Location"]
    bad = "sha256 " + base64.b64encode(b"\0" * 32).decode()
    status, headers, body = await tus.patch(location, 0, SCAN[:HALF], checksum=bad)
    assert status == 460 and b"checksum_mismatch" in body
    assert await tus.offset(location) == 0
    status, _, body = await tus.patch(location, 5, SCAN[:HALF])
    assert status == 409 and b"offset_mismatch" in body
    assert received(district) == 0


async def test_a_blob_that_does_not_hash_to_its_name_is_discarded(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    tus = Tus(district, session, VILLAGE_A)
    claimed = sha(b"something else")
    _, headers = await tus.create(claimed, len(SCAN))
    location = headers["Location"]
    status, _, body = await tus.patch(location, 0, SCAN)
    assert status == 400 and b"hash_mismatch" in body
    assert await district.hub.store.blob_length(claimed) is None
    status, _, _ = await tus.request("HEAD", location)
    assert status == 404
    assert not list((district.settings.blob_dir / "partial").iterdir())


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"),
    [
        ("GET", "/v1/blobs/..%2F..%2Fhub.json", 400, "bad_blob_id"),
        ("GET", "/v1/blobs/" + "A" * 64, 400, "bad_blob_id"),
        ("HEAD", "/v1/blobs/uploads/..%2F..%2Fmember.key", 400, None),
        ("PATCH", "/v1/blobs/uploads/..%2F..%2Fmember.key", 400, "bad_upload_id"),
        ("HEAD", "/v1/blobs/uploads/" + "a" * 24, 404, None),
    ],
)
async def test_ids_from_outside_never_reach_a_path(
    district: RunningHub,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    status: int,
    reason: str | None,
) -> None:
    headers = {"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    sent = b"x" if method == "PATCH" else b""
    got, _, body = await Tus(district, session, VILLAGE_A).request(method, path, headers, sent)
    assert got == status
    if reason is not None:
        assert reason.encode() in body


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        (
            {"Upload-Length": "10", "Upload-Metadata": encode_metadata({"sha256": "../../etc"})},
            400,
            "bad_blob_id",
        ),
        ({"Upload-Length": "10"}, 400, "bad_metadata"),
        (
            {
                "Upload-Length": str(51 * 1024 * 1024),
                "Upload-Metadata": encode_metadata({"sha256": "a" * 64}),
            },
            413,
            "blob_too_large",
        ),
        (
            {"Upload-Length": "-1", "Upload-Metadata": encode_metadata({"sha256": "a" * 64})},
            400,
            "bad_upload_length",
        ),
    ],
)
async def test_bad_creation_requests(
    district: RunningHub,
    session: aiohttp.ClientSession,
    headers: dict[str, str],
    status: int,
    reason: str,
) -> None:
    got, _, body = await Tus(district, session, VILLAGE_A).request("POST", "/v1/blobs", headers)
    assert (got, reason.encode() in body) == (status, True)


async def test_tus_version_is_required(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    async with session.post(district.url + "v1/blobs") as resp:
        assert resp.status == 412
    async with session.options(district.url + "v1/blobs") as resp:
        assert resp.status == 204
        assert resp.headers["Tus-Extension"] == "creation,checksum"


async def test_who_may_download(district: RunningHub, session: aiohttp.ClientSession) -> None:
    uploader = Tus(district, session, VILLAGE_A)
    blob = sha(SCAN)
    _, headers = await uploader.create(blob, len(SCAN))
    await uploader.patch(headers["Location"], 0, SCAN)
    other = Tus(district, session, VILLAGE_B)
    status, _, body = await other.request("GET", f"/v1/blobs/{blob}")
    assert status == 403 and b"forbidden" in body
    # Once an event naming the blob is in B's feed, B may read it.
    naming = Chain(VILLAGE_A).next(
        to=(VILLAGE_B,), body={"materials": [{"id": "idcard", "blobs": [blob]}]}
    )
    await district.client(VILLAGE_A, session).push(wire(naming))
    status, headers, body = await other.request("GET", f"/v1/blobs/{blob}")
    assert (status, body) == (200, SCAN)
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_empty_answers_are_complete(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    tus = Tus(district, session, VILLAGE_A)
    status, headers = await tus.create(sha(b""), 0)
    assert (status, headers["Upload-Offset"]) == (200, "0")
