"""B2: bytes on the wire for 1,000 applications, without and with materials.

Measured at the TCP level: the fault proxy (no shaping) between the station and its hub counts
every byte both ways (HTTP headers, signatures, acks, long-polls included), until the station
has pushed everything and holds the 送达回执 of every application. Events: wire bytes ÷
canonical JSON bytes of the events the link carried, both ways (the station's applications
up, the hub's receipts down; the ratio to the applications alone is reported beside it).
Materials: wire bytes of a run with scans ÷ the scans' bytes."""

from __future__ import annotations

from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from .common import QUICK, Progress, Result, pg_dsn
from .realnode import VILLAGE, application, scan, village


async def canonical_bytes(db: str) -> tuple[int, int, int]:
    """(count, canonical bytes) of the station's events at the hub, and the canonical bytes
    of the events in the station's feed (what went down)."""
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        own = await conn.fetchrow(
            "SELECT count(*) AS n, coalesce(sum(octet_length(wire)), 0) AS b"
            " FROM events WHERE author = $1",
            VILLAGE,
        )
        down = await conn.fetchval(
            "SELECT coalesce(sum(octet_length(e.wire)), 0) FROM feed_entries f"
            " JOIN events e ON e.id = f.event_id WHERE f.recipient = $1",
            VILLAGE,
        )
    finally:
        await conn.close()
    assert own is not None
    return int(own["n"]), int(own["b"]), int(down)


async def run(root: Path, progress: Progress) -> Result:
    apps = 40 if QUICK[0] else 1000
    with_files = 4 if QUICK[0] else 100
    size = 100_000 if QUICK[0] else 300_000
    result = Result("B2", "wire bytes ÷ canonical bytes", target="events ≤ 0.5; materials ≤ 1.02")
    async with village(root) as v:
        await v.drained()
        up0, down0 = v.proxy.bytes_up, v.proxy.bytes_down
        n0, b0, d0 = await canonical_bytes(v.d.db)
        held = v.received()
        for i in range(apps):
            await v.clerk.post("api/cases", application(i, {}), expect=201)
            if i % 200 == 199:
                progress(f"{i + 1}/{apps} applications accepted")
        await v.settled(held + apps)  # one 送达回执 each
        up, down = v.proxy.bytes_up - up0, v.proxy.bytes_down - down0
        n, canon, canon_down = await canonical_bytes(v.d.db)
        n, canon, canon_down = n - n0, canon - b0, canon_down - d0
        ratio = (up + down) / (canon + canon_down)
        result.figures["events_wire_ratio"] = round(ratio, 4)
        result.raw["events"] = {
            "applications": apps,
            "events_up": n,
            "canonical_bytes_up": canon,
            "canonical_bytes_down": canon_down,
            "wire_up": up,
            "wire_down": down,
            "canonical_bytes_per_event": round(canon / max(n, 1)),
            "wire_over_applications_alone": round((up + down) / canon, 4),
        }
        progress(
            f"{n} events up ({canon:,} canonical B), {canon_down:,} B of receipts down;"
            f" wire {up:,} up + {down:,} down → {ratio:.3f}"
        )

        up0, down0 = v.proxy.bytes_up, v.proxy.bytes_down
        n0, b0, _ = await canonical_bytes(v.d.db)
        held = v.received()
        material = 0
        for i in range(with_files):
            data = scan(size)
            material += len(data)
            await v.clerk.post("api/cases", application(10_000 + i, {"form": data}), expect=201)
        await v.settled(held + with_files)
        up, down = v.proxy.bytes_up - up0, v.proxy.bytes_down - down0
        n, canon, _ = await canonical_bytes(v.d.db)
        mratio = (up + down) / material
        result.figures["materials_wire_ratio"] = round(mratio, 4)
        result.raw["materials"] = {
            "applications": with_files,
            "material_bytes": material,
            "wire_up": up,
            "wire_down": down,
            "event_canonical_bytes": canon - b0,
        }
        progress(f"{with_files} × {size:,} B scans: wire {up + down:,} → {mratio:.4f}")
    result.met = ratio <= 0.5 and mratio <= 1.02
    return result
