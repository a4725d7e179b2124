"""B6: village → district authority → village on a healthy link, with long-poll.

Each round: the clerk submits at the station API; a reviewer polls the hub's queue and, as soon
as the case appears, accepts, passes both steps and decides (the reviewer's own time is these
four calls); then the clerk's API is polled until the case shows 办结 (decided). Figure: p50 of
(submit → decided at the window) − reviewer's time, in seconds, ÷ 1 s target.

Rounds start :data:`node.sync.BURST` apart at least: a village window's applicants come
minutes apart, and an application accepted within BURST of the one before is taken for part
of a burst and waits ``PUSH_SETTLE`` to go up with the rest (B2's batching)."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from pathlib import Path

from node.sync import BURST
from ops.launch import eventually

from .common import QUICK, Progress, Result, median, percentile
from .realnode import Village, application, village

POLL = 0.01


async def queued(v: Village, number: str) -> bool:
    queue = await v.reviewer.get("api/queue")
    return any(c["number"] == number for c in queue["cases"])


async def decided(v: Village, number: str) -> bool:
    detail = await v.clerk.get(f"api/cases/{number}")
    return bool(detail["case"]["state"] == "decided")


async def run(root: Path, progress: Progress) -> Result:
    rounds = 3 if QUICK[0] else 30
    result = Result("B6", "submit → 办结 at the window, minus reviewer time", target="p50 < 1 s")
    totals: list[float] = []
    to_hub: list[float] = []
    back: list[float] = []
    reviewer_times: list[float] = []
    async with village(root) as v:
        await v.drained()
        for i in range(rounds):
            await asyncio.sleep(BURST)  # the next applicant, not the rest of a burst
            t0 = time.monotonic()
            receipt = await v.clerk.post("api/cases", application(i, {}), expect=201)
            number = receipt["number"]
            await eventually(partial(queued, v, number), within=60, every=POLL)
            t1 = time.monotonic()
            await v.reviewer.act(number, "accept", {"opinion": "材料齐全，予以受理"})
            await v.reviewer.act(number, "step", {"outcome": "pass", "opinion": "受理审查通过"})
            await v.reviewer.act(number, "step", {"outcome": "pass", "opinion": "审核通过"})
            await v.reviewer.act(
                number, "decide", {"result_code": 0, "opinion": "准予备案", "licence_no": f"B6-{i}"}
            )
            t2 = time.monotonic()
            await eventually(partial(decided, v, number), within=60, every=POLL)
            t3 = time.monotonic()
            reviewer_times.append(t2 - t1)
            to_hub.append(t1 - t0)
            back.append(t3 - t2)
            totals.append((t3 - t0) - (t2 - t1))
            progress(
                f"round {i + 1}/{rounds}: to hub {t1 - t0:.3f}s, reviewer {t2 - t1:.3f}s,"
                f" back {t3 - t2:.3f}s"
            )
    p50, p99 = median(totals), percentile(totals, 99)
    result.figures["p50_s_over_1s"] = round(p50 / 1.0, 4)
    result.figures["p99_s_over_1s"] = round(p99 / 1.0, 4)
    result.raw = {
        "rounds": rounds,
        "p50_s": round(p50, 4),
        "p99_s": round(p99, 4),
        "to_hub_p50_s": round(median(to_hub), 4),
        "back_p50_s": round(median(back), 4),
        "reviewer_p50_s": round(median(reviewer_times), 4),
        "poll_interval_s": POLL,
    }
    result.notes.append(
        "the 1 s target is a fixed budget, so this figure is time ÷ 1 s (the reviewer's own"
        " time, measured in the same run, is subtracted)"
    )
    result.met = p50 < 1.0
    return result
