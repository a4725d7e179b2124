"""B7: growth. A district hub holding 10k, 100k and 1M events: push and feed latency through
the real handlers at each size, and database bytes per event.

Growing a hub to 1M events through its API would take the B1 rate times 1M (far beyond the
15-minute budget), so the growth steps are **bulk-loaded straight into PostgreSQL** with
``INSERT … SELECT generate_series`` (server side, no Python per row): events of 1,000
other stations with real-sized wire bytes (a real event's canonical bytes), one case row per
event (a real fold's text), and a feed entry per event in the feeds of the 100 measured
stations, so every index the handlers use grows. Nothing measured goes around the code
under test: at each checkpoint 100 single-event pushes of real signed events (their chains
continue across checkpoints) and 100 feed reads near the tail of a 10k-entry-per-million
feed go through ``tongban hub run`` over HTTP, after 10 of each not counted (the first
requests after a bulk step re-plan their statements). Each step ends as a hub's steady
state would be: vacuumed, analysed, checkpointed. Figures: p50 at the last checkpoint ÷ at the
first (flat = 1), and DB bytes per event at the last ÷ at the first (linear size = 1)."""

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

AUTHORS = 100  # real, enrolled, pushing stations (their feeds grow too)
BULK_AUTHORS = 1000  # illustrative authors of the bulk-loaded events
STEP = 100_000  # rows per bulk INSERT (one transaction each)
SAMPLES = 100
WARMUP = 10  # requests not counted after each bulk step: each pooled connection re-plans

# $1, $2: the generate_series bounds; $3: a real event's wire bytes; $4: a real fold's text.
# Bulk author k is 2101029 followed by k in five digits; seq = g / BULK_AUTHORS + 1.
_AUTHOR = "'2101029' || lpad((g % 1000)::text, 5, '0')"
_SEQ = "(g / 1000 + 1)"
_CASE = f"{_AUTHOR} || '-20261123-' || lpad({_SEQ}::text, 6, '0')"
LOAD_EVENTS = f"""
INSERT INTO events (id, author, seq, prev, type, case_no, "to", wire, ts, received_at, via)
SELECT encode(sha256(('tb-bulk/' || g)::bytea), 'hex'), {_AUTHOR}, {_SEQ}, NULL,
       'case.submitted', {_CASE}, '["210102:wjj"]', $3::bytea,
       '2026-11-23T09:30:00+08:00', now(), 'bulk'
FROM generate_series($1::bigint, $2::bigint - 1) AS g
"""
LOAD_CASES = f"""
INSERT INTO cases (number, state, authority, matter, "window", pickup, fold, rejected,
                   last_error, received_at, updated_at)
SELECT {_CASE}, 'submitted', '210102:wjj', 'HP-WJJ-ZS-02', {_AUTHOR}, {_AUTHOR},
       $3::text, '[]', NULL, now(), now()
FROM generate_series($1::bigint, $2::bigint - 1) AS g
"""
# Feed entries of bulk events go after each measured station's feed head, which is locked
# as the hub's own appends lock it (receipts the hub signs meanwhile land in the same feeds).
ENSURE_HEADS = """
INSERT INTO feed_heads (recipient, pos) SELECT unnest($1::text[]), 0 ON CONFLICT DO NOTHING
"""
LOAD_FEED = """
WITH heads AS (
    SELECT recipient, pos FROM feed_heads WHERE recipient = ANY($3::text[]) FOR UPDATE
)
INSERT INTO feed_entries (recipient, pos, event_id)
SELECT h.recipient, h.pos + (g - $1) / 100 + 1,
       encode(sha256(('tb-bulk/' || g)::bytea), 'hex')
FROM generate_series($1::bigint, $2::bigint - 1) AS g
JOIN heads h ON h.recipient = ($3::text[])[g % 100 + 1]
"""
MOVE_HEADS = """
UPDATE feed_heads f SET pos = m.pos
FROM (SELECT recipient, max(pos) AS pos FROM feed_entries
      WHERE recipient = ANY($1::text[]) GROUP BY recipient) m
WHERE f.recipient = m.recipient
"""


async def db_bytes(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT pg_database_size(current_database())"))


async def bulk_load(
    conn: asyncpg.Connection, start: int, stop: int, wire: bytes, fold: str, feeds: list[str]
) -> None:
    """Bulk events ``start`` … ``stop - 1`` with their cases and feed entries."""
    await conn.execute(ENSURE_HEADS, feeds)
    for a in range(start, stop, STEP):
        b = min(stop, a + STEP)
        async with conn.transaction():
            await conn.execute(LOAD_EVENTS, a, b, wire)
            await conn.execute(LOAD_CASES, a, b, fold)
            await conn.execute(LOAD_FEED, a, b, feeds)
            await conn.execute(MOVE_HEADS, feeds)
    # What autovacuum and the checkpointer do to a hub's tables in its steady state, done
    # before measuring rather than during it (right after a bulk load they would compete
    # for the two cores and the disk).
    await conn.execute("VACUUM (ANALYZE) events, cases, feed_entries, feed_heads")
    await conn.execute("CHECKPOINT")


async def run(root: Path, progress: Progress) -> Result:
    checkpoints = (1_000, 10_000) if QUICK[0] else (10_000, 100_000, 1_000_000)
    result = Result(
        "B7",
        "growth: latency and DB size per event at 10k, 100k, 1M events",
        target="flat latency, linear size (ratios ≈ 1)",
    )
    stations = [SimStation.new(village_id(i)) for i in range(AUTHORS)]
    feeds = [s.id for s in stations]
    rows: list[dict[str, float]] = []
    async with district(root, start=False) as d:
        enrol_stations(d.fed, stations)
        await d.hub.proc.start()
        await d.fed.publish()
        conn = await asyncpg.connect(pg_dsn(d.db))
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as http:
                clients = [PeerClient(d.hub.url, s.id, s.key, http, timeout=120) for s in stations]
                # One real event per station first: its wire and its case's fold are the
                # templates of the bulk rows.
                pairs = zip(stations, clients, strict=True)
                await asyncio.gather(*(c.push_events([s.submit()]) for s, c in pairs))
                template = await conn.fetchrow(
                    "SELECT e.wire, c.fold FROM events e JOIN cases c ON c.number = e.case_no"
                    " LIMIT 1"
                )
                wire, fold = bytes(template["wire"]), str(template["fold"])
                base = await db_bytes(conn)
                real = AUTHORS  # events pushed through the API so far
                loaded = 0  # bulk events 0 … loaded - 1 are in
                for target in checkpoints:
                    t0 = time.perf_counter()
                    upto = max(loaded, target - real)
                    await bulk_load(conn, loaded, upto, wire, fold, feeds)
                    loaded = upto
                    load_s = time.perf_counter() - t0
                    push_lat: list[float] = []
                    feed_lat: list[float] = []
                    for i in range(WARMUP + SAMPLES):
                        st, client = stations[i % AUTHORS], clients[i % AUTHORS]
                        event = st.submit()
                        t1 = time.perf_counter()
                        await client.push_events([event])
                        t2 = time.perf_counter()
                        head = await conn.fetchval(
                            "SELECT pos FROM feed_heads WHERE recipient = $1", st.id
                        )
                        t3 = time.perf_counter()
                        page = await client.feed(str(max(0, (head or 0) - 5)), 0)
                        assert len(page["events"]) == min(5, head or 0), page
                        if i >= WARMUP:
                            feed_lat.append(time.perf_counter() - t3)
                            push_lat.append(t2 - t1)
                    real += WARMUP + SAMPLES
                    events = int(await conn.fetchval("SELECT count(*) FROM events"))
                    size = await db_bytes(conn) - base
                    row = {
                        "events": events,
                        "push_p50_ms": round(median(push_lat) * 1000, 2),
                        "feed_p50_ms": round(median(feed_lat) * 1000, 2),
                        "db_bytes": size,
                        "db_bytes_per_event": round(size / events),
                        "bulk_load_s": round(load_s, 1),
                    }
                    rows.append(row)
                    progress(str(row))
        finally:
            await conn.close()
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
    result.raw = {"checkpoints": rows}
    result.notes.append(
        "growth steps bulk-loaded into PostgreSQL (events, cases, feed entries); pushes and"
        " feed reads measured through the hub's HTTP handlers"
    )
    result.met = all(0.67 < v < 1.5 for v in result.figures.values())
    return result
