"""Test clients: a bare signed tus client to probe the hub's tus endpoints request by request."""

from __future__ import annotations

import time

import aiohttp

from protocol.http import sign_request
from protocol.http.tus import checksum_header, encode_metadata
from tests.hub.conftest import RunningHub
from tests.hub.fed import key


class Tus:
    """Just enough of a signed tus client to drive the hub (the node has the real one)."""

    def __init__(self, hub: RunningHub, session: aiohttp.ClientSession, member: str) -> None:
        self.hub, self.session, self.member = hub, session, member
        self.n = 0

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        url = self.hub.url.rstrip("/") + path
        self.n += 1
        sent = {"Tus-Resumable": "1.0.0", **(headers or {})}
        sent.update(
            sign_request(
                method,
                url,
                sent,
                body,
                key(self.member),
                created=int(time.time()),
                nonce=f"{self.member}-{time.monotonic_ns()}-{self.n}",
            )
        )
        async with self.session.request(method, url, headers=sent, data=body or None) as resp:
            return resp.status, dict(resp.headers), await resp.read()

    async def create(self, blob: str, length: int) -> tuple[int, dict[str, str]]:
        status, headers, _ = await self.request(
            "POST",
            "/v1/blobs",
            {"Upload-Length": str(length), "Upload-Metadata": encode_metadata({"sha256": blob})},
        )
        return status, headers

    async def patch(
        self, location: str, offset: int, chunk: bytes, checksum: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        return await self.request(
            "PATCH",
            location,
            {
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset),
                "Upload-Checksum": checksum or checksum_header(chunk),
            },
            chunk,
        )

    async def offset(self, location: str) -> int:
        status, headers, _ = await self.request("HEAD", location)
        assert status == 200, status
        return int(headers["Upload-Offset"])
