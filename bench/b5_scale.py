"""B5: many simulated stations (real protocol code, own keys and chains) against one district
hub: every station holds a long-poll on its feed while stations push one event each and then
read their feed (wait=0), in rounds. Push and feed latency p50/p99; hub CPU and peak RSS from
/proc. Figures: p99 ÷ 250 ms, peak RSS ÷ 300 MB."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from protocol.http.client import PeerClient

from .common import (
    QUICK,
    Progress,
    Result,
    SimStation,
    district,
    enrol_stations,
    median,
    percentile,
    pid_of,
    proc_cpu_seconds,
    proc_rss_bytes,
    village_id,
)


async def run(root: Path, progress: Progress) -> Result:
    stations_n = 50 if QUICK[0] else 2000
    rounds = 1 if QUICK[0] else 2
    concurrency = 32
    result = Result(
        "B5",
        f"{stations_n} simulated stations against one district hub",
        target="p99 < 250 ms, RSS < 300 MB",
    )
    stations = [SimStation.new(village_id(i)) for i in range(stations_n)]
    t = time.perf_counter()
    async with district(root, start=False) as d:
        enrol_stations(d.fed, stations)
        progress(f"{stations_n} stations enrolled into the draft in {time.perf_counter() - t:.1f}s")
        await d.hub.proc.start()
        await d.fed.publish()
        pid = pid_of(d.hub)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            clients = [PeerClient(d.hub.url, s.id, s.key, http, timeout=120) for s in stations]
            stop = asyncio.Event()

            async def hold(client: PeerClient) -> None:
                # A station's long-poll: it follows its cursor (the hub's 送达回执 land in
                # the feed) and backs off after an error rather than asking again at once.
                cursor: str | None = None
                while not stop.is_set():
                    try:
                        page = await client.feed(cursor, 20)
                        cursor = page.get("cursor", cursor)
                    except Exception:
                        await asyncio.sleep(1.0)

            cpu0 = proc_cpu_seconds(pid)
            started = time.monotonic()
            holders = [asyncio.create_task(hold(c)) for c in clients]
            await asyncio.sleep(2 if QUICK[0] else 10)
            progress(f"{stations_n} long-polls held; RSS {proc_rss_bytes(pid)[0] / 1e6:.0f} MB")
            push_lat: list[float] = []
            feed_lat: list[float] = []
            gate = asyncio.Semaphore(concurrency)

            async def one(st: SimStation, client: PeerClient) -> None:
                event = st.submit()
                async with gate:
                    t0 = time.perf_counter()
                    await client.push_events([event])
                    t1 = time.perf_counter()
                    await client.feed(None, 0)
                    t2 = time.perf_counter()
                push_lat.append(t1 - t0)
                feed_lat.append(t2 - t1)

            for r in range(rounds):
                await asyncio.gather(*(one(s, c) for s, c in zip(stations, clients, strict=True)))
                progress(f"round {r + 1}/{rounds}: {len(push_lat)} pushes")
            stop.set()
            elapsed = time.monotonic() - started
            cpu = proc_cpu_seconds(pid) - cpu0
            rss, hwm = proc_rss_bytes(pid)
            for task in holders:
                task.cancel()
            await asyncio.gather(*holders, return_exceptions=True)
    p99 = max(percentile(push_lat, 99), percentile(feed_lat, 99))
    result.figures["p99_over_250ms"] = round(p99 / 0.25, 4)
    result.figures["peak_rss_over_300MB"] = round(hwm / 300e6, 4)
    result.raw = {
        "stations": stations_n,
        "concurrent_requests": concurrency,
        "push_p50_ms": round(median(push_lat) * 1000, 1),
        "push_p99_ms": round(percentile(push_lat, 99) * 1000, 1),
        "feed_p50_ms": round(median(feed_lat) * 1000, 1),
        "feed_p99_ms": round(percentile(feed_lat, 99) * 1000, 1),
        "hub_cpu_cores": round(cpu / elapsed, 2),
        "hub_rss_bytes": rss,
        "hub_peak_rss_bytes": hwm,
    }
    progress(str(result.raw))
    result.met = p99 < 0.25 and hwm < 300e6
    return result
