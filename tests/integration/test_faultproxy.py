"""The fault proxy is calibrated: throughput is the rate, latency adds one RTT, faults replay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.integration.faultproxy import FaultProxy, LinkProfile


class Sink:
    """A TCP server that counts what it receives and answers ``ok`` after ``expect`` bytes."""

    def __init__(self) -> None:
        self.received = 0
        self.expect = 0
        self.server: asyncio.Server | None = None
        self.port = 0
        self.eof = asyncio.Event()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = False
        try:
            while data := await reader.read(65536):
                self.received += len(data)
                if not answered and self.expect and self.received >= self.expect:
                    answered = True
                    writer.write(b"ok")
                    await writer.drain()
            self.eof.set()
        except ConnectionError:
            pass
        finally:
            writer.close()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    assert s.server is not None
    s.server.close()


async def _timed_transfer(proxy: FaultProxy, sink: Sink, size: int) -> float:
    """Seconds from the first byte sent to the answer after the last byte arrived."""
    sink.expect = size
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    started = time.monotonic()
    writer.write(b"x" * size)
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(2), 30) == b"ok"
    elapsed = time.monotonic() - started
    writer.close()
    return elapsed


@pytest.mark.parametrize(
    ("size", "mbit", "rtt"),
    [
        (150_000, 1.0, 0.2),  # 1.2 s + 0.2 s
        (400_000, 4.0, 0.6),  # 0.8 s + 0.6 s: needs the bandwidth-delay product in flight
        (25_000, 0.1, 0.6),  # 2G: 2.0 s + 0.6 s
    ],
    ids=["1mbit-200ms", "4mbit-600ms-bdp", "2g"],
)
async def test_n_bytes_take_size_over_rate_plus_one_rtt(
    sink: Sink, size: int, mbit: float, rtt: float
) -> None:
    rate = mbit * 1_000_000 / 8
    proxy = FaultProxy(sink.port, LinkProfile(rate=rate, latency=rtt / 2))
    await proxy.start()
    try:
        elapsed = await _timed_transfer(proxy, sink, size)
    finally:
        await proxy.close()
    expected = size / rate + rtt
    assert 0.75 * expected <= elapsed <= 1.25 * expected, (elapsed, expected)
    assert (proxy.bytes_up, proxy.bytes_down) == (size, 2)


async def test_an_unlimited_link_is_fast(sink: Sink) -> None:
    proxy = FaultProxy(sink.port)
    await proxy.start()
    try:
        assert await _timed_transfer(proxy, sink, 2_000_000) < 1.0
    finally:
        await proxy.close()


async def _push_through_resets(sink: Sink, seed: int, total: int) -> list[tuple[int, str, int]]:
    """Send ``total`` bytes, reconnecting after each reset; the cuts the proxy made."""
    proxy = FaultProxy(sink.port, LinkProfile(reset_every=(20_000, 60_000)), seed=seed)
    await proxy.start()
    sent = 0
    try:
        while sent < total:
            _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            before = len(proxy.resets)
            try:
                while sent < total and len(proxy.resets) == before:
                    # Write a little at a time and let the proxy forward it, so the count of
                    # bytes that made it is known when the cut comes.
                    piece = min(4096, total - sent)
                    writer.write(b"y" * piece)
                    await writer.drain()
                    await asyncio.sleep(0.002)
                    sent = proxy.bytes_up
            except ConnectionError:
                pass
            finally:
                writer.close()
        return list(proxy.resets)
    finally:
        await proxy.close()


async def test_resets_cut_at_seeded_random_offsets_that_replay(sink: Sink) -> None:
    first = await _push_through_resets(sink, seed=7, total=200_000)
    again = await _push_through_resets(sink, seed=7, total=200_000)
    other = await _push_through_resets(sink, seed=8, total=200_000)
    assert len(first) >= 3
    assert first == again  # the same seed cuts at the same offsets
    assert first != other
    offsets = [o for _, _, o in first]
    assert all(20_000 <= o <= 60_000 for o in offsets)
    assert len(set(offsets)) == len(offsets)  # random, not a fixed stride


async def test_a_reset_is_seen_by_both_sides(sink: Sink) -> None:
    proxy = FaultProxy(sink.port, LinkProfile(reset_every=(1000, 1000)))
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"z" * 5000)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await writer.drain()
            await asyncio.wait_for(reader.readexactly(1), 5)
        assert proxy.resets == [(1, "up", 1000)]
        await asyncio.sleep(0.1)
        assert sink.received == 1000  # exactly the bytes before the cut
    finally:
        await proxy.close()


async def test_timed_resets_cut_open_connections(sink: Sink) -> None:
    proxy = FaultProxy(sink.port, LinkProfile(reset_every=(0.2, 0.3), reset_by="seconds"))
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"a")
        await writer.drain()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 2)
        assert proxy.resets and proxy.resets[0][1] == "now"
    finally:
        await proxy.close()


async def test_stall_stops_traffic_and_resume_lets_it_flow(sink: Sink) -> None:
    proxy = FaultProxy(sink.port)
    await proxy.start()
    try:
        sink.expect = 20_000
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"b" * 10_000)
        await writer.drain()
        await asyncio.sleep(0.2)
        assert sink.received == 10_000
        proxy.stall()
        writer.write(b"b" * 10_000)
        await writer.drain()
        await asyncio.sleep(0.5)
        assert sink.received == 10_000  # a black hole: nothing moved, nothing closed
        assert not reader.at_eof()
        proxy.resume()
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"ok"
        assert sink.received == 20_000
        writer.close()
    finally:
        await proxy.close()


async def test_a_half_closed_link_ends_the_way_down_only(sink: Sink) -> None:
    proxy = FaultProxy(sink.port)
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"c" * 100)
        await writer.drain()
        await asyncio.sleep(0.1)
        proxy.half_close()
        assert await asyncio.wait_for(reader.read(), 2) == b""  # the client reads EOF…
        writer.write(b"c" * 100)  # …but its bytes still reach the server
        await writer.drain()
        await asyncio.sleep(0.2)
        assert sink.received == 200
        writer.close()
    finally:
        await proxy.close()


async def test_half_close_after_n_bytes_down(sink: Sink) -> None:
    proxy = FaultProxy(sink.port, LinkProfile(half_close_after=1))
    await proxy.start()
    try:
        sink.expect = 10
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"d" * 10)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 2) == b"ok"  # then EOF
        writer.close()
    finally:
        await proxy.close()
