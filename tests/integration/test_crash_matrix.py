"""Crash matrix (issue 8): SIGKILL a village node, the district hub or the city hub, or
crash-restart PostgreSQL, at seeded random moments while applications, scans, feed pages and
decisions are in flight; then check nothing was lost or duplicated and no chain forked.

沈阳 with the city hub (2101, 司法局 decides 律师执业年度考核结果备案, a city matter) and the
和平区 hub (210102), both on databases of a *private* PostgreSQL cluster
(:mod:`tests.integration.privatepg`: never the machine's shared server), and one village
station (SQLite), all real processes (:mod:`ops.launch`). Each round draws from the seed a
victim (node, district, city, postgres) and a phase (push: applications being submitted;
blob: their scans on the way; feed/decision: the reviewer deciding cases whose results go
down the feed), starts the load, kills the victim after a random delay, restarts it, and
goes on. A request cut by a kill is retried the way a person would (the clerk only counts
an application whose receipt was printed; the reviewer looks at the case and carries on).

Invariants at the end, read from the databases:

* every application whose receipt was printed reaches the city authority exactly once
  (one ``case.submitted`` per number at the city hub, with all its scans held);
* every decision reaches the pickup window exactly once (one ``case.decided`` per case in
  the station's SQLite, and the case shows decided there);
* chains never fork: no equivocation anywhere, every author's chain at each hub is 1..n.

Short run in ``make test`` (one seed, few rounds); long run under ``-m long`` (seeds and
rounds in docs/reliability.md). ``-s`` prints each run's record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ops.launch import (
    CITY_DEPTS,
    DISTRICT_DEPTS,
    LaunchError,
    LocalFederation,
    Member,
    eventually,
    free_port,
)
from tests.integration.harness import Clerk, Reviewer, id_number
from tests.integration.privatepg import PrivatePostgres

pytestmark = pytest.mark.postgres

CITY, DISTRICT, VILLAGE = "2101", "210102", "210102001001"
ANNUAL = "SY-SFJ-KH-02"  # 律师执业年度考核结果备案: 2101:sfj, one reviewer step
STAFF = ("sy-sfj-01", "李审核", "司法局审核口令-2026")
VICTIMS = ("node", "district", "city", "postgres")
PHASES = ("push", "blob", "feed", "decision")
SHORT = {"seeds": [2026], "rounds": 3}
LONG = {"seeds": list(range(2026, 2031)), "rounds": 10}


@dataclass
class World:
    pg: PrivatePostgres
    fed: LocalFederation
    city: Member
    district: Member
    station: Member
    password: str
    dbs: dict[str, str]
    http: aiohttp.ClientSession
    clerk: Clerk
    reviewer: Reviewer
    printed: list[str] = field(default_factory=list)  # receipts the clerk printed
    decided: set[str] = field(default_factory=set)
    kills: dict[str, int] = field(default_factory=dict)
    failed_requests: int = 0


@contextlib.asynccontextmanager
async def world(root: Path) -> AsyncIterator[World]:
    pg = PrivatePostgres()
    await pg.start()
    fed = LocalFederation(root)
    try:
        dbs = {CITY: "tb_city", DISTRICT: "tb_district"}
        urls = {m: await pg.database(name) for m, name in dbs.items()}
        await fed.create()
        city = await fed.add_hub(
            CITY, "沈阳市政务服务中心", None, CITY_DEPTS, port=free_port(), db=urls[CITY]
        )
        district = await fed.add_hub(
            DISTRICT,
            "和平区政务服务中心",
            city.url,
            DISTRICT_DEPTS,
            port=free_port(),
            db=urls[DISTRICT],
        )
        station, password = await fed.add_station(
            VILLAGE, "和平甲村便民服务站", district, port=free_port()
        )
        await fed.add_staff(STAFF[0], STAFF[1], CITY, "sfj", "acceptor", "reviewer")
        await city.proc.start()
        await district.proc.start()
        await fed.publish()
        await fed.set_password(city, STAFF[0], STAFF[2])
        await station.proc.start()
        # Two browsers: the clerk's and the reviewer's session cookies must not mix.
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as window,
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        ):
            clerk = Clerk(station, password, window)
            reviewer = Reviewer(city, http)
            yield World(pg, fed, city, district, station, password, dbs, http, clerk, reviewer)
    finally:
        await fed.stop_all()
        await pg.stop()


def application(n: int, rng: random.Random) -> aiohttp.FormData:
    body = {
        "matter": ANNUAL,
        "applicant": {"name": f"律师{n}", "id_type": "111", "id_number": id_number(n)},
        "materials": [{"id": "report"}, {"id": "list"}],
    }
    form = aiohttp.FormData()
    form.add_field(
        "application", json.dumps(body, ensure_ascii=False), content_type="application/json"
    )
    for material in ("report", "list"):
        form.add_field(
            f"file.{material}",
            rng.randbytes(rng.randint(20_000, 60_000)),
            filename=f"{material}.pdf",
            content_type="application/pdf",
        )
    return form


async def retrying(call: Callable[[], Awaitable[Any]], w: World, *, within: float = 90) -> Any:
    """Run ``call`` until it succeeds: the member it talks to may be down or restarting."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            return await call()
        except (aiohttp.ClientError, AssertionError, OSError):
            w.failed_requests += 1
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def submit(w: World, n: int, rng: random.Random) -> None:
    """One application at the window; its number counts only if the receipt came back."""
    form = application(n, rng)
    try:
        await w.clerk.login()
        answer = await w.clerk.post("api/cases", form, expect=201)
    except (aiohttp.ClientError, AssertionError, OSError):
        w.failed_requests += 1
        return  # no receipt printed: the clerk would try again, as a new application
    w.printed.append(answer["number"])


async def state_at_city(w: World, number: str) -> str | None:
    async with w.http.get(f"{w.city.url}api/cases/{number}") as resp:
        if resp.status != 200:
            return None
        return str((await resp.json())["state"])


async def decide(w: World, number: str) -> None:
    """The reviewer takes the case to a decision, whatever step a crash left it at."""
    steps = {
        "submitted": ("accept", {"opinion": "材料齐全，予以受理"}),
        "accepted": ("step", {"outcome": "pass", "opinion": "审核通过"}),
        "in_review": ("decide", {"result_code": 0, "opinion": "准予备案"}),
    }
    for _ in range(10):
        await retrying(lambda: w.reviewer.login(STAFF[0], STAFF[2]), w)
        state = await retrying(partial(_state, w, number), w)
        if state == "decided":
            w.decided.add(number)
            return
        action, body = steps[state]
        with contextlib.suppress(aiohttp.ClientError, AssertionError, OSError):
            await w.reviewer.act(number, action, body)
    raise AssertionError(f"{number} could not be decided")


async def _state(w: World, number: str) -> str:
    state = await state_at_city(w, number)
    assert state is not None, f"{number} not at the city yet"
    return state


async def queued(w: World, number: str) -> bool:
    with contextlib.suppress(aiohttp.ClientError, AssertionError, OSError):
        await w.reviewer.login(STAFF[0], STAFF[2])
        case = await w.reviewer.get(f"api/cases/{number}")
        blobs = [b for m in case["materials"] for b in m["blobs"]]
        return bool(blobs) and all(b["held"] for b in blobs)
    return False


async def kill_and_restart(w: World, victim: str) -> None:
    w.kills[victim] = w.kills.get(victim, 0) + 1
    if victim == "postgres":
        await w.pg.crash_restart()
        return
    member = {"node": w.station, "district": w.district, "city": w.city}[victim]
    member.proc.kill()
    assert member.proc.proc is not None
    await member.proc.proc.wait()
    await member.proc.start(within=90)


async def one_round(w: World, rng: random.Random, round_no: int) -> None:
    victim, phase = rng.choice(VICTIMS), rng.choice(PHASES)
    delay = rng.uniform(0.0, 1.5)
    base = 100 * round_no
    if phase in ("push", "blob"):
        # Several applications; "blob" waits for the events to be in custody first, so the
        # kill falls among the scans rather than the records.
        load = asyncio.gather(*(submit(w, base + i, rng) for i in range(3)))
        if phase == "blob":
            await load
            load = asyncio.sleep(0)
        killer = asyncio.create_task(_after(delay, kill_and_restart(w, victim)))
        await load
        await killer
    else:
        # Decisions on cases already at the city; "feed" kills while results flow down.
        ready = [n for n in w.printed if n not in w.decided]
        for number in ready:
            await eventually(partial(queued, w, number), within=120)
        work = asyncio.gather(*(decide(w, n) for n in ready))
        if phase == "feed":
            await work
            work = asyncio.sleep(0)
        killer = asyncio.create_task(_after(delay, kill_and_restart(w, victim)))
        await work
        await killer


async def _after(delay: float, action: Awaitable[None]) -> None:
    await asyncio.sleep(delay)
    await action


def node_events(w: World) -> list[tuple[str, str | None, str, int]]:
    with contextlib.closing(sqlite3.connect(w.station.data / "node.db")) as db:
        rows = db.execute("SELECT type, case_no, author, seq FROM events").fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def check_invariants(w: World) -> dict[str, Any]:
    # Drain: every printed application at the city with its scans, every case decided,
    # every decision at the window.
    for number in w.printed:
        await eventually(partial(queued, w, number), within=180)
    for number in w.printed:
        await decide(w, number)

    async def all_down() -> bool:
        held = {(t, c) for t, c, _, _ in node_events(w)}
        return all(("case.decided", n) in held for n in w.decided)

    await eventually(all_down, within=180)

    city = await w.pg.fetch(
        w.dbs[CITY],
        "SELECT case_no, count(*) AS n FROM events WHERE type = 'case.submitted' GROUP BY case_no",
    )
    submitted = {r["case_no"]: r["n"] for r in city}
    for number in w.printed:
        assert submitted.get(number) == 1, f"{number} reached the city {submitted.get(number)}×"
    assert all(n == 1 for n in submitted.values()), submitted
    decided_city = await w.pg.fetch(
        w.dbs[CITY],
        "SELECT case_no, count(*) AS n FROM events WHERE type = 'case.decided' GROUP BY case_no",
    )
    assert all(r["n"] == 1 for r in decided_city), decided_city
    at_node: dict[str, int] = {}
    for kind, case_no, _, _ in node_events(w):
        if kind == "case.decided" and case_no is not None:
            at_node[case_no] = at_node.get(case_no, 0) + 1
    for number in w.decided:
        assert at_node.get(number) == 1, (
            f"decision of {number} at the window {at_node.get(number)}×"
        )

    for member, name in w.dbs.items():
        forks = await w.pg.fetch(name, "SELECT count(*) AS n FROM equivocations")
        assert forks[0]["n"] == 0, f"equivocation recorded at {member}"
        chains = await w.pg.fetch(
            name,
            "SELECT author, count(*) AS n, count(DISTINCT seq) AS d, max(seq) AS top"
            " FROM events GROUP BY author",
        )
        for row in chains:
            assert row["n"] == row["d"] == row["top"], f"chain of {row['author']} at {member}"
    with contextlib.closing(sqlite3.connect(w.station.data / "node.db")) as db:
        equivocated = db.execute(
            "SELECT count(*) FROM quarantine WHERE reason = 'equivocation'"
        ).fetchone()[0]
    assert equivocated == 0
    own = sorted(s for _, _, a, s in node_events(w) if a == VILLAGE)
    assert own == list(range(1, len(own) + 1)), "the station's own chain has a hole or a fork"
    return {
        "printed": len(w.printed),
        "decided": len(w.decided),
        "kills": dict(sorted(w.kills.items())),
        "failed_requests": w.failed_requests,
        "own_events": len(own),
    }


async def run_matrix(root: Path, seed: int, rounds: int) -> dict[str, Any]:
    rng = random.Random(seed)
    async with world(root) as w:
        try:
            for round_no in range(rounds):
                await one_round(w, rng, round_no)
            record = await check_invariants(w)
        except (AssertionError, LaunchError):
            for member in (w.station, w.district, w.city):
                print(f"--- {member.proc.name}\n{member.proc.tail(30)}")
            raise
    record["seed"] = seed
    print(f"crash matrix: {record}")
    return record


@pytest.mark.parametrize("seed", SHORT["seeds"])
async def test_crash_matrix(tmp_path: Path, seed: int) -> None:
    rounds = int(os.environ.get("TONGBAN_CRASH_ROUNDS", SHORT["rounds"]))
    record = await run_matrix(tmp_path, seed, rounds)
    assert record["printed"] > 0 and record["decided"] == record["printed"]


@pytest.mark.long
@pytest.mark.parametrize("seed", LONG["seeds"])
async def test_crash_matrix_long(tmp_path: Path, seed: int) -> None:
    record = await run_matrix(tmp_path, seed, LONG["rounds"])
    assert record["printed"] > 0 and record["decided"] == record["printed"]
