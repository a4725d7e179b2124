"""Across tiers and cities, as separate processes (issue 4).

Two metro peer cities, each built with the operator's commands: 沈阳 (2101: the city hub,
the 和平区 hub 210102 with two villages, the 铁西区 hub 210106 with one) and 抚顺 (2104: the
city hub, the 新抚区 hub 210402 with one village). Every hub runs on its own PostgreSQL
database. The test walks

* 市区联办: a 沈阳 city matter accepted at a 和平 village, decided at the city hub, the
  sealed result back at the village;
* pickup elsewhere: the result goes to a village of another district, which hands it out;
  the accepting village sees that it was collected;
* 都市圈通办: a 沈阳 metro matter accepted at a 抚顺 village crosses 新抚 → 抚顺 → 沈阳 and
  back, with the 新抚 hub down while the decision is made; and a 抚顺 metro matter accepted
  in 和平, decided in 抚顺;
* the catalog's scope at the window, and "not yours" from a peer city hub;
* 送达回执 both ways: the deciding hub's receipt of each application reaches the window, and
  the windows' receipts of each decision (the accepting and the pickup window) reach the
  deciding hub, across tiers and cities.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.config import HubSettings
from ops.launch import (
    CITY_DEPTS,
    DISTRICT_DEPTS,
    EXAMPLES,
    LocalFederation,
    Member,
    eventually,
    free_port,
)
from protocol.http.client import PeerClient, PeerError
from protocol.keys import KeyPair
from tests.integration.harness import Clerk, Reviewer, fresh_database, id_number

pytestmark = pytest.mark.postgres

SY, FS = "2101", "2104"
HEPING, TIEXI, XINFU = "210102", "210106", "210402"
HP_A, HP_B, TX_A, XF_A = "210102001001", "210102001002", "210106001001", "210402001001"
ANNUAL = "SY-SFJ-KH-02"  # 律师执业年度考核结果备案: 2101:sfj, scope city, one reviewer step
RIDE = "SY-JTJ-WY-01"  # 网约车驾驶员从业资格: 2101:jtj, scope metro, three steps
SFJ_STAFF = ("sy-sfj-01", "李审核", "司法局审核口令-2026")
JTJ_STAFF = ("sy-jtj-01", "赵审核", "交通局审核口令-2026")
FS_STAFF = ("fs-sfj-01", "钱审核", "抚顺司法局审核口令-2026")
NOTARY = "FS-SFJ-GZ-02"  # 公证员执业证遗失补发: 2104:sfj, scope metro, one reviewer step
FS_DEPTS = {"sfj": "抚顺市司法局"}


@dataclass
class Cities:
    sy: LocalFederation
    fs: LocalFederation
    hubs: dict[str, Member]
    stations: dict[str, tuple[Member, str]]


@pytest.fixture
async def cities(tmp_path: Path) -> AsyncIterator[Cities]:
    async with AsyncExitStack() as stack:
        dbs: list[str] = []
        for _ in range(5):
            db, drop = await fresh_database()
            stack.push_async_callback(drop)
            dbs.append(db)
        sy = LocalFederation(tmp_path / "sy")
        fs = LocalFederation(tmp_path / "fs", city=FS, city_name="抚顺市")
        stack.push_async_callback(sy.stop_all)
        stack.push_async_callback(fs.stop_all)
        await sy.create()
        await fs.create()
        hubs: dict[str, Member] = {}
        hubs[SY] = await sy.add_hub(
            SY, "沈阳市政务服务中心", None, CITY_DEPTS, port=free_port(), db=dbs[0]
        )
        hubs[HEPING] = await sy.add_hub(
            HEPING, "和平区政务服务中心", hubs[SY].url, DISTRICT_DEPTS, port=free_port(), db=dbs[1]
        )
        hubs[TIEXI] = await sy.add_hub(
            TIEXI, "铁西区政务服务中心", hubs[SY].url, {}, port=free_port(), db=dbs[4]
        )
        hubs[FS] = await fs.add_hub(
            FS, "抚顺市政务服务中心", None, FS_DEPTS, port=free_port(), db=dbs[2]
        )
        hubs[XINFU] = await fs.add_hub(
            XINFU, "新抚区政务服务中心", hubs[FS].url, {}, port=free_port(), db=dbs[3]
        )
        stations = {
            HP_A: await sy.add_station(HP_A, "和平甲村便民服务站", hubs[HEPING], port=free_port()),
            HP_B: await sy.add_station(HP_B, "和平乙村便民服务站", hubs[HEPING], port=free_port()),
            TX_A: await sy.add_station(TX_A, "铁西甲村便民服务站", hubs[TIEXI], port=free_port()),
            XF_A: await fs.add_station(XF_A, "新抚甲村便民服务站", hubs[XINFU], port=free_port()),
        }
        await sy.add_staff(SFJ_STAFF[0], SFJ_STAFF[1], SY, "sfj", "acceptor", "reviewer")
        await sy.add_staff(JTJ_STAFF[0], JTJ_STAFF[1], SY, "jtj", "acceptor", "reviewer", "signer")
        await fs.add_staff(FS_STAFF[0], FS_STAFF[1], FS, "sfj", "acceptor", "reviewer")
        # Each city lists the other as a metro peer (都市圈): its root key and city hub.
        await sy.ops(
            "peer", "add", "--city", FS, "--name", "抚顺市",
            "--endpoint", hubs[FS].url, "--root-key", fs.root_key,
        )  # fmt: skip
        await fs.ops(
            "peer", "add", "--city", SY, "--name", "沈阳市",
            "--endpoint", hubs[SY].url, "--root-key", sy.root_key,
        )  # fmt: skip
        for hub in hubs.values():
            await hub.proc.start()
        await sy.publish()
        await fs.publish(EXAMPLES / "catalog-fushun.yaml")
        await sy.set_password(hubs[SY], SFJ_STAFF[0], SFJ_STAFF[2])
        await sy.set_password(hubs[SY], JTJ_STAFF[0], JTJ_STAFF[2])
        await fs.set_password(hubs[FS], FS_STAFF[0], FS_STAFF[2])
        for station, _ in stations.values():
            await station.proc.start()
        yield Cities(sy, fs, hubs, stations)


def application(matter: str, name: str, serial: int, **extra: Any) -> aiohttp.FormData:
    """An application with one scan per provided material (multipart, as the window sends)."""
    materials = {
        ANNUAL: ["report", "list"],
        RIDE: ["form", "idcard", "licence", "nocrime", "exam", "photo"],
        NOTARY: ["form", "idcard"],
    }[matter]
    body = {
        "matter": matter,
        "applicant": {"name": name, "id_type": "111", "id_number": id_number(serial)},
        "materials": [{"id": m} for m in materials],
        **extra,
    }
    form = aiohttp.FormData()
    form.add_field(
        "application", json.dumps(body, ensure_ascii=False), content_type="application/json"
    )
    for material in materials[:2]:
        form.add_field(
            f"file.{material}",
            os.urandom(20_000),
            filename=f"{material}.pdf",
            content_type="application/pdf",
        )
    return form


async def served(hub: Member, city: str) -> bool:
    """Whether ``hub`` serves the config of ``city`` (GET /v1/config is public)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{hub.url}v1/config", params={"city": city}) as resp,
    ):
        return resp.status == 200


def state_is(clerk: Clerk, number: str, state: str) -> Callable[[], Awaitable[Any]]:
    async def check() -> dict[str, Any] | None:
        async with clerk.http.get(f"{clerk.station.url}api/cases/{number}") as resp:
            if resp.status != 200:
                return None
            detail = await resp.json()
        return detail if detail["case"]["state"] == state else None

    return check


def arrived(clerk: Clerk, number: str) -> Callable[[], Awaitable[Any]]:
    """The case as the window sees it once the 送达回执 came back (已送达审批部门)."""

    async def check() -> dict[str, Any] | None:
        async with clerk.http.get(f"{clerk.station.url}api/cases/{number}") as resp:
            detail = await resp.json() if resp.status == 200 else {}
        return detail if detail.get("arrived") else None

    return check


async def tracked(member: Member, number: str, code: str) -> str:
    """The public 进度查询 page of a case at ``member`` (no login)."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{member.url}track", data={"number": number, "code": code}) as resp,
    ):
        assert resp.status == 200, resp.status
        return await resp.text()


async def all_held(reviewer: Reviewer, number: str) -> bool:
    case = await reviewer.get(f"api/cases/{number}")
    blobs = [blob for m in case["materials"] for blob in m["blobs"]]
    return bool(blobs) and all(blob["held"] for blob in blobs)


async def decision_confirmed(reviewer: Reviewer, number: str, windows: set[str]) -> bool:
    """Whether the deciding hub's case shows its 办结 confirmed (送达回执) by exactly
    ``windows``, and no event of the case refused by its fold."""
    case = await reviewer.get(f"api/cases/{number}")
    [decided] = [e for e in case["timeline"] if e["type"] == "case.decided"]
    sent = {s["member"]: s["confirmed"] for s in decided["sent_to"]}
    return sent == dict.fromkeys(windows, True) and case["last_error"] is None


async def queued(reviewer: Reviewer, number: str) -> bool:
    return number in {c["number"] for c in (await reviewer.get("api/queue"))["cases"]}


async def test_tiers_and_cities(cities: Cities) -> None:
    hubs, stations = cities.hubs, cities.stations
    # Peer configs travel: each city hub from the other, the districts from their city.
    for hub, city in ((hubs[SY], FS), (hubs[FS], SY), (hubs[HEPING], FS), (hubs[XINFU], SY)):
        await eventually(partial(served, hub, city), within=60)

    async with AsyncExitStack() as stack:
        sessions = {}
        for name in (*stations, SY, FS):
            jar = aiohttp.CookieJar(unsafe=True)
            sessions[name] = await stack.enter_async_context(aiohttp.ClientSession(cookie_jar=jar))
        clerks = {sid: Clerk(stations[sid][0], stations[sid][1], sessions[sid]) for sid in stations}
        for clerk in clerks.values():
            await clerk.login()
        reviewer = Reviewer(hubs[SY], sessions[SY])

        # -- 市区联办, and pickup at another window ------------------------------------
        local = await clerks[HP_A].post("api/cases", application(ANNUAL, "王律师", 1), expect=201)
        elsewhere = await clerks[HP_A].post(
            "api/cases", application(ANNUAL, "刘律师", 2, pickup=TX_A), expect=201
        )
        n_local, n_elsewhere = local["number"], elsewhere["number"]
        # The pickup window holds the case from the submission on.
        await eventually(state_is(clerks[TX_A], n_elsewhere, "submitted"), within=60)
        # 送达回执: the city hub holds the application and its scans; the receipt comes back
        # down 沈阳 → 和平 → the village, which shows 已送达审批部门 (case page, 进度查询).
        seen = await eventually(arrived(clerks[HP_A], n_local), within=60)
        assert seen["case"]["state"] == "submitted"
        assert any("已送达审批部门" in e["text"] for e in seen["timeline"])
        assert "已送达审批部门" in await tracked(stations[HP_A][0], n_local, local["query_code"])
        assert "已送达审批部门" in await tracked(hubs[SY], n_local, local["query_code"])

        await reviewer.login(SFJ_STAFF[0], SFJ_STAFF[2])
        for number in (n_local, n_elsewhere):
            await eventually(partial(queued, reviewer, number), within=60)
            await eventually(partial(all_held, reviewer, number), within=60)
            await reviewer.act(number, "accept", {"opinion": "材料齐全，予以受理"})
            await reviewer.act(number, "step", {"outcome": "pass", "opinion": "审核通过"})
            await reviewer.act(number, "decide", {"result_code": 0, "opinion": "准予备案"})

        detail = await eventually(state_is(clerks[HP_A], n_local, "decided"), within=60)
        assert detail["result"]["seal"]["genuine"] is True
        await clerks[HP_A].post(
            f"api/cases/{n_local}/deliver", {"collector": "王律师", "method": "窗口领取"}
        )
        detail = await eventually(state_is(clerks[TX_A], n_elsewhere, "decided"), within=60)
        assert detail["result"]["seal"]["genuine"] is True
        await clerks[TX_A].post(
            f"api/cases/{n_elsewhere}/deliver", {"collector": "刘律师", "method": "窗口领取"}
        )
        # The accepting window sees the result was collected at the pickup window.
        await eventually(state_is(clerks[HP_A], n_elsewhere, "delivered"), within=60)
        # The windows' 送达回执 of the decision went up to the city hub: the reviewer sees the
        # 办结 confirmed by the accepting window, and by the pickup window where it differs.
        await eventually(partial(decision_confirmed, reviewer, n_local, {HP_A}), within=60)
        await eventually(
            partial(decision_confirmed, reviewer, n_elsewhere, {HP_A, TX_A}), within=60
        )

        # -- scope at the window ---------------------------------------------------------
        refused = await clerks[XF_A].post("api/cases", application(ANNUAL, "孙律师", 3), expect=422)
        # A 沈阳 matter not open for 都市圈通办: a clear refusal at the 抚顺 window.
        assert refused["error"] == "out_of_scope" and "未开通都市圈通办" in refused["message"]

        # -- 都市圈通办: 抚顺 village → 新抚 → 抚顺 → 沈阳, and back -------------------------
        ride = await clerks[XF_A].post(
            "api/cases", application(RIDE, "周司机", 4, location=XF_A), expect=201
        )
        n_ride = ride["number"]
        await reviewer.login(JTJ_STAFF[0], JTJ_STAFF[2])
        await eventually(partial(queued, reviewer, n_ride), within=60)
        # The materials followed the event across both cities.
        await eventually(partial(all_held, reviewer, n_ride), within=60)
        # The 新抚 hub goes away while 沈阳 decides; the result waits and flows on later.
        await hubs[XINFU].proc.stop()
        await reviewer.act(n_ride, "accept", {"opinion": "材料齐全，予以受理"})
        for opinion in ("受理审查通过", "审核通过", "同意签发"):
            await reviewer.act(n_ride, "step", {"outcome": "pass", "opinion": opinion})
        await reviewer.act(
            n_ride, "decide", {"result_code": 0, "opinion": "准予许可", "licence_no": "SYWY-0001"}
        )
        await hubs[XINFU].proc.start()
        detail = await eventually(state_is(clerks[XF_A], n_ride, "decided"), within=90)
        assert detail["result"]["seal"]["genuine"] is True
        assert detail["result"]["document"]["licence_no"] == "SYWY-0001"
        # The receipt signed at 沈阳 crossed back 沈阳 → 抚顺 → 新抚 → the village.
        assert (await eventually(arrived(clerks[XF_A], n_ride), within=60))["arrived"]
        # ... and the village's receipt of the decision crossed the other way to 沈阳.
        await eventually(partial(decision_confirmed, reviewer, n_ride, {XF_A}), within=60)

        # -- 都市圈通办 the other way: a 抚顺 metro matter accepted at a 和平 village ----------
        notary = await clerks[HP_B].post(
            "api/cases", application(NOTARY, "吴公证员", 5, location=HP_B), expect=201
        )
        n_notary = notary["number"]
        fs_reviewer = Reviewer(hubs[FS], sessions[FS])
        await fs_reviewer.login(FS_STAFF[0], FS_STAFF[2])
        await eventually(partial(queued, fs_reviewer, n_notary), within=60)
        await eventually(partial(all_held, fs_reviewer, n_notary), within=60)
        await fs_reviewer.act(n_notary, "accept", {"opinion": "材料齐全，予以受理"})
        await fs_reviewer.act(n_notary, "step", {"outcome": "pass", "opinion": "审核通过"})
        await fs_reviewer.act(n_notary, "decide", {"result_code": 0, "opinion": "准予补发"})
        detail = await eventually(state_is(clerks[HP_B], n_notary, "decided"), within=60)
        assert detail["result"]["seal"]["genuine"] is True
        assert (await eventually(arrived(clerks[HP_B], n_notary), within=60))["arrived"]
        await eventually(partial(decision_confirmed, fs_reviewer, n_notary, {HP_B}), within=60)

        # -- not yours ---------------------------------------------------------------------
        # 抚顺's city hub may push into 沈阳 what is addressed there, and read nothing else.
        fs_key = HubSettings.load(hubs[FS].data).load_member_key()
        http = await stack.enter_async_context(aiohttp.ClientSession())  # no staff cookie
        client = PeerClient(hubs[SY].url, FS, fs_key, http)
        with pytest.raises(PeerError) as caught:
            await client.feed(None, 0)
        assert (caught.value.status, caught.value.reason) == (403, "not_yours")
        heping_case = await reviewer_case(hubs[SY], n_local)
        blob = heping_case["materials"][0]["blobs"][0]["hash"]
        with pytest.raises(PeerError) as caught:
            await client._request("GET", client.url(f"/v1/blobs/{blob}"), {}, b"")
        assert (caught.value.status, caught.value.reason) == (403, "not_yours")
        # A village cannot read another village's materials at its district hub either.
        hp_b_key = KeyPair.from_file_bytes((stations[HP_B][0].data / "member.key").read_bytes())
        village = PeerClient(hubs[HEPING].url, HP_B, hp_b_key, http)
        with pytest.raises(PeerError) as caught:
            await village._request("GET", village.url(f"/v1/blobs/{blob}"), {}, b"")
        assert (caught.value.status, caught.value.reason) == (403, "forbidden")

        # -- per-destination status: the operator sees the peer city ------------------------
        async with http.get(hubs[FS].url + "healthz") as resp:
            report = await resp.json()
        peer = {d["destination"]: d for d in report["destinations"]}[SY]
        assert peer["last_success"] is not None and peer["backlog_count"] == 0
        async with http.get(hubs[FS].url + "metrics") as resp:
            text = await resp.text()
        assert f'tongban_hub_backlog_events{{destination="{SY}"}} 0.0' in text
        assert f'tongban_hub_relay_last_success_timestamp_seconds{{destination="{SY}"}}' in text


async def reviewer_case(hub: Member, number: str) -> dict[str, Any]:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        reviewer = Reviewer(hub, http)
        await reviewer.login(SFJ_STAFF[0], SFJ_STAFF[2])
        answer: dict[str, Any] = await reviewer.get(f"api/cases/{number}")
        return answer
