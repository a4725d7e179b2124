"""``tongban demo scenario``: a working day at the running demo, through the public HTTP APIs.

The day is a list of :data:`ACTS`, run in order against the federation that ``tongban demo
run`` started (its ``logins.json`` says where everyone is). Windows use the station's JSON
API (docs/api.md), reviewers the hub's workbench API; nothing reaches into a member's data.
A station is taken off the network by the demo's switchable uplink (``<dir>/offline/<id>``).

An act whose API is not on main yet can be listed in :data:`ACTS` with ``needs`` (what it
waits for) and is skipped; add the code as a function and the act runs. The day ends with a
:class:`Summary` counted from the windows' own view of every application, whose categories
are disjoint and add up to the number submitted.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import click

from .demo import Demo, Topology

CHINA = timezone(timedelta(hours=8))
OPEN_STATES = {
    "submitted",
    "correction",
    "accepted",
    "in_review",
    "awaiting_supplement",
    "suspended",
}
DONE_STATES = {"delivered", "rated"}
CLOSED_STATES = {"not_accepted", "withdrawn", "terminated"}
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛")


class ScenarioError(Exception):
    """The scenario cannot run (no demo, a member refused); the message says why."""


def id_number(serial: int, birth: str = "19900101", region: str = "210102") -> str:
    """A well-formed 18-character 居民身份证 number (GB 11643 check character), made up."""
    body = f"{region}{birth}{serial % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(c) * w for c, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


# -- the people --------------------------------------------------------------------------


class Window:
    """A window clerk at a station, on its JSON API (docs/api.md)."""

    def __init__(self, station: str, name: str, url: str, city: str, password: str) -> None:
        self.id, self.name, self.url, self.city, self.password = station, name, url, city, password
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.matters: list[dict[str, Any]] = []

    async def login(self) -> None:
        answer = await self.post("api/login", {"username": "admin", "password": self.password})
        self.csrf = answer["csrf_token"]

    async def get(self, path: str) -> Any:
        async with self.http.get(self.url + path) as resp:
            return await _answer(resp, f"{self.name} GET {path}")

    async def post(self, path: str, data: Any) -> Any:
        kwargs: dict[str, Any] = (
            {"data": data} if isinstance(data, aiohttp.FormData) else {"json": data}
        )
        headers = {"X-CSRF-Token": self.csrf}
        async with self.http.post(self.url + path, headers=headers, **kwargs) as resp:
            return await _answer(resp, f"{self.name} POST {path}")


class Desk:
    """A reviewer at a hub's department, on the workbench API (``/api/…`` of the hub)."""

    def __init__(self, staff: str, hub_url: str, authority: str, password: str) -> None:
        self.staff, self.url, self.authority, self.password = staff, hub_url, authority, password
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def login(self) -> None:
        async with self.http.post(
            self.url + "api/login", json={"staff": self.staff, "password": self.password}
        ) as resp:
            self.csrf = (await _answer(resp, f"{self.staff} login"))["csrf"]

    async def get(self, path: str) -> Any:
        async with self.http.get(self.url + path) as resp:
            return await _answer(resp, f"{self.staff} GET {path}")

    async def act(self, number: str, action: str, body: dict[str, Any]) -> Any:
        async with self.http.post(
            f"{self.url}api/cases/{number}/{action}",
            json=body,
            headers={"X-CSRF-Token": self.csrf},
        ) as resp:
            return await _answer(resp, f"{self.staff} {action} {number}")


async def _answer(resp: aiohttp.ClientResponse, what: str) -> Any:
    try:
        body = await resp.json(content_type=None)
    except ValueError:
        body = None
    if resp.status >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else None
        raise ScenarioError(f"{what}: HTTP {resp.status} {error or ''} {message or ''}".strip())
    return body


# -- the day -----------------------------------------------------------------------------


@dataclass
class Application:
    """One application the scenario handed in, and what happened to it."""

    number: str
    matter: str
    window: str
    pickup: str
    authority: str
    applicant: str
    tags: set[str] = field(default_factory=set)
    serial: int = 0  # of the applicant's (made-up) ID number
    bundle: str = ""  # the parent number of a 一件事 child
    decision: str = ""  # approved | denied | not_accepted (by the reviewer)
    delivered: bool = False


@dataclass
class Day:
    """Everyone taking part, the random plan, and every application so far."""

    windows: dict[str, Window]
    desks: dict[str, Desk]  # by authority id, e.g. 2101:sfj
    demo: Demo
    cases: int
    rng: random.Random
    apps: list[Application] = field(default_factory=list)
    offline: set[str] = field(default_factory=set)
    serial: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    act: str = ""
    _shown: float = 0.0

    def by_number(self) -> dict[str, Application]:
        return {a.number: a for a in self.apps}

    def progress(self, force: bool = False) -> None:
        """One progress line, rewritten in place on a terminal."""
        now = time.monotonic()
        if not force and now - self._shown < 0.2:
            return
        self._shown = now
        c = self.counts
        line = (
            f"[{self.act}] 收件 {len(self.apps)}/{self.cases} · 受理 {c['accepted']}"
            f" · 办结 {c['decided']} · 出件 {c['delivered']}"
            + (f" · 断网站点 {','.join(sorted(self.offline))}" if self.offline else "")
        )
        if sys.stderr.isatty():
            click.echo("\r" + line.ljust(100), nl=False, err=True)
        elif force:
            click.echo(line, err=True)

    async def close(self) -> None:
        for window in self.windows.values():
            await window.http.close()
        for desk in self.desks.values():
            await desk.http.close()


@dataclass(frozen=True)
class Act:
    """One part of the day. ``run`` is None while the API it ``needs`` is not on main."""

    name: str
    what: str
    run: Callable[[Day], Awaitable[None]] | None
    needs: str = ""


async def open_up(day: Day) -> None:
    """Everyone logs in; each window waits until it holds its city's and the peer's catalog."""
    await asyncio.gather(*(w.login() for w in day.windows.values()))
    await asyncio.gather(*(d.login() for d in day.desks.values()))
    cities = {w.city for w in day.windows.values()}

    async def ready(window: Window) -> bool:
        try:
            found = (await window.get("api/matters?limit=500"))["matters"]
        except ScenarioError:
            return False
        window.matters = [m for m in found if m["authority"]["id"] in day.desks]
        peers = {m["authority"]["id"][:4] for m in window.matters} - {window.city}
        return bool(window.matters) and (len(cities) < 2 or bool(peers))

    await asyncio.gather(
        *(_until(partial(ready, w), 120, f"{w.name} 未取得事项目录") for w in day.windows.values())
    )


def intake(share: float, tag: str = "") -> Callable[[Day], Awaitable[None]]:
    """Windows accept ``share`` of the day's applications, a few at a time."""

    async def run(day: Day) -> None:
        total = min(day.cases - len(day.apps), max(1, round(day.cases * share)))
        gate = asyncio.Semaphore(6)

        async def one() -> None:
            async with gate:
                await accept_one(day, tag)
                day.progress()

        await asyncio.gather(*(one() for _ in range(total)))

    return run


def _pick_matter(day: Day, window: Window) -> dict[str, Any]:
    """Weighted: local matters, 市区联办 (a city matter at a lower window), 都市圈通办."""
    groups: dict[str, list[dict[str, Any]]] = {"local": [], "city": [], "metro": []}
    for m in window.matters:
        if not m["authority"]["id"].startswith(window.city):
            groups["metro"].append(m)
        elif m["level"] == "city" and len(window.id) > 4:
            groups["city"].append(m)
        else:
            groups["local"].append(m)
    weights = {"local": 0.35, "city": 0.4, "metro": 0.25}
    kinds = [k for k in groups if groups[k]]
    kind = day.rng.choices(kinds, [weights[k] for k in kinds])[0]
    return day.rng.choice(groups[kind])


async def accept_one(day: Day, tag: str) -> None:
    window = day.rng.choice(list(day.windows.values()))
    matter = _pick_matter(day, window)
    guide = await window.get(f"api/matters/{matter['code']}")
    day.serial += 1
    serial = day.serial
    name = day.rng.choice(SURNAMES) + day.rng.choice(GIVEN)
    tags = {tag} if tag else set()
    materials, pledge_text, deferred = [], "", False
    for m in guide["materials"]:
        if m["deferrable"] and day.rng.random() < 0.25:
            materials.append({"id": m["id"], "mode": "deferred"})
            deferred = True
            tags.add("容缺受理")
        elif m["pledgeable"] and day.rng.random() < 0.5:
            materials.append({"id": m["id"], "mode": "pledged"})
            tags.add("告知承诺")
        elif m["required"] or day.rng.random() < 0.7:
            materials.append({"id": m["id"]})
    if deferred or "告知承诺" in tags:
        pledge_text = f"申请人{name}承诺所述属实、按期补齐材料，如有不实愿承担法律责任。"
    others = [w for w in day.windows.values() if w.city == window.city and w is not window]
    pickup = window.id
    if others and day.rng.random() < 0.15:
        pickup = day.rng.choice(others).id
        tags.add("异地出件")
    body: dict[str, Any] = {
        "matter": matter["code"],
        "applicant": {"name": name, "id_type": "111", "id_number": id_number(serial)},
        "materials": materials,
        "pickup": pickup,
        "note": "演示场景",
    }
    if pledge_text:
        body["pledge"] = {"text": pledge_text}
        if deferred:
            tomorrow = datetime.now(CHINA).date() + timedelta(days=1)
            body["pledge"]["deadline"] = tomorrow.isoformat()
    form = aiohttp.FormData()
    form.add_field(
        "application", json.dumps(body, ensure_ascii=False), content_type="application/json"
    )
    provided = [m["id"] for m in materials if "mode" not in m]
    if provided:
        scan = f"%PDF-1.4\n% {matter['name']} {serial}\n".encode() + bytes(day.rng.randbytes(2048))
        form.add_field(
            f"file.{provided[0]}",
            scan,
            filename=f"{provided[0]}.pdf",
            content_type="application/pdf",
        )
    receipt = await window.post("api/cases", form)
    authority = receipt["authority"]["id"]
    if not authority.startswith(window.city):
        tags.add("都市圈通办")
    elif len(authority.split(":")[0]) == 4 and len(window.id) > 4:
        tags.add("市区联办")
    if window.id in day.offline:
        tags.add("断网受理")
    day.apps.append(
        Application(
            receipt["number"], matter["code"], window.id, pickup, authority, name, tags, serial
        )
    )


def _uplink_station(day: Day) -> str:
    """The village that loses its line: the last village (12 digits) of the first city."""
    villages = [w.id for w in day.windows.values() if len(w.id) == 12]
    first_city = next(iter(day.windows.values())).city
    ours = [v for v in villages if v.startswith(first_city)]
    return (ours or villages or list(day.windows))[-1]


async def go_offline(day: Day) -> None:
    station = _uplink_station(day)
    day.demo.offline_dir.mkdir(exist_ok=True)
    (day.demo.offline_dir / station).touch()
    day.offline.add(station)
    window = day.windows[station]

    async def offline() -> bool:
        return not (await window.get("api/sync"))["online"]

    await _until(offline, 60, f"{window.name} 未察觉断网")


async def come_back(day: Day) -> None:
    for station in list(day.offline):
        (day.demo.offline_dir / station).unlink(missing_ok=True)
        day.offline.discard(station)
        window = day.windows[station]
        await window.post("api/sync/now", {})

        async def synced(window: Window = window) -> bool:
            waiting = (await window.get("api/sync"))["waiting"]
            return bool(waiting["events"] == 0)

        await _until(synced, 120, f"{window.name} 恢复联网后未能上报")


def review(leave_new: float = 0.0) -> Callable[[Day], Awaitable[None]]:
    """Every desk works through its queue; ``leave_new`` of the cases handed in since the
    last review wait for tomorrow (as at the end of a real day)."""

    async def run(day: Day) -> None:
        await _settle_queues(day)
        reviewed = {a.number for a in day.apps if a.decision}
        fresh = {a.number for a in day.apps if not a.decision}
        tomorrow = {n for n in sorted(fresh) if day.rng.random() < leave_new}
        await asyncio.gather(*(work_desk(day, d, tomorrow | reviewed) for d in day.desks.values()))

    return run


async def _settle_queues(day: Day, within: float = 60) -> None:
    """Wait (a while) until every application handed in at a connected window and not yet
    dealt with is in its desk's queue: a reviewer works what has arrived."""
    expected = {a.number for a in day.apps if a.window not in day.offline and not a.decision}

    async def arrived() -> bool:
        seen: set[str] = set()
        for desk in day.desks.values():
            seen |= {c["number"] for c in (await desk.get("api/queue"))["cases"]}
        return expected <= seen

    await _until(arrived, within, "", quiet=True)  # late arrivals wait for the next round


async def work_desk(day: Day, desk: Desk, skip: set[str]) -> None:
    apps = day.by_number()
    queue = (await desk.get("api/queue"))["cases"]
    for row in queue:
        number = row["number"]
        app = apps.get(number)
        if app is None or number in skip:
            continue
        case = await desk.get(f"api/cases/{number}")
        if case["state"] not in ("submitted", "accepted", "in_review"):
            continue  # 补正 or paused: the applicant's move
        if case["state"] == "submitted":
            if day.rng.random() < 0.04:
                await desk.act(number, "not-accept", {"reason": "申请材料与事项不符，不予受理"})
                app.decision = "not_accepted"
                continue
            await desk.act(number, "accept", {"opinion": "材料齐全，予以受理"})
            day.counts["accepted"] += 1
            case = await desk.get(f"api/cases/{number}")
        for step in range(case["next_step"], len(case["steps"])):
            await desk.act(number, "step", {"step": step, "outcome": "pass", "opinion": "同意"})
        if case["outstanding"]:
            app.decision = "waiting_deferred"  # 容缺 materials due before it may be approved
            continue
        if day.rng.random() < 0.1:
            await desk.act(
                number,
                "decide",
                {"result_code": 1, "reason": "不符合法定条件", "opinion": "不予许可"},
            )
            app.decision = "denied"
        else:
            licence = f"演示〔2026〕{day.counts['decided'] + 1:04d}号"
            await desk.act(
                number, "decide", {"result_code": 0, "opinion": "准予", "licence_no": licence}
            )
            app.decision = "approved"
        day.counts["decided"] += 1
        day.progress()


async def hand_out(day: Day) -> None:
    """Results reach the pickup windows; most applicants come by and collect theirs."""
    decided = [a for a in day.apps if a.decision in ("approved", "denied") and not a.bundle]
    await hand_out_bundles(day)

    async def arrived(app: Application) -> bool:
        detail = await day.windows[app.pickup].get(f"api/cases/{app.number}")
        return bool(detail["actions"]["deliver"])

    await _until(lambda: _every(arrived, decided), 120, "", quiet=True)
    for app in decided:
        if day.rng.random() < 0.8 and await arrived(app):
            await day.windows[app.pickup].post(
                f"api/cases/{app.number}/deliver",
                {"collector": app.applicant, "method": "窗口领取"},
            )
            app.delivered = True
            day.counts["delivered"] += 1
            day.progress()


async def ask_for_corrections(day: Day) -> None:
    """补正: reviewers find something missing in a few new cases and say all of it at once."""
    waiting = [
        a for a in day.apps if not a.decision and not a.bundle and a.window not in day.offline
    ]
    chosen = day.rng.sample(waiting, min(len(waiting), max(1, len(waiting) // 12)))
    for app in chosen:
        desk = day.desks[app.authority]

        async def queued(app: Application = app, desk: Desk = desk) -> bool:
            case = await desk.get(f"api/cases/{app.number}")
            return bool(case["state"] == "submitted")

        await _until(queued, 30, "", quiet=True)
        case = await desk.get(f"api/cases/{app.number}")
        if case["state"] != "submitted":
            continue
        material = case["materials"][0]["id"]
        items = [{"problem": "申请表未签名，请签名后重新扫描提交", "material": material}]
        await desk.act(app.number, "request-correction", {"items": items, "opinion": "一次性告知"})
        app.tags.add("补正")


async def bring_missing(
    day: Day, app: Application, state: str, *, scan_label: str, filename: str, note: str
) -> bool:
    """The applicant brings what the notice asked for to their window, once the notice has
    reached it (``state``); False when it has not or nothing in it is a material."""
    window = day.windows[app.window]

    async def told() -> bool:
        detail = await window.get(f"api/cases/{app.number}")
        return bool(detail["case"]["state"] == state)

    await _until(told, 60, "", quiet=True)
    try:
        found = await window.post(
            "api/supplements/lookup",
            {"number": app.number, "id_number": id_number(app.serial)},
        )
    except ScenarioError:
        return False  # the notice has not reached the window yet: the applicant comes tomorrow
    materials = [item["material"] for item in found["items"] if item.get("material")]
    if not materials:
        return False
    form = aiohttp.FormData()
    for material in materials:
        scan = b"%PDF-1.4\n% " + scan_label.encode() + b"\n" + day.rng.randbytes(1024)
        form.add_field(f"file.{material}", scan, filename=filename, content_type="application/pdf")
    form.add_field("note", note)
    await window.post(f"api/cases/{app.number}/supplement", form)
    return True


async def supply_corrections(day: Day) -> None:
    """补齐补正: the applicants come back with what was missing, at their window."""
    for app in [a for a in day.apps if "补正" in a.tags and not a.decision]:
        if await bring_missing(
            day, app, "correction", scan_label="signed form", filename="补正.pdf", note="已签名"
        ):
            app.tags.add("补齐补正")


async def supply_deferred(day: Day) -> None:
    """容缺补齐: a case accepted with deferred materials may not be approved until they are
    in; the reviewer asks for them, the applicant brings them to the window, it is decided."""
    waiting = [a for a in day.apps if a.decision == "waiting_deferred"]
    for app in waiting:
        desk = day.desks[app.authority]
        case = await desk.get(f"api/cases/{app.number}")
        if case["state"] != "awaiting_supplement":
            items = [{"problem": "请补齐容缺受理时后补的材料", "material": m}
                     for m in case["outstanding"]]  # fmt: skip
            await desk.act(app.number, "request-supplement", {"items": items, "opinion": "补齐"})
    for app in waiting:
        if await bring_missing(
            day,
            app,
            "awaiting_supplement",
            scan_label="deferred",
            filename="容缺补齐.pdf",
            note="容缺材料已补齐",
        ):
            app.tags.add("容缺补齐")
    for app in [a for a in waiting if "容缺补齐" in a.tags]:
        desk = day.desks[app.authority]

        async def complete(app: Application = app, desk: Desk = desk) -> bool:
            case = await desk.get(f"api/cases/{app.number}")
            return case["state"] == "in_review" and not case["outstanding"]

        await _until(complete, 60, "", quiet=True)
        if not await complete():
            continue
        licence = f"演示〔2026〕{day.counts['decided'] + 1:04d}号"
        await desk.act(
            app.number, "decide", {"result_code": 0, "opinion": "准予", "licence_no": licence}
        )
        app.decision = "approved"
        day.counts["decided"] += 1
        day.progress()


async def decide_at_windows(day: Day) -> None:
    """即办: at each window entrusted with an authority's seal, a few applicants for a
    delegated matter get their result on the spot, sealed by the window (offline too)."""
    logins = json.loads((day.demo.root / "logins.json").read_text("utf-8"))
    for station, login in logins.get("window_clerks", {}).items():
        home = day.windows[station]
        window = Window(station, home.name, home.url, home.city, login["password"])
        try:
            answer = await window.post(
                "api/login", {"username": login["username"], "password": login["password"]}
            )
            window.csrf = answer["csrf_token"]
            found = (await window.get("api/matters?limit=500"))["matters"]
            here = [m for m in found if m.get("decide_here")]
            for _ in range(min(3, day.cases - len(day.apps)) if here else 0):
                matter = day.rng.choice(here)
                guide = await window.get(f"api/matters/{matter['code']}")
                day.serial += 1
                name = day.rng.choice(SURNAMES) + day.rng.choice(GIVEN)
                form = aiohttp.FormData()
                body = {
                    "matter": matter["code"],
                    "applicant": {"name": name, "id_type": "111",
                                  "id_number": id_number(day.serial)},
                    "materials": [{"id": m["id"]} for m in guide["materials"]],
                    "pickup": station,
                    "note": "演示场景：即办",
                }  # fmt: skip
                form.add_field(
                    "application", json.dumps(body, ensure_ascii=False),
                    content_type="application/json",
                )  # fmt: skip
                receipt = await window.post("api/cases", form)
                number = receipt["number"]
                licence = f"即办〔2026〕{day.serial:04d}号"
                detail = await window.post(
                    f"api/cases/{number}/decide",
                    {"result_code": 0, "licence_no": licence, "opinion": "当场办结"},
                )
                seal = (detail.get("result") or {}).get("seal") or {}
                if not seal.get("genuine"):
                    raise ScenarioError(f"{home.name} 即办结果的签章未通过核验：{seal}")
                day.apps.append(
                    Application(
                        number, matter["code"], station, station, receipt["authority"]["id"],
                        name, {"即办"}, day.serial, decision="approved",
                    )
                )  # fmt: skip
                day.counts["decided"] += 1
                day.progress()
        finally:
            await window.http.close()


async def verify_pledges(day: Day) -> None:
    """告知承诺核查: after a 告知承诺 approval each department checks the pledge afterwards."""
    apps = day.by_number()
    for desk in day.desks.values():
        for row in (await desk.get("api/tasks"))["verify"]:
            await desk.act(row["number"], "verify", {"outcome": "confirmed", "note": "核查属实"})
            if row["number"] in apps:
                apps[row["number"]].tags.add("告知承诺核查")


async def apply_for_bundle(day: Day) -> None:
    """一件事一次办: 企业开办 at a window, one application, a child case per authority."""
    for window in day.windows.values():
        if window.id in day.offline:
            continue
        bundles = (await window.get("api/bundles"))["bundles"]
        for bundle in bundles:
            authorities = {
                m["authority"]["id"]
                for m in window.matters
                if m["code"] in {c["code"] for c in bundle["matters"]}
            }
            if len(authorities) < len(bundle["matters"]) or not authorities <= set(day.desks):
                continue  # not every authority has a reviewer in this demo
            checklist = await window.get(f"api/bundles/{bundle['code']}/checklist")
            day.serial += 1
            name = day.rng.choice(SURNAMES) + day.rng.choice(GIVEN)
            materials = [
                {"id": m["id"], "mode": "pledged"} if m.get("pledgeable") else {"id": m["id"]}
                for m in checklist["materials"]
                if m.get("required", True) or m.get("pledgeable")
            ]
            body: dict[str, Any] = {
                "applicant": {"name": name, "id_type": "111", "id_number": id_number(day.serial)},
                "materials": materials,
            }
            if any(m.get("mode") == "pledged" for m in materials):
                body["pledge"] = {"text": f"申请人{name}承诺所述属实，如有不实愿承担法律责任。"}
            answer = await window.post(f"api/bundles/{bundle['code']}", body)
            for child in answer["children"]:
                day.apps.append(
                    Application(
                        child["number"], child["matter"]["code"], window.id, window.id,
                        child["authority"]["id"], name, {"一件事一次办"}, day.serial,
                        bundle=answer["number"],
                    )
                )  # fmt: skip
            day.progress()
            return


async def hand_out_bundles(day: Day) -> None:
    parents = {a.bundle: a.window for a in day.apps if a.bundle}
    for parent, station in parents.items():
        window = day.windows[station]

        async def done(parent: str = parent, window: Window = window) -> bool:
            return bool((await window.get(f"api/bundles/{parent}"))["can_deliver"])

        await _until(done, 60, "", quiet=True)
        if not await done():
            continue
        children = [a for a in day.apps if a.bundle == parent]
        await window.post(
            f"api/bundles/{parent}/deliver",
            {"collector": children[0].applicant, "method": "窗口领取"},
        )
        for app in children:
            app.delivered = True
            day.counts["delivered"] += 1


async def rate(day: Day) -> None:
    """好差评: about half of those who collected a result rate the service."""
    for app in [a for a in day.apps if a.delivered]:
        if day.rng.random() < 0.5:
            score = day.rng.choices([5, 4, 3, 2, 1], [60, 20, 10, 6, 4])[0]
            comment = "办事方便，一次办好" if score >= 4 else "等候时间较长"
            await day.windows[app.pickup].post(
                f"api/cases/{app.number}/rate", {"score": score, "comment": comment}
            )
            app.tags.add("好评" if score >= 3 else "差评")
            day.counts["rated"] += 1


async def _every(
    check: Callable[[Application], Awaitable[bool]], apps: Iterable[Application]
) -> bool:
    for app in apps:
        if not await check(app):
            return False
    return True


async def _until(
    check: Callable[[], Awaitable[bool]], within: float, failure: str, *, quiet: bool = False
) -> None:
    """Poll ``check`` every half second; after ``within`` s give up (quietly, or with
    ScenarioError(failure))."""
    deadline = time.monotonic() + within
    while True:
        try:
            if await check():
                return
        except (ScenarioError, aiohttp.ClientError):
            pass
        if time.monotonic() > deadline:
            if quiet:
                return
            raise ScenarioError(f"{failure}（等待 {within:.0f} 秒）")
        await asyncio.sleep(0.5)


ACTS: tuple[Act, ...] = (
    Act("开门", "各窗口、各审批部门登录；窗口取得本市与都市圈伙伴的事项目录", open_up),
    Act(
        "上午收件",
        "各窗口受理：本级事项、市区联办、都市圈通办、容缺受理、告知承诺、异地出件",
        intake(0.35),
    ),
    Act("一件事一次办", "企业开办：一次申请，每个部门一个子办件，结果一并出件", apply_for_bundle),
    Act("村站断网", "一个村站的线路中断（演示的可断开上行链路），窗口照常受理", go_offline),
    Act("断网收件", "断网期间继续受理，办件留在村站等待上报", intake(0.2)),
    Act("补正", "审批部门对少量新办件一次性告知补正", ask_for_corrections),
    Act("上午审批", "各部门受理、逐步审查、办结（准予或不予许可）、少量不予受理", review()),
    Act("补齐补正", "申请人回到窗口核验身份后补齐材料，办件回到审批部门", supply_corrections),
    Act("恢复联网", "线路恢复，村站立即同步，断网期间的办件上报托管", come_back),
    Act("即办", "下放到村（社区）、街道的即办件由窗口当场办结、签章", decide_at_windows),
    Act("下午收件", "各窗口继续受理", intake(1.0)),
    Act("下午审批", "审批下午到达的办件，约一半留待次日", review(leave_new=0.5)),
    Act("容缺补齐", "审批部门通知补齐容缺材料，申请人在窗口补齐后准予办结", supply_deferred),
    Act("出件", "结果回到申请人选定的窗口，多数申请人当天领取；一件事一并出件", hand_out),
    Act("好差评", "约一半领取结果的申请人评价服务", rate),
    Act("告知承诺核查", "审批部门对告知承诺准予的办件逐一事后核查", verify_pledges),
)


def describe() -> str:
    lines = ["演示场景的环节（按顺序）："]
    for act in ACTS:
        mark = "  " if act.run else "—"
        lines.append(f" {mark} {act.name}：{act.what}")
        if act.run is None:
            lines.append(f"      尚未实现，需要：{act.needs}")
    return "\n".join(lines)


# -- the summary -------------------------------------------------------------------------


@dataclass
class Summary:
    """Where every application stands at the end, as the windows see it."""

    submitted: int
    at_window: int  # not yet acknowledged by the parent hub (custody)
    in_custody: int  # held upstream, not decided
    at_authority: int  # of in_custody: the authority's hub signed its 送达回执 (case.received)
    decided: int  # decided, not yet handed out
    delivered: int
    closed: int  # 不予受理 / withdrawn / terminated
    unaccounted: list[str]
    overdue: int
    mean_to_result: float | None  # seconds from receipt to decision
    tags: Counter[str]
    reviewer: Counter[str]  # what the reviewers did (approved, denied, not_accepted, …)

    def adds_up(self) -> bool:
        parts = self.at_window + self.in_custody + self.decided + self.delivered + self.closed
        return not self.unaccounted and parts == self.submitted

    def render(self) -> str:
        mean = "—" if self.mean_to_result is None else f"{self.mean_to_result:.1f} 秒"
        total = self.at_window + self.in_custody + self.decided + self.delivered + self.closed
        parts = (
            f"{self.at_window} + {self.in_custody} + {self.decided} + {self.delivered}"
            f" + {self.closed} = {total}"
        )
        lines = [
            "",
            "今日汇总",
            f"  收件（受理回执）      {self.submitted}",
            f"  尚在窗口待上报        {self.at_window}",
            f"  已托管、办理中        {self.in_custody}（其中审批部门已签收 {self.at_authority}）",
            f"  已办结、待出件        {self.decided}",
            f"  已送达                {self.delivered}",
            f"  不予受理等终结        {self.closed}",
            f"  合计                  {parts}" + ("  ✓" if self.adds_up() else "  ✗ 对不上"),
            f"  其中超期              {self.overdue}",
            f"  平均办结用时          {mean}（收件至办结）",
            "  特色业务：" + "，".join(f"{k} {v}" for k, v in sorted(self.tags.items())),
            "  审批部门："
            + "，".join(
                f"{_REVIEW_LABELS.get(k, k)} {v}" for k, v in sorted(self.reviewer.items())
            ),
        ]
        if self.unaccounted:
            lines.append(f"  下落不明：{', '.join(self.unaccounted[:10])}")
        return "\n".join(lines)


_REVIEW_LABELS = {
    "approved": "准予",
    "denied": "不予许可",
    "not_accepted": "不予受理",
    "waiting_deferred": "待补齐容缺材料",
}


async def tally(day: Day) -> Summary:
    """Ask each accepting window (and the pickup window) where each application stands."""
    today = datetime.now(CHINA).date()
    counts: Counter[str] = Counter()
    unaccounted: list[str] = []
    overdue = 0
    durations: list[float] = []
    for app in day.apps:
        try:
            detail = await day.windows[app.window].get(f"api/cases/{app.number}")
        except ScenarioError:
            unaccounted.append(app.number)
            continue
        state = detail["case"]["state"]
        received = datetime.fromisoformat(detail["case"]["received"])
        submitted = [e for e in detail["timeline"] if e["type"] == "case.submitted"]
        decided = [e for e in detail["timeline"] if e["type"] == "case.decided"]
        deadline = detail["case"].get("deadline")
        due = date.fromisoformat(deadline) if deadline else None
        if state in OPEN_STATES:
            counts["in_custody" if submitted and submitted[0]["synced"] else "at_window"] += 1
            signed_for = bool(detail.get("arrived"))  # the authority's receipt, not a window's
            counts["at_authority"] += signed_for and bool(submitted and submitted[0]["synced"])
            overdue += due is not None and due < today
        elif state == "decided":
            counts["decided"] += 1
        elif state in DONE_STATES:
            counts["delivered"] += 1
        elif state in CLOSED_STATES:
            counts["closed"] += 1
        else:
            unaccounted.append(app.number)
        if decided:
            at = datetime.fromisoformat(decided[0]["at"])
            durations.append((at - received).total_seconds())
            overdue += due is not None and at.astimezone(CHINA).date() > due
    tags = Counter(t for a in day.apps for t in a.tags)
    return Summary(
        submitted=len(day.apps),
        at_window=counts["at_window"],
        in_custody=counts["in_custody"],
        at_authority=counts["at_authority"],
        decided=counts["decided"],
        delivered=counts["delivered"],
        closed=counts["closed"],
        unaccounted=unaccounted,
        overdue=overdue,
        mean_to_result=sum(durations) / len(durations) if durations else None,
        tags=tags,
        reviewer=Counter(a.decision for a in day.apps if a.decision),
    )


async def settle(day: Day, within: float = 90) -> None:
    """Wait until what the reviewers and pickup windows did is seen at the accepting windows."""
    expect = {
        a.number: ("delivered" if a.delivered else "decided")
        if a.decision in ("approved", "denied")
        else "not_accepted"
        if a.decision == "not_accepted"
        else None
        for a in day.apps
    }

    async def seen(app: Application) -> bool:
        want = expect[app.number]
        if want is None:
            return True
        detail = await day.windows[app.window].get(f"api/cases/{app.number}")
        return bool(detail["case"]["state"] == want)

    # Quietly: the summary shows where each case is, and still adds up.
    await _until(lambda: _every(seen, day.apps), within, "", quiet=True)


# -- running it --------------------------------------------------------------------------


def people(root: Path) -> tuple[Demo, dict[str, Window], dict[str, Desk]]:
    """The running demo's windows and reviewer desks, from ``<root>/logins.json``."""
    root = root.resolve()
    logins_file = root / "logins.json"
    if not logins_file.exists():
        raise ScenarioError(f"{root} 中没有演示数据：请先在另一个终端运行 make demo。")
    logins = json.loads(logins_file.read_text("utf-8"))
    if not logins.get("passwords_set"):
        raise ScenarioError("演示尚未启动完毕（审批人员口令未设置），请等 make demo 打印登录表。")
    demo = Demo(root, Topology.load(root / "topology.yaml"), int(logins["base_port"]))
    windows = {}
    for plan in demo.topology.cities:
        for station in plan.stations:
            member = demo.feds[plan.city].members[station.id]
            windows[station.id] = Window(
                station.id, station.name, member.url, plan.city, logins["clerks"][station.id]
            )
    desks = {}
    for staff_id, login in logins["staff"].items():
        hub = next(m for m in demo.members() if m.id == login["hub"])
        dept = staff_id.split("-", 1)[1]
        authority = f"{hub.id}:{dept}"
        desks[authority] = Desk(staff_id, hub.url, authority, login["password"])
    return demo, windows, desks


async def run_scenario(root: Path, *, cases: int = 300, seed: int = 2026) -> Summary:
    """Run every available act against the demo in ``root``; the day's summary."""
    demo, windows, desks = people(root)
    day = Day(windows, desks, demo, cases, random.Random(seed))
    try:
        for act in ACTS:
            if act.run is None:
                continue
            day.act = act.name
            day.progress(force=True)
            await act.run(day)
            day.progress(force=True)
        day.act = "汇总"
        await settle(day)
        if sys.stderr.isatty():
            click.echo("", err=True)
        return await tally(day)
    finally:
        for station in list(day.offline):  # never leave a station cut off
            (demo.offline_dir / station).unlink(missing_ok=True)
        await day.close()
