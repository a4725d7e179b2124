"""A protocol-level stand-in for the parent hub, for the station's unit tests.

It is NOT the hub (``hub/``): it speaks the wire protocol of docs/protocol.md §9 with the
protocol package's own server helpers (request signatures, strict bodies, chain rules,
BlobStore for tus), and lets a test see and steer what the station's sync engine does.
The end-to-end tests in ``tests/integration/`` run the station against the real hub.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from pathlib import Path
from typing import Any

from aiohttp import web

from protocol.chain import Verdict, classify
from protocol.config import Federation, SignedConfig
from protocol.errors import ProtocolError, RemoteProtocolError
from protocol.event import Event
from protocol.http import (
    RAW_BODY_KEY,
    MemoryNonceCache,
    authenticate,
    error_response,
    protocol_errors_middleware,
    read_json_body,
)
from protocol.http.blobs import BlobStore, check_hash
from protocol.keys import PublicKey
from protocol.sync import PushBatch


class HubDouble:
    """State a test can inspect: chains received, feed to serve, blobs, bytes received."""

    def __init__(self, config: SignedConfig, blob_root: Path) -> None:
        self.config = config
        self.federation = Federation(config.config)
        self.nonces = MemoryNonceCache()
        self.chains: dict[str, list[Event]] = {}
        self.reject_seqs: dict[int, str] = {}  # own seq -> reason the double refuses it
        self.feed: list[dict[str, Any]] = []
        self.feed_changed = asyncio.Event()
        self.blobs = BlobStore(blob_root)
        self.uploads: dict[str, tuple[str, int]] = {}
        self.patch_bytes = 0  # body bytes of every PATCH received
        self.pushes = 0
        self.unavailable = False  # answer 503 to everything
        self.fail_patch_after: int | None = None  # 500 after accepting this many PATCHes
        self.patches = 0
        self.pushed = asyncio.Event()  # set after every push answered
        self.polling = asyncio.Event()  # set while a feed long-poll waits
        self.feed_requests = 0

    # -- helpers -------------------------------------------------------------------------

    def resolve_key(self, kid: str) -> PublicKey | None:
        for member in self.config.config.members.values():
            for grant in member.keys:
                if grant.kid == kid:
                    return grant.key
        return None

    async def _auth(self, request: web.Request) -> None:
        if self.unavailable:
            raise web.HTTPServiceUnavailable()
        await authenticate(request, resolve_key=self.resolve_key, nonces=self.nonces)

    def serve(self, event: Event) -> None:
        """Put an event into the station's feed."""
        self.feed.append(event.to_dict())
        self.feed_changed.set()

    # -- sync endpoints --------------------------------------------------------------------

    async def push(self, request: web.Request) -> web.Response:
        await self._auth(request)
        self.pushes += 1
        events, rejects = PushBatch.decode(await read_json_body(request, 4 * 1024 * 1024))
        out_rejects = [r.to_dict() for r in rejects]
        custody: dict[str, int] = {}
        for index, event in enumerate(events):
            chain = self.chains.setdefault(event.author, [])
            head_id = chain[-1].id if chain else None
            held = chain[event.seq - 1].id if event.seq <= len(chain) else None
            verdict = classify(len(chain), head_id, event, held)
            reason = self.reject_seqs.get(event.seq)
            try:
                key = self.federation.member_key(event.author, event.sig.kid, event.at)
                event.verify(key)
            except ProtocolError as exc:
                reason = exc.reason
            if reason is None and verdict not in (Verdict.ACCEPTED, Verdict.DUPLICATE):
                reason = verdict.value
            if reason is not None:
                out_rejects.append(
                    {
                        "id": event.id,
                        "author": event.author,
                        "seq": event.seq,
                        "reason": reason,
                        "detail": f"refused by the double: {reason}",
                        "index": index,
                    }
                )
            elif verdict is Verdict.ACCEPTED:
                chain.append(event)
            custody[event.author] = len(chain)
        self.pushed.set()
        return web.json_response({"custody": custody, "held": [], "rejects": out_rejects})

    async def feed_handler(self, request: web.Request) -> web.Response:
        await self._auth(request)
        self.feed_requests += 1
        after = int(request.query.get("after", "0"))
        wait = float(request.query.get("wait", "0"))
        if after >= len(self.feed) and wait > 0:
            self.feed_changed.clear()
            self.polling.set()
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.feed_changed.wait(), wait)
            finally:
                self.polling.clear()
        page = self.feed[after : after + 200]
        cursor = str(after + len(page))
        return web.json_response(
            {"events": page, "cursor": cursor, "more": after + len(page) < len(self.feed)}
        )

    async def config_handler(self, request: web.Request) -> web.Response:
        if self.unavailable:
            raise web.HTTPServiceUnavailable()
        have = request.query.get("have")
        if have is not None and int(have) == self.config.serial:
            return web.Response(status=304)
        return web.json_response(self.config.to_dict())

    # -- tus ------------------------------------------------------------------------------

    def _tus(self, status: int, offset: int, **headers: str) -> web.Response:
        return web.Response(
            status=status,
            headers={"Tus-Resumable": "1.0.0", "Upload-Offset": str(offset), **headers},
        )

    async def create(self, request: web.Request) -> web.Response:
        await self._auth(request)
        length = int(request.headers["Upload-Length"])
        kind, _, value = request.headers["Upload-Metadata"].partition(" ")
        blob = check_hash(base64.b64decode(value).decode()) if kind == "sha256" else ""
        if self.blobs.has(blob):
            return self._tus(200, length)
        upload = self.blobs.new_upload()
        self.uploads[upload] = (blob, length)
        return self._tus(201, 0, Location=f"/v1/blobs/uploads/{upload}")

    async def head(self, request: web.Request) -> web.Response:
        await self._auth(request)
        upload = request.match_info["id"]
        if upload not in self.uploads:
            raise web.HTTPNotFound()
        _blob, length = self.uploads[upload]
        return self._tus(200, self.blobs.offset(upload), **{"Upload-Length": str(length)})

    async def patch(self, request: web.Request) -> web.Response:
        await self._auth(request)
        upload = request.match_info["id"]
        if upload not in self.uploads:
            raise web.HTTPNotFound()
        if self.fail_patch_after is not None and self.patches >= self.fail_patch_after:
            raise web.HTTPInternalServerError()
        blob, length = self.uploads[upload]
        chunk = request[RAW_BODY_KEY]  # authenticate() read the body already
        self.patch_bytes += len(chunk)
        kind, _, digest = request.headers["Upload-Checksum"].partition(" ")
        if kind != "sha256" or base64.b64decode(digest) != hashlib.sha256(chunk).digest():
            return error_response(RemoteProtocolError("checksum_mismatch", "chunk"), 460)
        try:
            offset = self.blobs.append(upload, int(request.headers["Upload-Offset"]), chunk)
        except RemoteProtocolError as exc:
            return error_response(exc, 409)
        self.patches += 1
        if offset == length:
            self.blobs.finish(upload, blob)
            del self.uploads[upload]
        return self._tus(204, offset)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[protocol_errors_middleware()])
        app.router.add_post("/v1/push", self.push)
        app.router.add_get("/v1/feed", self.feed_handler)
        app.router.add_get("/v1/config", self.config_handler)
        app.router.add_post("/v1/blobs", self.create)
        app.router.add_route("HEAD", "/v1/blobs/uploads/{id}", self.head)
        app.router.add_patch("/v1/blobs/uploads/{id}", self.patch)
        return app
