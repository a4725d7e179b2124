"""Village to district and back, as separate processes (issue 3).

A real district hub on PostgreSQL and a real village node, each a ``tongban … run`` process on
127.0.0.1, set up with the operator's commands. The hub goes away, the village keeps
accepting; the hub comes back and everything reaches custody exactly once; a reviewer's
sealed decision travels back to the village window.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from ops.launch import LocalFederation, Member, eventually, free_port
from tests.integration.faultproxy import FaultProxy, LinkProfile
from tests.integration.harness import Clerk, Reviewer, heping, id_number, metric

pytestmark = pytest.mark.postgres

MATTER = "HP-WJJ-ZS-02"  # 诊所备案: 和平区卫生健康局, steps 受理审查 (acceptor) → 审核 (reviewer)
REVIEWER = ("hp-wjj-01", "王审核", "审核员口令-2026")
VILLAGE = "210102001001"  # illustrative village code under 和平区 (210102)


def application(name: str, files: dict[str, bytes], serial: int = 1) -> aiohttp.FormData:
    """A 诊所备案 application with scans for some materials (multipart, as the window sends)."""
    form = aiohttp.FormData()
    body = {
        "matter": MATTER,
        "applicant": {"name": name, "id_type": "111", "id_number": id_number(serial)},
        "materials": [
            {"id": "form"},
            {"id": "licence"},
            {"id": "doctors"},
            {"id": "layout"},
            {"id": "rules"},
        ],
    }
    form.add_field(
        "application", json.dumps(body, ensure_ascii=False), content_type="application/json"
    )
    for material, data in files.items():
        form.add_field(
            f"file.{material}", data, filename=f"{material}.pdf", content_type="application/pdf"
        )
    return form


@dataclass
class Setup:
    fed: LocalFederation
    hub: Member  # 和平区 (210102), on PostgreSQL


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with heping(tmp_path, REVIEWER, "acceptor", "reviewer") as (fed, hub):
        yield Setup(fed, hub)


async def start(setup: Setup) -> None:
    await setup.hub.proc.start()
    await setup.fed.publish()
    await setup.fed.set_password(setup.hub, REVIEWER[0], REVIEWER[2])


async def submitted_at_hub(hub: Member) -> list[str]:
    """Case numbers of every ``case.submitted`` event the hub holds (duplicates included)."""
    conn = await asyncpg.connect(hub.db.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await conn.fetch("SELECT case_no FROM events WHERE type = 'case.submitted'")
    finally:
        await conn.close()
    return sorted(r["case_no"] for r in rows)


async def has_config(clerk: Clerk) -> bool:
    return bool((await clerk.get("api/sync"))["config"]["serial"])


async def in_custody(clerk: Clerk) -> dict[str, Any] | None:
    sync = await clerk.get("api/sync")
    waiting = sync["waiting"]
    return sync if waiting["events"] == 0 and waiting["blobs"] == 0 else None


async def test_offline_village_reaches_custody_once_and_gets_its_result(setup: Setup) -> None:
    fed, hub = setup.fed, setup.hub
    station, password = await fed.add_station(VILLAGE, "示例村便民服务站", hub, port=free_port())
    await start(setup)
    await station.proc.start()
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        clerk = Clerk(station, password, http)
        await clerk.login()
        await eventually(lambda: has_config(clerk))

        # The district hub goes away; the village keeps accepting, offline.
        await hub.proc.stop()
        numbers = []
        for i in range(3):
            scans = {"form": os.urandom(150_000), "licence": os.urandom(90_000 + i)}
            receipt = await clerk.post("api/cases", application(f"申请人{i}", scans, i), expect=201)
            numbers.append(receipt["number"])
            assert receipt["matter"]["code"] == MATTER and receipt["deadline"]["date"]
        sync = await clerk.get("api/sync")
        assert sync["waiting"]["events"] >= 3 and sync["waiting"]["blobs"] == 6

        # The hub comes back: everything reaches custody, exactly once.
        await hub.proc.start()
        await clerk.post("api/sync/now", {}, expect=202)
        await eventually(lambda: in_custody(clerk), within=60)
        assert await submitted_at_hub(hub) == sorted(numbers)

        # A reviewer decides one case; the sealed result comes home to the village window.
        reviewer = Reviewer(hub, http)
        await reviewer.login(REVIEWER[0], REVIEWER[2])
        queue = {c["number"] for c in (await reviewer.get("api/queue"))["cases"]}
        assert queue == set(numbers)
        case = await reviewer.get(f"api/cases/{numbers[0]}")
        assert all(blob["held"] for m in case["materials"] for blob in m["blobs"])
        number = numbers[0]
        await reviewer.act(number, "accept", {"opinion": "材料齐全，予以受理"})
        await reviewer.act(number, "step", {"outcome": "pass", "opinion": "受理审查通过"})
        await reviewer.act(number, "step", {"outcome": "pass", "opinion": "审核通过"})
        await reviewer.act(
            number,
            "decide",
            {"result_code": 0, "opinion": "准予备案", "licence_no": "HPWJ-2026-0001"},
        )

        async def decided() -> dict[str, Any] | None:
            detail = await clerk.get(f"api/cases/{number}")
            return detail if detail["case"]["state"] == "decided" else None

        detail = await eventually(decided, within=30)
        assert detail["result"]["seal"]["genuine"] is True
        assert detail["result"]["document"]["licence_no"] == "HPWJ-2026-0001"
        assert detail["actions"]["deliver"] is True
        # The case page a clerk opens shows the decision too.
        async with http.get(f"{station.url}cases/{number}") as resp:
            page = await resp.text()
        assert resp.status == 200 and "办结" in page and number in page

        # 出件: the clerk records handing out the result; it is signed and reaches the hub.
        delivered = await clerk.post(
            f"api/cases/{number}/deliver", {"collector": "申请人0", "method": "窗口领取"}
        )
        assert delivered["case"]["state"] == "delivered"
        await eventually(lambda: in_custody(clerk), within=30)


async def test_blob_upload_resumes_after_sigkill_without_resending(setup: Setup) -> None:
    fed, hub = setup.fed, setup.hub
    await start(setup)
    # A slow link (about 2 Mbit/s) so the node can be killed in the middle of the upload.
    proxy = FaultProxy(hub.port, LinkProfile(rate=250_000, latency=0.05))
    await proxy.start()
    try:
        station, password = await fed.add_station(
            VILLAGE, "示例村便民服务站", hub, port=free_port()
        )
        await fed.sign_and_push()
        point_at(station, proxy)
        await station.proc.start()
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            clerk = Clerk(station, password, http)
            await clerk.login()
            await eventually(lambda: has_config(clerk), within=60)
            scan = os.urandom(1_500_000)
            await clerk.post("api/cases", application("大文件", {"form": scan}), expect=201)

            async def some_bytes_held() -> float:
                held = await metric(hub.url, "tongban_hub_blob_bytes_received_total")
                return held if 0 < held < len(scan) else 0.0

            await eventually(some_bytes_held, within=60, every=0.05)
            station.proc.kill()
            assert station.proc.proc is not None
            await station.proc.proc.wait()

            await station.proc.start()
            await clerk.login()
            await clerk.post("api/sync/now", {}, expect=202)
            await eventually(lambda: in_custody(clerk), within=90)
        # Every byte of the scan arrived exactly once: nothing already held was sent again.
        assert await metric(hub.url, "tongban_hub_blob_bytes_received_total") == len(scan)
    finally:
        await proxy.close()


def point_at(station: Member, proxy: FaultProxy) -> None:
    """Send the station's traffic through ``proxy`` (its parent URL in station.json)."""
    path = station.data / "station.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings["parent_url"] = proxy.url
    path.write_text(json.dumps(settings, ensure_ascii=False, indent=2), encoding="utf-8")
