"""B3 / B4: 50 applications × ~700 KB scans through the fault proxy at 4 Mbit/s, 300 ms RTT.

B3: goodput (scan bytes ÷ time from the first submit until the station has nothing waiting)
÷ link rate. B4: the same workload with every connection reset every 15–60 s; bytes sent again
per reset = (upstream wire bytes with resets − upstream wire bytes of B3) ÷ resets."""

from __future__ import annotations

import time
from pathlib import Path

from protocol.http.tus_client import DEFAULT_CHUNK
from tests.integration.faultproxy import LinkProfile

from .common import QUICK, Progress, Result
from .realnode import application, scan, village

RATE = 4_000_000 / 8  # 4 Mbit/s in bytes/s
LATENCY = 0.150  # one way: 300 ms RTT


async def _phase(
    root: Path, progress: Progress, n: int, size: int, resets: tuple[float, float] | None
) -> dict[str, float]:
    link = LinkProfile(
        rate=RATE, latency=LATENCY, reset_every=resets, reset_by="seconds", shared=True
    )
    async with village(root, link) as v:
        await v.drained()
        up0, down0 = v.proxy.bytes_up, v.proxy.bytes_down
        cuts0 = len(v.proxy.resets)
        material = 0
        t0 = time.monotonic()
        for i in range(n):
            data = scan(size + i)
            material += len(data)
            await v.clerk.post("api/cases", application(20_000 + i, {"form": data}), expect=201)
        done = await v.drained(within=900)
        seconds = done - t0
        out = {
            "applications": n,
            "material_bytes": material,
            "seconds": round(seconds, 2),
            "wire_up": v.proxy.bytes_up - up0,
            "wire_down": v.proxy.bytes_down - down0,
            "resets": len(v.proxy.resets) - cuts0,
        }
        progress(f"{'with' if resets else 'no'} resets: {out}")
        return out


async def run(root: Path, progress: Progress) -> Result:
    n, size = (3, 200_000) if QUICK[0] else (50, 700_000)
    resets = (2.0, 4.0) if QUICK[0] else (15.0, 60.0)
    result = Result(
        "B3",
        "weak link 4 Mbit/s, 300 ms RTT (B3) and resets every 15–60 s (B4)",
        target="B3 goodput ≥ 0.85 of link; B4 ≤ one upload chunk per reset",
    )
    clean = await _phase(root / "clean", progress, n, size, None)
    goodput = clean["material_bytes"] / clean["seconds"]
    result.figures["B3_goodput_over_link"] = round(goodput / RATE, 4)
    flaky = await _phase(root / "resets", progress, n, size, resets)
    extra = flaky["wire_up"] - clean["wire_up"]
    per_reset = extra / max(flaky["resets"], 1)
    result.notes.append(
        "B4 'resets' counts connections cut (a timed reset cuts every open connection,"
        " typically the upload and the long-poll)"
    )
    result.figures["B4_resent_bytes_per_reset_over_chunk"] = round(per_reset / DEFAULT_CHUNK, 4)
    result.raw = {
        "link_bytes_per_s": RATE,
        "one_way_latency_s": LATENCY,
        "upload_chunk_bytes": DEFAULT_CHUNK,
        "B3": clean,
        "B4": flaky,
        "B4_extra_upstream_bytes": extra,
        "B4_resent_bytes_per_reset": round(per_reset),
    }
    result.met = goodput / RATE >= 0.85 and per_reset <= DEFAULT_CHUNK
    return result
