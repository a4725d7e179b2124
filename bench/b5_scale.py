"""B5: 2,000 simulated stations (real protocol code, own keys and chains) syncing against one
district hub as stations do, then the hub's capacity.

1. **Held long-polls**: every station holds ``GET /v1/feed`` with the station's own wait
   (``node.sync.FEED_WAIT``), follows its cursor (the hub's 送达回执 land in the feed and wake
   it) and backs off after an error, in a process of its own (``bench/b5_holders.py``).
   Stations come online at random times over one wait, and the load starts after that, in
   the steady state.
2. **Load**: applications arrive as a Poisson stream at :data:`RATE` per second at windows
   drawn at random; the window pushes its signed ``case.submitted`` and then reads its feed
   (``wait=0``, after its cursor), as a station does after a wake-up. Push and feed latency
   are measured at the client for every arrival.
3. **Capacity**: :data:`IN_FLIGHT` windows push and read back to back for a while: how many
   applications a second the hub takes with every long-poll still held.

A p99 latency has a meaning only at a stated load below capacity; the load is 10× the
average of a busy district (2,000 windows × 30 applications over 8 hours ≈ 2 a second), and
the capacity says how far it is from saturation. Figures: p99 ÷ 250 ms at the load, hub peak
RSS ÷ 300 MB."""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import sys
import time
from pathlib import Path

import aiohttp

from node.sync import FEED_WAIT
from protocol.http.client import PeerClient

from .common import (
    QUICK,
    RESULTS_DIR,
    Profiler,
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

RATE = 20.0  # applications per second offered in phase 2
IN_FLIGHT = 32  # concurrent windows in phase 3


class Window:
    """A simulated station's pushes and feed reads (its long-poll is held by the holders'
    process); one push at a time, as its sync engine does."""

    def __init__(self, station: SimStation, client: PeerClient) -> None:
        self.station = station
        self.client = client
        self.cursor: str | None = None
        self.busy = asyncio.Lock()

    async def apply(self) -> tuple[float, float]:
        """Push one application and read the feed after the cursor: (push s, feed s)."""
        async with self.busy:
            event = self.station.submit()
            t0 = time.perf_counter()
            ack = await self.client.push_events([event])
            t1 = time.perf_counter()
            page = await self.client.feed(self.cursor, 0)
            t2 = time.perf_counter()
            self.cursor = page.get("cursor", self.cursor)
        assert ack["custody"][self.station.id] == self.station.seq, ack
        return t1 - t0, t2 - t1


async def loop_lag(stop: asyncio.Event, lags: list[float]) -> None:
    """How late this (load generator's) event loop wakes: its own delay in the latencies."""
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - t - 0.01)


async def run(root: Path, progress: Progress) -> Result:
    stations_n = 50 if QUICK[0] else 2000
    seconds = 5.0 if QUICK[0] else 60.0
    capacity_s = 3.0 if QUICK[0] else 20.0
    result = Result(
        "B5",
        f"{stations_n} simulated stations against one district hub",
        target="p99 < 250 ms, RSS < 300 MB",
    )
    stations = [SimStation.new(village_id(i)) for i in range(stations_n)]
    rng = random.Random(2026)
    t = time.perf_counter()
    async with district(root, start=False) as d:
        enrol_stations(d.fed, stations)
        progress(f"{stations_n} stations enrolled into the draft in {time.perf_counter() - t:.1f}s")
        await d.hub.proc.start()
        await d.fed.publish()
        pid = pid_of(d.hub)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            windows = [
                Window(s, PeerClient(d.hub.url, s.id, s.key, http, timeout=120)) for s in stations
            ]
            stop = asyncio.Event()
            lags: list[float] = []
            # The long-polls run in a process of their own (bench/b5_holders.py); stations
            # come online at random over `settle` seconds, and the load starts after that,
            # in the steady state. (All at once, as after a hub restart, they come back in a
            # burst that the hub's shortened waits spread out over a few rounds.)
            settle = 2.0 if QUICK[0] else FEED_WAIT + 5
            keys = root / "b5-stations.txt"
            keys.write_text(
                "".join(f"{s.id} {s.key.seed.hex()}\n" for s in stations), encoding="ascii"
            )
            holders = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.b5_holders", d.hub.url, str(keys), str(settle - 1),
                stdin=asyncio.subprocess.PIPE,
            )  # fmt: skip
            ticker = asyncio.create_task(loop_lag(stop, lags))
            await asyncio.sleep(settle)
            # The measuring client's collector stays out of the measured phases.
            gc.collect()
            gc.disable()
            progress(f"{stations_n} long-polls held; hub RSS {proc_rss_bytes(pid)[0] / 1e6:.0f} MB")

            # 2. Poisson arrivals at RATE for `seconds`.
            push_lat: list[float] = []
            feed_lat: list[float] = []

            async def arrival(window: Window) -> None:
                push, feed = await window.apply()
                push_lat.append(push)
                feed_lat.append(feed)

            async with Profiler(pid, RESULTS_DIR / "B5.pyspy.txt"):
                cpu0, started = proc_cpu_seconds(pid), time.monotonic()
                tasks = []
                due = started
                while (due := due + rng.expovariate(RATE)) < started + seconds:
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    tasks.append(asyncio.create_task(arrival(rng.choice(windows))))
                await asyncio.gather(*tasks)
                load_s = time.monotonic() - started
                load_cpu = proc_cpu_seconds(pid) - cpu0
            progress(
                f"{len(push_lat)} applications at {len(push_lat) / load_s:.1f}/s: push p99"
                f" {percentile(push_lat, 99) * 1000:.0f} ms, feed p99"
                f" {percentile(feed_lat, 99) * 1000:.0f} ms"
            )

            # 3. Capacity: IN_FLIGHT windows back to back.
            taken = 0
            order = itertools.cycle(rng.sample(windows, len(windows)))
            cap_started = time.monotonic()
            cpu1 = proc_cpu_seconds(pid)

            async def worker() -> None:
                nonlocal taken
                while time.monotonic() - cap_started < capacity_s:
                    await next(order).apply()
                    taken += 1

            await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
            cap_s = time.monotonic() - cap_started
            cap_cpu = proc_cpu_seconds(pid) - cpu1
            capacity = taken / cap_s
            progress(f"capacity: {taken} applications in {cap_s:.1f}s = {capacity:.0f}/s")
            stop.set()
            gc.enable()
            rss, hwm = proc_rss_bytes(pid)
            assert holders.stdin is not None
            holders.stdin.close()
            await holders.wait()
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
    p99 = max(percentile(push_lat, 99), percentile(feed_lat, 99))
    result.figures["p99_over_250ms"] = round(p99 / 0.25, 4)
    result.figures["peak_rss_over_300MB"] = round(hwm / 300e6, 4)
    result.figures["capacity_over_rate"] = round(capacity / RATE, 2)
    result.raw = {
        "stations": stations_n,
        "long_poll_wait_s": FEED_WAIT,
        "offered_per_s": RATE,
        "applications": len(push_lat),
        "push_p50_ms": round(median(push_lat) * 1000, 1),
        "push_p99_ms": round(percentile(push_lat, 99) * 1000, 1),
        "feed_p50_ms": round(median(feed_lat) * 1000, 1),
        "feed_p99_ms": round(percentile(feed_lat, 99) * 1000, 1),
        "hub_cpu_cores_at_load": round(load_cpu / load_s, 2),
        "capacity_per_s": round(capacity, 1),
        "capacity_in_flight": IN_FLIGHT,
        "hub_cpu_cores_at_capacity": round(cap_cpu / cap_s, 2),
        "generator_loop_lag_p99_ms": round(percentile(lags, 99) * 1000, 1),
        "hub_rss_bytes": rss,
        "hub_peak_rss_bytes": hwm,
    }
    progress(str(result.raw))
    result.met = p99 < 0.25 and hwm < 300e6
    return result
