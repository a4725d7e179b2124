"""B1: a district hub on PostgreSQL ingests batches of signed events from 100 authors.

Figure: events/s into custody (acknowledged pushes) ÷ raw Ed25519 verifications/s of one core
measured in the same run. Run with one ``tongban hub run`` process, then with two processes on
the same data folder and database (pushers spread over both)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from ops.launch import Proc, free_port
from protocol.event import Event
from protocol.http.client import PeerClient

from .common import (
    QUICK,
    RESULTS_DIR,
    Profiler,
    Progress,
    Result,
    SimStation,
    district,
    ed25519_verifications_per_second,
    enrol_stations,
    proc_cpu_seconds,
    village_id,
)

AUTHORS = 100
BATCH = 50


async def _push_all(
    urls: list[str], stations: list[SimStation], batches: dict[str, list[list[Event]]]
) -> tuple[int, float]:
    """Every author pushes its batches in order (authors concurrently); events in custody."""
    custody = 0
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64, force_close=False)
    ) as http:

        async def author(i: int, st: SimStation) -> None:
            nonlocal custody
            client = PeerClient(urls[i % len(urls)], st.id, st.key, http, timeout=120)
            for batch in batches[st.id]:
                ack = await client.push_events(batch)
                assert not ack.get("rejects"), ack
                custody += len(batch)
            assert ack["custody"][st.id] == st.seq

        started = time.perf_counter()
        await asyncio.gather(*(author(i, st) for i, st in enumerate(stations)))
        return custody, time.perf_counter() - started


def _make_batches(stations: list[SimStation], per_author: int) -> dict[str, list[list[Event]]]:
    out: dict[str, list[list[Event]]] = {}
    for st in stations:
        events = [st.submit() for _ in range(per_author)]
        out[st.id] = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    return out


async def run(root: Path, progress: Progress) -> Result:
    per_author = 10 if QUICK[0] else 100
    result = Result(
        "B1",
        "hub ingest on PostgreSQL, 100 authors",
        target="≥ 0.5 with one worker; 1 vs 2 workers reported",
    )
    verif = ed25519_verifications_per_second(0.5 if QUICK[0] else 2.0)
    result.raw["ed25519_verify_per_s"] = round(verif)
    progress(f"raw Ed25519 verify: {verif:,.0f}/s (one core)")
    for workers in (1, 2):
        stations = [SimStation.new(village_id(i)) for i in range(AUTHORS)]
        async with district(root / f"w{workers}", start=False) as d:
            enrol_stations(d.fed, stations)
            await d.hub.proc.start()
            await d.fed.publish()
            procs = [d.hub.proc]
            if workers == 2:
                port = free_port()
                extra = Proc(
                    "hub 210102 (2nd worker)",
                    ["hub", "run", "--data", str(d.hub.data), "--port", str(port)],
                    f"http://127.0.0.1:{port}/",
                    d.fed.root / "logs" / "hub-210102-2.log",
                )
                await extra.start()
                procs.append(extra)
            try:
                batches = _make_batches(stations, per_author)
                pids = [p.proc.pid for p in procs if p.proc is not None]
                cpu0 = sum(proc_cpu_seconds(p) for p in pids)
                out = RESULTS_DIR / f"B1-{workers}w.pyspy.txt"
                async with Profiler(pids[0], out) as prof:
                    events, seconds = await _push_all([p.url for p in procs], stations, batches)
                cpu = sum(proc_cpu_seconds(p) for p in pids) - cpu0
            finally:
                for p in procs[1:]:
                    await p.stop()
            if prof.top():
                result.raw[f"{workers}w_profile_inclusive"] = prof.top()
            log_text = d.hub.proc.tail(100_000)
            rejected = [ln for ln in log_text.splitlines() if "case.fold_rejected" in ln]
            result.raw[f"{workers}w_fold_rejected"] = len(rejected)
            if rejected:
                result.notes.append(f"fold rejected {len(rejected)}: {rejected[0][-160:]}")
            rate = events / seconds
            ratio = rate / verif
            result.figures[f"ingest_ratio_{workers}w"] = round(ratio, 4)
            result.raw[f"{workers}w"] = {
                "events": events,
                "seconds": round(seconds, 3),
                "events_per_s": round(rate, 1),
                "hub_cpu_s_per_1k_events": round(cpu / events * 1000, 3),
                "hub_cpu_utilisation": round(cpu / seconds, 2),
            }
            progress(
                f"{workers} worker(s): {events} events in {seconds:.1f}s = {rate:,.0f}/s"
                f" → ratio {ratio:.3f}; hub CPU {cpu / seconds:.2f} cores"
            )
    result.met = result.figures["ingest_ratio_1w"] >= 0.5
    return result
