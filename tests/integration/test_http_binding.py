"""PeerClient against real aiohttp servers on 127.0.0.1 using the server helpers."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from protocol.encoding import canonical
from protocol.errors import RemoteProtocolError
from protocol.http import (
    RAW_BODY_KEY,
    RUNNER_KWARGS,
    MemoryNonceCache,
    PeerClient,
    PeerError,
    PeerUnavailable,
    authenticate,
    protocol_errors_middleware,
    read_json_body,
    sign_request,
    target_uri,
)
from protocol.keys import KeyPair

KEY = KeyPair.from_seed(b"\x01" * 32)
STRANGER = KeyPair.from_seed(b"\x02" * 32)
MEMBER = "210102001001"
JSON_LIMIT = 64 * 1024
RAW_LIMIT = 32 * 1024
CONFIG_SERIAL = 7

ServerFactory = Callable[..., Awaitable[TestServer]]


class Hub:
    """A toy peer: just enough state to exercise the helpers end to end."""

    def __init__(self) -> None:
        self.keys = {KEY.kid: KEY.public}
        self.nonces = MemoryNonceCache(300)
        self.events: list[dict[str, Any]] = []
        self.wire: list[tuple[str | None, bytes]] = []  # (Content-Encoding, raw body) per push
        self.new_events = asyncio.Event()
        self.feed_waiting = asyncio.Event()
        self.hold = 0.0  # simulate a slow peer
        self.config_status: int | None = None  # simulate a broken proxy

    async def auth(self, request: web.Request) -> str:
        verified = await authenticate(
            request, resolve_key=self.keys.get, nonces=self.nonces, max_bytes=RAW_LIMIT
        )
        return verified.keyid

    async def push(self, request: web.Request) -> web.Response:
        keyid = await self.auth(request)
        batch = await read_json_body(request, JSON_LIMIT)
        if not isinstance(batch, dict) or not isinstance(batch.get("events"), list):
            raise RemoteProtocolError("bad_batch", "expected {'events': [...]}")
        self.wire.append((request.headers.get("Content-Encoding"), request[RAW_BODY_KEY]))
        self.events.extend(batch["events"])
        self.new_events.set()
        return web.json_response({"accepted": len(batch["events"]), "by": keyid})

    async def feed(self, request: web.Request) -> web.Response:
        await self.auth(request)
        after = request.query.get("after", "")
        start = int(after) if after.isdigit() else 0
        wait = float(request.query["wait"])
        await asyncio.sleep(self.hold)
        if len(self.events) <= start:
            self.new_events.clear()
            self.feed_waiting.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.new_events.wait(), wait)
        resp = web.json_response(
            {"after": after, "events": self.events[start:], "cursor": str(len(self.events))}
        )
        # Responses are gzip on the wire too; the client must cope.
        resp.enable_compression(web.ContentCoding.gzip)
        return resp

    async def config(self, request: web.Request) -> web.Response:
        if self.config_status is not None:
            return web.Response(
                status=self.config_status, text="<h1>Bad Gateway</h1>", content_type="text/html"
            )
        await self.auth(request)
        if request.query.get("have") == str(CONFIG_SERIAL):
            return web.Response(status=304)
        return web.json_response({"serial": CONFIG_SERIAL, "config": {"members": []}})


HUB_KEY = web.AppKey("hub", Hub)


def make_app(hub: Hub) -> web.Application:
    app = web.Application(middlewares=[protocol_errors_middleware()])
    app[HUB_KEY] = hub
    app.router.add_post("/v1/push", hub.push)
    app.router.add_get("/v1/feed", hub.feed)
    app.router.add_get("/v1/config", hub.config)
    return app


@pytest.fixture
def hub() -> Hub:
    return Hub()


@pytest.fixture
async def server(hub: Hub, aiohttp_server: ServerFactory) -> TestServer:
    return await aiohttp_server(make_app(hub), **RUNNER_KWARGS)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def peer(
    server: TestServer,
    session: aiohttp.ClientSession,
    *,
    key: KeyPair = KEY,
    timeout: float = 5.0,
    clock: Callable[[], float] = time.time,
) -> PeerClient:
    return PeerClient(str(server.make_url("/")), MEMBER, key, session, timeout=timeout, clock=clock)


EVENTS = [{"author": MEMBER, "seq": 1, "body": {"名称": "营业执照"}}, {"author": MEMBER, "seq": 2}]


# --- happy paths -----------------------------------------------------------------------------


async def test_signed_push_round_trip(
    server: TestServer, session: aiohttp.ClientSession, hub: Hub
) -> None:
    answer = await peer(server, session).push(EVENTS)
    assert answer == {"accepted": 2, "by": KEY.kid}
    assert hub.events == EVENTS


async def test_push_body_is_gzip_on_the_wire(
    server: TestServer, session: aiohttp.ClientSession, hub: Hub
) -> None:
    await peer(server, session).push(EVENTS)
    [(encoding, raw)] = hub.wire
    assert encoding == "gzip"
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == canonical({"events": EVENTS})


async def test_feed_long_polls_until_events_arrive(
    server: TestServer, session: aiohttp.ClientSession, hub: Hub
) -> None:
    client = peer(server, session)
    pending = asyncio.create_task(client.feed(None, wait=30))
    await hub.feed_waiting.wait()
    assert not pending.done()
    await client.push(EVENTS[:1])
    page = await asyncio.wait_for(pending, 5)
    assert page["events"] == EVENTS[:1]
    assert page["cursor"] == "1"


async def test_feed_timeout_covers_the_wait(
    server: TestServer, session: aiohttp.ClientSession
) -> None:
    # Nothing arrives: the peer holds the request for the whole wait, longer than the
    # client's own timeout; the client must allow for it.
    page = await peer(server, session, timeout=0.2).feed("0", wait=0.6)
    assert page == {"after": "0", "events": [], "cursor": "0"}


async def test_slow_peer_times_out(
    server: TestServer, session: aiohttp.ClientSession, hub: Hub
) -> None:
    hub.hold = 2.0
    with pytest.raises(PeerUnavailable):
        await peer(server, session, timeout=0.2).feed("0", wait=0)


async def test_cursor_needing_percent_encoding_is_signed_as_sent(
    server: TestServer, session: aiohttp.ClientSession
) -> None:
    cursor = "c:1/2 x+y&z=é"
    page = await peer(server, session).feed(cursor, wait=0)
    assert page["after"] == cursor


async def test_config_not_modified(server: TestServer, session: aiohttp.ClientSession) -> None:
    client = peer(server, session)
    assert await client.config(CONFIG_SERIAL) is None
    newer = {"serial": CONFIG_SERIAL, "config": {"members": []}}
    assert await client.config(CONFIG_SERIAL - 1) == newer
    assert await client.config(None) == newer


async def test_client_session_without_auto_decompress(server: TestServer) -> None:
    # Then the feed's gzip response reaches us as sent and the client gunzips it itself.
    async with aiohttp.ClientSession(auto_decompress=False) as raw_session:
        client = peer(server, raw_session)
        await client.push(EVENTS)
        page = await client.feed(None, wait=0)
    assert page["events"] == EVENTS


# --- failures seen by the client -------------------------------------------------------------


async def test_peer_error_carries_reason(
    server: TestServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(PeerError) as info:
        await peer(server, session, key=STRANGER).push(EVENTS)
    assert (info.value.status, info.value.reason) == (401, "unknown_key")


async def test_handler_protocol_error_is_400(
    server: TestServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(PeerError) as info:
        await peer(server, session).push("not a list")  # type: ignore[arg-type]
    assert (info.value.status, info.value.reason) == (400, "bad_batch")


async def test_non_json_error_from_a_proxy(
    server: TestServer, session: aiohttp.ClientSession, hub: Hub
) -> None:
    hub.config_status = 502
    with pytest.raises(PeerError) as info:
        await peer(server, session).config(None)
    assert (info.value.status, info.value.reason) == (502, "http_502")
    assert "Bad Gateway" in info.value.detail


async def test_connection_refused_is_unavailable(session: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = PeerClient(f"http://127.0.0.1:{port}/", MEMBER, KEY, session, timeout=2)
    with pytest.raises(PeerUnavailable):
        await client.push(EVENTS)


# --- every rejection reason over HTTP --------------------------------------------------------


async def send(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
) -> tuple[int, dict[str, Any]]:
    async with session.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


def signed_push(
    url: str,
    body: bytes,
    *,
    key: KeyPair = KEY,
    created: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    headers.update(
        sign_request(
            "POST",
            url,
            headers,
            body,
            key,
            created=int(time.time()) if created is None else created,
            nonce=nonce or os.urandom(8).hex(),
        )
    )
    return headers


def weakly_signed(url: str, body: bytes) -> dict[str, str]:
    """Valid RFC 9421 signature that does not cover content-digest."""

    msg = SimpleNamespace(
        method="POST",
        url=url,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    resolver = MappingKeyResolver(
        public_keys={}, private_keys={KEY.kid: Ed25519PrivateKey.from_private_bytes(KEY.seed)}
    )
    HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=resolver).sign(
        msg,
        key_id=KEY.kid,
        created=datetime.now(tz=UTC),
        nonce="weak",
        covered_component_ids=("@method", "@target-uri"),
    )
    return dict(msg.headers)


BODY = gzip.compress(canonical({"events": EVENTS}), mtime=0)


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("unsigned", 401, "unsigned"),
        ("unknown_key", 401, "unknown_key"),
        ("wrong_url", 401, "bad_request_signature"),
        ("digest", 401, "digest_mismatch"),
        ("uncovered", 401, "uncovered_components"),
        ("stale", 401, "stale_request"),
        ("future", 401, "stale_request"),
    ],
)
async def test_rejections(
    server: TestServer, session: aiohttp.ClientSession, case: str, status: int, reason: str
) -> None:
    url = str(server.make_url("/v1/push"))
    body = BODY
    if case == "unsigned":
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    elif case == "unknown_key":
        headers = signed_push(url, body, key=STRANGER)
    elif case == "wrong_url":
        headers = signed_push(url.replace("127.0.0.1", "localhost"), body)
    elif case == "digest":
        headers = signed_push(url, body)
        body = gzip.compress(canonical({"events": []}), mtime=0)
    elif case == "uncovered":
        headers = weakly_signed(url, body)
    else:
        offset = -1000 if case == "stale" else 1000
        headers = signed_push(url, body, created=int(time.time()) + offset)
    assert await send(session, url, body, headers) == (status, {"error": reason, "detail": ANY})


class _Any:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)


ANY: Any = _Any()


async def test_replayed_request_is_rejected(
    server: TestServer, session: aiohttp.ClientSession
) -> None:
    url = str(server.make_url("/v1/push"))
    headers = signed_push(url, BODY)
    assert (await send(session, url, BODY, headers))[0] == 200
    assert await send(session, url, BODY, headers) == (
        401,
        {"error": "replayed_nonce", "detail": ANY},
    )


async def test_gzip_bomb_is_bounded(server: TestServer, session: aiohttp.ClientSession) -> None:
    url = str(server.make_url("/v1/push"))
    payload = b'{"events":["' + b"0" * (10 * 1024 * 1024) + b'"]}'
    bomb = gzip.compress(payload, mtime=0)
    assert len(bomb) < RAW_LIMIT  # small on the wire, huge inflated
    status, answer = await send(session, url, bomb, signed_push(url, bomb))
    assert (status, answer["error"]) == (413, "body_too_large")


async def test_raw_body_limit(server: TestServer, session: aiohttp.ClientSession) -> None:
    url = str(server.make_url("/v1/push"))
    big = os.urandom(RAW_LIMIT + 1)
    status, answer = await send(session, url, big, signed_push(url, big))
    assert (status, answer["error"]) == (413, "body_too_large")


async def test_server_that_auto_decompresses_says_so(
    hub: Hub, aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    # aiohttp's default gunzips request bodies before we can digest them: fail loudly.
    misconfigured = await aiohttp_server(make_app(hub))
    with pytest.raises(PeerError) as info:
        await peer(misconfigured, session).push(EVENTS)
    assert (info.value.status, info.value.reason) == (400, "bad_encoding")
    assert "auto_decompress" in info.value.detail


# --- target URI reconstruction ---------------------------------------------------------------


def test_target_uri_direct() -> None:
    request = make_mocked_request("GET", "/v1/feed?after=1&wait=25", headers={"Host": "hub:8080"})
    assert target_uri(request) == "http://hub:8080/v1/feed?after=1&wait=25"


def test_target_uri_behind_proxy() -> None:
    request = make_mocked_request(
        "POST",
        "/v1/push",
        headers={
            "Host": "127.0.0.1:8080",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "hub.example.gov.cn, proxy.internal",
        },
    )
    assert target_uri(request) == "http://127.0.0.1:8080/v1/push"  # not trusted by default
    assert target_uri(request, trust_forwarded=True) == "https://hub.example.gov.cn/v1/push"
    assert (
        target_uri(request, public_base="https://hub.example.gov.cn/tongban/")
        == "https://hub.example.gov.cn/tongban/v1/push"
    )
