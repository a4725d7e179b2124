"""B5's background load, in a process of its own: the long-polls of many stations.

``python -m bench.b5_holders HUB_URL STATIONS_FILE SPREAD``: each line of the file is
``<member id> <hex seed>``. Every station holds ``GET /v1/feed`` with the station's own wait,
follows its cursor and backs off 1 s after an error, starting at a random moment within
``SPREAD`` seconds (stations come online at different times). Runs until stdin closes.

Kept apart from the process that measures, so the measuring client's event loop carries only
the requests it times, not thousands of long-polls and their signatures.
"""

from __future__ import annotations

import asyncio
import gc
import random
import sys
from pathlib import Path

import aiohttp

from node.sync import FEED_WAIT
from protocol.http.client import PeerClient
from protocol.keys import KeyPair


async def hold(client: PeerClient, start_after: float) -> None:
    await asyncio.sleep(start_after)
    cursor: str | None = None
    while True:
        try:
            page = await client.feed(cursor, FEED_WAIT)
            cursor = page.get("cursor", cursor)
        except Exception:
            await asyncio.sleep(1.0)


async def main(url: str, lines: list[list[str]], spread: float) -> None:
    rng = random.Random(2026)
    loop = asyncio.get_running_loop()
    closed = loop.create_future()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        tasks = [
            asyncio.create_task(
                hold(
                    PeerClient(
                        url, member, KeyPair.from_seed(bytes.fromhex(seed)), http, timeout=120
                    ),
                    rng.uniform(0, spread),
                )
            )
            for member, seed in lines
        ]
        gc.collect()
        gc.freeze()  # the stations and their keys live as long as the process

        async def watch_stdin() -> None:
            await reader.read()
            closed.set_result(None)

        watcher = asyncio.create_task(watch_stdin())
        await closed
        for task in [*tasks, watcher]:
            task.cancel()
        await asyncio.gather(*tasks, watcher, return_exceptions=True)


if __name__ == "__main__":
    text = Path(sys.argv[2]).read_text(encoding="ascii")
    asyncio.run(
        main(sys.argv[1], [ln.split() for ln in text.splitlines() if ln], float(sys.argv[3]))
    )
