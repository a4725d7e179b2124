"""B2: bytes on the wire for 1,000 applications, without and with materials.

Measured at the TCP level: the fault proxy (no shaping) between the station and its hub counts
every byte both ways (HTTP headers, signatures, acks, long-polls included). Events: wire bytes
÷ canonical JSON bytes of the station's events the hub holds. Materials: wire bytes of a run
with scans ÷ the scans' bytes."""

from __future__ import annotations

from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from .common import QUICK, Progress, Result, pg_dsn
from .realnode import VILLAGE, application, scan, village


async def canonical_bytes(db: str) -> tuple[int, int]:
    conn = await asyncpg.connect(pg_dsn(db))
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, coalesce(sum(octet_length(wire)), 0) AS b"
            " FROM events WHERE author = $1",
            VILLAGE,
        )
    finally:
        await conn.close()
    assert row is not None
    return int(row["n"]), int(row["b"])


async def run(root: Path, progress: Progress) -> Result:
    apps = 40 if QUICK[0] else 1000
    with_files = 4 if QUICK[0] else 100
    size = 100_000 if QUICK[0] else 300_000
    result = Result("B2", "wire bytes ÷ canonical bytes", target="events ≤ 0.5; materials ≤ 1.02")
    async with village(root) as v:
        await v.drained()
        up0, down0 = v.proxy.bytes_up, v.proxy.bytes_down
        n0, b0 = await canonical_bytes(v.d.db)
        for i in range(apps):
            await v.clerk.post("api/cases", application(i, {}), expect=201)
            if i % 200 == 199:
                progress(f"{i + 1}/{apps} applications accepted")
        await v.drained()
        up, down = v.proxy.bytes_up - up0, v.proxy.bytes_down - down0
        n, canon = await canonical_bytes(v.d.db)
        n, canon = n - n0, canon - b0
        ratio = (up + down) / canon
        result.figures["events_wire_ratio"] = round(ratio, 4)
        result.raw["events"] = {
            "applications": apps,
            "events": n,
            "canonical_bytes": canon,
            "wire_up": up,
            "wire_down": down,
            "canonical_bytes_per_event": round(canon / max(n, 1)),
        }
        progress(f"{n} events, {canon:,} canonical B, wire {up:,} up + {down:,} down → {ratio:.3f}")

        up0, down0 = v.proxy.bytes_up, v.proxy.bytes_down
        n0, b0 = await canonical_bytes(v.d.db)
        material = 0
        for i in range(with_files):
            data = scan(size)
            material += len(data)
            await v.clerk.post("api/cases", application(10_000 + i, {"form": data}), expect=201)
        await v.drained()
        up, down = v.proxy.bytes_up - up0, v.proxy.bytes_down - down0
        n, canon = await canonical_bytes(v.d.db)
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
