"""B7: growth. Fill a district hub by pushing signed events (100 authors, batches of 100) to
each checkpoint; there, time single-event pushes and feed reads (wait=0), and read the
database size. Figures: latency at the last checkpoint ÷ at the first (flat = 1), and DB
bytes per event at the last ÷ at the first (linear size = 1)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import asyncpg  # type: ignore[import-untyped]

from protocol.http.client import PeerClient

from .common import (
    QUICK,
    Progress,
    Result,
    SimStation,
    district,
    enrol_stations,
    median,
    pg_dsn,
    village_id,
)

AUTHORS = 100
BATCH = 100


async def db_bytes(db: str) -> int:
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await conn.close()


async def run(root: Path, progress: Progress) -> Result:
    checkpoints = (1_000, 3_000) if QUICK[0] else (5_000, 20_000)
    result = Result(
        "B7",
        "growth: latency and DB size per event",
        target="flat latency, linear size (ratios ≈ 1); 100k and 1M not run (see notes)",
    )
    stations = [SimStation.new(village_id(i)) for i in range(AUTHORS)]
    rows: list[dict[str, float]] = []
    async with district(root, start=False) as d:
        enrol_stations(d.fed, stations)
        await d.hub.proc.start()
        await d.fed.publish()
        base = await db_bytes(d.db)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as http:
            clients = [PeerClient(d.hub.url, s.id, s.key, http, timeout=120) for s in stations]
            held = 0
            started = time.monotonic()
            for target in checkpoints:
                while held < target:
                    per = min(BATCH, (target - held) // AUTHORS or 1)

                    async def fill(st: SimStation, client: PeerClient, n: int = per) -> None:
                        await client.push([st.submit().to_dict() for _ in range(n)])

                    await asyncio.gather(
                        *(fill(s, c) for s, c in zip(stations, clients, strict=True))
                    )
                    held += per * AUTHORS
                push_lat: list[float] = []
                feed_lat: list[float] = []
                for i in range(30):
                    st, client = stations[i % AUTHORS], clients[i % AUTHORS]
                    event = st.submit().to_dict()
                    t0 = time.perf_counter()
                    await client.push([event])
                    t1 = time.perf_counter()
                    await client.feed(None, 0)
                    feed_lat.append(time.perf_counter() - t1)
                    push_lat.append(t1 - t0)
                held += 30
                size = await db_bytes(d.db) - base
                row = {
                    "events": held,
                    "push_p50_ms": round(median(push_lat) * 1000, 2),
                    "feed_p50_ms": round(median(feed_lat) * 1000, 2),
                    "db_bytes": size,
                    "db_bytes_per_event": round(size / held),
                    "fill_events_per_s": round(held / (time.monotonic() - started)),
                }
                rows.append(row)
                progress(str(row))
    first, last = rows[0], rows[-1]
    result.figures["push_latency_last_over_first"] = round(
        last["push_p50_ms"] / first["push_p50_ms"], 3
    )
    result.figures["feed_latency_last_over_first"] = round(
        last["feed_p50_ms"] / first["feed_p50_ms"], 3
    )
    result.figures["bytes_per_event_last_over_first"] = round(
        last["db_bytes_per_event"] / first["db_bytes_per_event"], 3
    )
    rate = last["fill_events_per_s"]
    result.raw = {"checkpoints": rows}
    result.notes.append(
        f"filling through the API runs at ~{rate:.0f} events/s here: 100k would take"
        f" ~{100_000 / rate / 60:.0f} min and 1M ~{1_000_000 / rate / 60:.0f} min, beyond the"
        " 15-minute budget; checkpoints stop at what fits"
    )
    result.met = all(0.67 < v < 1.5 for v in result.figures.values())
    return result
