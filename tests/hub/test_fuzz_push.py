"""Fuzzing the push handler (issue 8): Hypothesis drives ``POST /v1/push`` of a real hub.

Each example is one correctly signed request from village A whose body is drawn from: valid
events of A's chain (in any order, repeated), those events with one field replaced, random
JSON values, truncated or bit-flipped gzip, non-gzip bytes. Properties after every request:

* the hub answers 200, 400, 413 or 422 with a JSON reason or an acknowledgement: never a
  500, never a hang;
* what the hub holds of A is exactly a prefix of A's real chain (nothing forged got in,
  no fork, no gap), and custody acknowledged for A equals that prefix;
* the hub still takes A's next real event afterwards.

The hub runs on its own event loop in a thread, so Hypothesis drives it synchronously. A
short profile runs in ``make test``; a long one under ``-m long`` (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Connection

from hub.app import build_app
from hub.core import Hub, open_hub
from hub.storage.models import EventRow
from protocol.encoding import canonical
from protocol.event import Event
from protocol.http import RUNNER_KWARGS, sign_request
from tests.hub.fed import VILLAGE_A, VILLAGE_B, Chain, key, make_data_dir, submit

T = TypeVar("T")
LONG_SEED = 2026
SHORT = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LONG = settings(
    max_examples=3_000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CHAIN_LENGTH = 12


class HubThread:
    """A real hub (SQLite) served on 127.0.0.1 from its own loop in a thread."""

    def __init__(self, data: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.data = data
        self.n = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    async def start(self) -> None:
        self.hub: Hub = await open_hub(make_data_dir(self.data, "210102"))
        self.runner = web.AppRunner(build_app(self.hub, jobs=False), **RUNNER_KWARGS)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/v1/push"
        self.http = aiohttp.ClientSession()

    async def stop(self) -> None:
        await self.http.close()
        await self.runner.cleanup()
        await self.hub.close()

    async def push(self, body: bytes, gzipped: bool) -> tuple[int, Any]:
        self.n += 1
        headers = {"Content-Type": "application/json"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        headers.update(
            sign_request(
                "POST",
                self.url,
                headers,
                body,
                key(VILLAGE_A),
                created=int(time.time()),
                nonce=f"fuzz-{self.n}-{time.monotonic_ns()}",
            )
        )
        async with self.http.post(self.url, data=body, headers=headers) as resp:
            raw = await resp.read()
            return resp.status, json.loads(raw)

    async def held(self) -> list[str]:
        """Ids of A's events the hub holds, by seq."""

        def txn(c: Connection) -> list[str]:
            rows = c.execute(
                select(EventRow.id).where(EventRow.author == VILLAGE_A).order_by(EventRow.seq)
            )
            return [r.id for r in rows]

        return await self.hub.db.read("fuzz_held", txn)


@pytest.fixture(scope="module")
def chain() -> list[Event]:
    """Village A's real chain: a submission, then notes to village B."""
    c = Chain(VILLAGE_A)
    events = [submit(c)]
    events += [c.next(to=(VILLAGE_B,), body={"n": i}) for i in range(CHAIN_LENGTH - 1)]
    return events


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubThread]:
    running = HubThread(tmp_path / "hub")
    running.run(running.start())
    yield running
    running.run(running.stop())
    running.loop.call_soon_threadsafe(running.loop.stop)
    running.thread.join(10)


FIELDS = ["v", "author", "seq", "prev", "ts", "type", "case", "to", "body", "sig"]
text = st.text(max_size=10)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=12,
)


def entries(chain: list[Event]) -> st.SearchStrategy[Any]:
    real = st.sampled_from([e.to_dict() for e in chain])
    changed = st.builds(
        lambda event, name, value: {**event, name: value},
        real,
        st.sampled_from(FIELDS),
        json_values | st.sampled_from([e.id for e in chain] + [VILLAGE_B, 0, 2**60]),
    )
    return st.one_of(real, real, changed, json_values)


def bodies(chain: list[Event]) -> st.SearchStrategy[tuple[bytes, bool]]:
    # json.dumps, not canonical(): integers beyond ±2**53 are hostile input worth sending.
    batch = st.lists(entries(chain), max_size=6).map(lambda es: json.dumps({"events": es}).encode())
    other = json_values.map(lambda v: json.dumps(v).encode())
    plain = st.one_of(batch, other)
    gzipped = plain.map(lambda b: (gzip.compress(b, mtime=0), True))
    damaged = st.tuples(plain, st.integers(0, 400), st.integers(0, 255)).map(
        lambda t: (_damage(gzip.compress(t[0], mtime=0), t[1], t[2]), True)
    )
    raw = st.one_of(plain, st.binary(max_size=200)).map(lambda b: (b, False))
    return st.one_of(gzipped, gzipped, damaged, raw)


def _damage(data: bytes, at: int, value: int) -> bytes:
    if at >= len(data):
        return data[: len(data) // 2]  # truncated
    return data[:at] + bytes([value]) + data[at + 1 :]


def one_push(hub: HubThread, chain: list[Event], body: bytes, gzipped: bool) -> None:
    status, answer = hub.run(hub.push(body, gzipped))
    assert status in (200, 400, 413, 422), (status, answer)
    assert isinstance(answer, dict)
    if status in (200, 422):
        assert "custody" in answer
    else:
        assert isinstance(answer.get("error"), str) and answer["error"]
    held = hub.run(hub.held())
    assert held == [e.id for e in chain[: len(held)]], "the hub holds something not in A's chain"
    if status in (200, 422):
        # Custody reported for A is exactly what the hub holds (a batch whose only entry was
        # undecodable may report no head for A at all).
        assert answer["custody"].get(VILLAGE_A, len(held)) == len(held)


def check_still_works(hub: HubThread, chain: list[Event]) -> None:
    held = len(hub.run(hub.held()))
    body = gzip.compress(canonical({"events": [e.to_dict() for e in chain]}), mtime=0)
    status, answer = hub.run(hub.push(body, True))
    assert status == 200 and answer["custody"] == {VILLAGE_A: CHAIN_LENGTH}, (held, answer)


def test_fuzz_push_short(hub: HubThread, chain: list[Event]) -> None:
    @SHORT
    @given(sent=bodies(chain))
    def run(sent: tuple[bytes, bool]) -> None:
        one_push(hub, chain, *sent)

    run()
    check_still_works(hub, chain)


@pytest.mark.long
def test_fuzz_push_long(hub: HubThread, chain: list[Event]) -> None:
    @seed(LONG_SEED)
    @LONG
    @given(sent=bodies(chain))
    def run(sent: tuple[bytes, bool]) -> None:
        one_push(hub, chain, *sent)

    run()
    check_still_works(hub, chain)
