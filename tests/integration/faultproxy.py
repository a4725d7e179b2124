"""A TCP proxy on 127.0.0.1 that makes a link weak, and breaks it on purpose (DESIGN.md §7).

* **Rate cap** — a serialization delay: each chunk waits its bytes / rate on a per-direction
  clock. **Latency** delays each chunk without dividing throughput: chunks are pipelined
  through a buffer and released at ``arrival + latency``, as on a real long link. The buffer
  holds at least the bandwidth-delay product (``rate × latency``), so throughput is the rate
  even with latency; a full buffer stops reading, so the sender feels back-pressure.
* **Resets** — ``reset_every=(lo, hi)`` draws, from a generator seeded with ``seed``, the
  distance to the next reset: in bytes forwarded (both directions, across connections;
  ``reset_by="bytes"``, the default, which replays exactly for a seed and the same traffic) or
  in seconds (``reset_by="seconds"``). At a byte reset the connection is cut at exactly that
  offset: the bytes before it are delivered, then both sides get a TCP RST. ``resets`` lists
  ``(connection number, direction, offset in that direction)`` of each cut.
* **Stall / black hole** — :meth:`stall` stops all traffic (connections stay open, nothing
  moves, new connections are accepted and wait); :meth:`resume` lets it flow again.
* **Half-closed** — :meth:`half_close` ends the server → client direction of every open
  connection (the client reads EOF) while client → server keeps flowing;
  ``half_close_after=n`` does it to each new connection after ``n`` bytes down.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

CHUNK = 16 * 1024
MIN_BUFFER = 64 * 1024
_RESET = b"\x00reset"  # sentinel in a direction's queue: cut the connection here


@dataclass
class LinkProfile:
    """How the link behaves in each direction."""

    rate: float | None = None  # bytes per second, None = unlimited
    latency: float = 0.0  # seconds, one way
    reset_every: tuple[float, float] | None = None  # (lo, hi) bytes or seconds between resets
    reset_by: Literal["bytes", "seconds"] = "bytes"
    buffer: int | None = None  # bytes in flight per direction; default ≥ 2 × rate × latency
    half_close_after: int | None = None  # end server → client after this many bytes down
    # One line for all connections (the rate is shared, as on a real link), rather than
    # the rate per connection; benchmarks that open several connections need this.
    shared: bool = False

    def buffer_bytes(self) -> int:
        if self.buffer is not None:
            return self.buffer
        bdp = int((self.rate or 0) * self.latency * 2)
        return max(MIN_BUFFER, bdp)

    def chunk_bytes(self) -> int:
        # Small chunks on slow links, so one chunk is not a long burst (≤ ~50 ms of the rate).
        if not self.rate:
            return CHUNK
        return max(512, min(CHUNK, int(self.rate * 0.05)))


class _Room:
    """Bytes of a direction's buffer: a full buffer stops reading (back-pressure)."""

    def __init__(self, size: int) -> None:
        self.size, self.used = size, 0
        self.changed = asyncio.Condition()

    async def take(self, n: int) -> None:
        async with self.changed:
            # An empty buffer takes any chunk, so a chunk larger than the buffer cannot hang.
            await self.changed.wait_for(lambda: self.used == 0 or self.used + n <= self.size)
            self.used += n

    async def give(self, n: int) -> None:
        async with self.changed:
            self.used -= n
            self.changed.notify_all()


@dataclass
class _Conn:
    number: int
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    down_closed: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def reset(self) -> None:
        """Abort both sides with an RST (SO_LINGER 0), dropping anything unsent."""
        for w in (self.client, self.server):
            sock = w.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()


@dataclass
class FaultProxy:
    """Forward ``listen`` → ``target`` through a weak link; counts bytes each way."""

    target_port: int
    profile: LinkProfile = field(default_factory=LinkProfile)
    port: int = 0
    seed: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    resets: list[tuple[int, str, int]] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _live: dict[int, _Conn] = field(default_factory=dict)
    _flowing: asyncio.Event = field(default_factory=asyncio.Event)
    _rng: random.Random = field(init=False)
    _until_reset: float = field(init=False, default=float("inf"))
    # When each direction of a shared link is free to serialise its next chunk.
    _line: dict[bool, float] = field(default_factory=lambda: {True: 0.0, False: 0.0})

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._flowing.set()
        if self.profile.reset_every and self.profile.reset_by == "bytes":
            self._until_reset = self._draw()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _draw(self) -> float:
        assert self.profile.reset_every is not None
        lo, hi = self.profile.reset_every
        if self.profile.reset_by == "bytes":
            return self._rng.randint(int(lo), int(hi))
        return self._rng.uniform(lo, hi)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.profile.reset_every and self.profile.reset_by == "seconds":
            self._spawn(self._timed_resets())

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._flowing.set()
        for conn in list(self._live.values()):
            conn.reset()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    # -- faults on demand ---------------------------------------------------------------

    def stall(self) -> None:
        """Black hole: nothing moves either way until :meth:`resume`; connections stay open."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def arm_resets(
        self, every: tuple[float, float], by: Literal["bytes", "seconds"] = "bytes"
    ) -> None:
        """Start resetting from now on (e.g. once a test's setup has crossed the link)."""
        self.profile.reset_every, self.profile.reset_by = every, by
        if by == "bytes":
            self._until_reset = self._draw()
        else:
            self._spawn(self._timed_resets())

    def reset_all(self) -> None:
        """Cut every open connection now (RST both sides)."""
        for conn in list(self._live.values()):
            self.resets.append((conn.number, "now", -1))
            conn.reset()

    def half_close(self) -> None:
        """End server → client on every open connection; client → server keeps flowing."""
        for conn in list(self._live.values()):
            self._half_close(conn)

    @staticmethod
    def _half_close(conn: _Conn) -> None:
        if not conn.down_closed:
            conn.down_closed = True
            with contextlib.suppress(OSError, RuntimeError):
                conn.client.write_eof()

    # -- plumbing -----------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _timed_resets(self) -> None:
        while True:
            await asyncio.sleep(self._draw())
            self.reset_all()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.connections += 1
        conn = _Conn(self.connections, writer, up_writer)
        self._live[conn.number] = conn
        up = self._spawn(self._pump(conn, reader, up_writer, upward=True))
        down = self._spawn(self._pump(conn, up_reader, writer, upward=False))
        conn.tasks.update((up, down))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.ALL_COMPLETED)
        finally:
            self._live.pop(conn.number, None)
            for task in (up, down):
                task.cancel()
            for w in (writer, up_writer):
                w.close()

    def _cut(self, n: int) -> int | None:
        """Count ``n`` bytes against the reset budget; the offset in them to cut at, if any."""
        if self._until_reset == float("inf"):
            return None
        if n < self._until_reset:
            self._until_reset -= n
            return None
        at = int(self._until_reset)
        self._until_reset = self._draw()
        return at

    async def _pump(
        self,
        conn: _Conn,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        upward: bool,
    ) -> None:
        profile = self.profile
        room = _Room(profile.buffer_bytes())
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(conn, queue, writer, room, upward=upward))
        clock = time.monotonic()  # when the link is free to serialise the next chunk
        offset = 0  # bytes forwarded in this direction of this connection
        try:
            while chunk := await reader.read(profile.chunk_bytes()):
                await self._flowing.wait()
                cut = self._cut(len(chunk))
                if cut is not None:
                    chunk = chunk[:cut]
                await room.take(len(chunk))
                now = time.monotonic()
                if profile.shared:
                    clock = self._line[upward]
                clock = max(clock, now) + len(chunk) / profile.rate if profile.rate else now
                if profile.shared:
                    self._line[upward] = clock
                if chunk:
                    await queue.put((clock + profile.latency, chunk))
                offset += len(chunk)
                if upward:
                    self.bytes_up += len(chunk)
                else:
                    self.bytes_down += len(chunk)
                if cut is not None:
                    self.resets.append((conn.number, "up" if upward else "down", offset))
                    await queue.put((clock + profile.latency, _RESET))
                    await sender
                    return
                if (
                    not upward
                    and profile.half_close_after is not None
                    and offset >= profile.half_close_after
                ):
                    await queue.put((clock + profile.latency, b""))
                    await sender
                    self._half_close(conn)
                    return
            await queue.put((clock + profile.latency, b""))
            await sender
        finally:
            sender.cancel()

    async def _send(
        self,
        conn: _Conn,
        queue: asyncio.Queue[tuple[float, bytes]],
        writer: asyncio.StreamWriter,
        room: _Room,
        *,
        upward: bool,
    ) -> None:
        while True:
            due, chunk = await queue.get()
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._flowing.wait()
            if chunk is _RESET:
                conn.reset()
                return
            if not chunk:
                if upward or not conn.down_closed:
                    with contextlib.suppress(OSError, RuntimeError):
                        writer.write_eof()
                if not upward:
                    conn.down_closed = True
                return
            if not upward and conn.down_closed:
                await room.give(len(chunk))
                continue  # the client's side is closed: a half-closed link drops the rest
            writer.write(chunk)
            await room.give(len(chunk))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
