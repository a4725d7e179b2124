"""A TCP proxy on 127.0.0.1 that makes a link weak: a bandwidth cap and added latency.

The rate cap is a serialization delay (each chunk waits its bytes / rate on a per-direction
clock) and latency delays each chunk without dividing throughput: chunks are pipelined
through a queue and released at ``arrival + latency``, as on a real long link (DESIGN.md §7).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

CHUNK = 16 * 1024


@dataclass
class LinkProfile:
    """How the link behaves in each direction."""

    rate: float | None = None  # bytes per second, None = unlimited
    latency: float = 0.0  # seconds, one way


@dataclass
class FaultProxy:
    """Forward ``listen`` → ``target`` through a weak link; counts bytes each way."""

    target_port: int
    profile: LinkProfile = field(default_factory=LinkProfile)
    port: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        up = asyncio.create_task(self._pump(reader, up_writer, upward=True))
        down = asyncio.create_task(self._pump(up_reader, writer, upward=False))
        self._tasks.update((up, down))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
                self._tasks.discard(task)
            for w in (writer, up_writer):
                w.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upward: bool
    ) -> None:
        # A bounded queue is the link's buffer: a full one stops reading, so the sender feels
        # back-pressure as it would from a slow link, instead of handing everything over at once.
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=8)
        sender = asyncio.create_task(self._send(queue, writer))
        clock = time.monotonic()  # when the link is free to serialise the next chunk
        try:
            while chunk := await reader.read(CHUNK):
                now = time.monotonic()
                if self.profile.rate:
                    clock = max(clock, now) + len(chunk) / self.profile.rate
                else:
                    clock = now
                await queue.put((clock + self.profile.latency, chunk))
                if upward:
                    self.bytes_up += len(chunk)
                else:
                    self.bytes_down += len(chunk)
            await queue.put((0.0, b""))
            await sender
        finally:
            sender.cancel()

    @staticmethod
    async def _send(
        queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(chunk)
            await writer.drain()
