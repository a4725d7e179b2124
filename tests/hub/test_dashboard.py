"""电子监察 cards and the operator dashboard of a hub, in-process over real HTTP (and, marked
``browser``, in Debian's chromium).

The federation: the 和平区 hub with an operator account; village A submitted one case 40 days
ago that nobody touched (a red card: 视为受理 from receipt, 3 working days promised) and
rated another 1 分 (差评); village B never contacted the hub (失联). Village codes are
illustrative.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest

from hub.services import supervision
from hub.services.staff import set_password
from ops.status import StatusFailed, members_status
from protocol.case import submitted_to
from tests.hub.conftest import RunningHub, StartHub
from tests.hub.fed import (
    CST,
    DISTRICT,
    HP_MZJ,
    PASSWORD,
    RELIEF,
    REVIEWER,
    VILLAGE_A,
    VILLAGE_B,
    Chain,
    Fed,
    applicant,
    sha,
    staff,
    submit,
    wire,
)

OPERATOR = "hp-yunwei"


@dataclass
class OpsFed(Fed):
    """The test federation with an operator account at the 和平区 hub."""

    def config_dict(self) -> dict[str, Any]:
        obj = super().config_dict()
        obj["staff"].append(staff(OPERATOR, DISTRICT, None, "operator"))
        return obj


@dataclass
class Scene:
    running: RunningHub
    red: str  # the case past its deadline
    rated: str  # the case rated 1 分


async def login(http: aiohttp.ClientSession, base: str, who: str) -> str:
    async with http.post(f"{base}api/login", json={"staff": who, "password": PASSWORD}) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["csrf"])


def old_submission(chain: Chain, days_ago: int) -> Any:
    at = datetime.now(CST) - timedelta(days=days_ago)
    number = f"{chain.author}-{at:%Y%m%d}-9001"
    body = {
        "matter": RELIEF,
        "applicant": applicant(),
        "location": chain.author,
        "pickup": chain.author,
        "materials": [
            {"id": m, "mode": "provided", "blobs": [sha(m)], "name": m} for m in ("form", "idcard")
        ],
    }
    to = submitted_to(HP_MZJ, chain.author, chain.author)
    return chain.next("case.submitted", case=number, to=to, body=body, ts=at)


async def build_scene(start_hub: StartHub) -> Scene:
    running = await start_hub(DISTRICT, fed=OpsFed())
    for who in (REVIEWER, OPERATOR):
        await set_password(running.hub, who, PASSWORD)
    chain = Chain(VILLAGE_A)
    late = old_submission(chain, 40)
    fresh = submit(chain)
    assert late.case is not None and fresh.case is not None
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await running.client(VILLAGE_A, http).push(wire(late, fresh))
        csrf = await login(http, running.url, REVIEWER)
        for action, body in (("accept", {}), ("decide", {"result_code": 0, "opinion": "同意"})):
            async with http.post(
                f"{running.url}api/cases/{fresh.case}/{action}",
                json=body,
                headers={"X-CSRF-Token": csrf},
            ) as resp:
                assert resp.status == 200, await resp.text()
        delivered = chain.next(
            "case.delivered",
            case=fresh.case,
            to=(HP_MZJ,),
            body={"collector": "张三", "method": "窗口领取"},
        )
        rated = chain.next(
            "case.rated",
            case=fresh.case,
            to=(HP_MZJ,),
            body={"score": 1, "comment": "排队两个小时，态度生硬"},
        )
        ack = await running.client(VILLAGE_A, http).push(wire(delivered, rated))
        assert ack["custody"][VILLAGE_A] == chain.seq
    return Scene(running, late.case, fresh.case)


@pytest.fixture
async def scene(start_hub: StartHub) -> Scene:
    return await build_scene(start_hub)


async def test_cards_are_computed_by_the_fold_and_exported(scene: Scene) -> None:
    hub = scene.running.hub
    found = await supervision.department_cards(hub, "mzj")
    assert [(c.number, c.colour) for c in found] == [(scene.red, "red")]
    assert found[0].days_left < 0 and found[0].label == "红牌"
    assert await supervision.department_cards(hub, "wjj") == []

    # An accepted case one working day before its deadline is a yellow card (N=1), not with
    # N=0; a case still in its 5-day acceptance window has no card at all.
    chain = Chain(VILLAGE_B)
    accepted, waiting = submit(chain), submit(chain)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await scene.running.client(VILLAGE_B, http).push(wire(accepted, waiting))
        csrf = await login(http, scene.running.url, REVIEWER)
        async with http.post(
            f"{scene.running.url}api/cases/{accepted.case}/accept",
            json={},
            headers={"X-CSRF-Token": csrf},
        ) as resp:
            assert resp.status == 200, await resp.text()
    calendar = hub.view.require().home.calendar
    today = datetime.now(CST).date()
    due = calendar.add_workdays(today, 3).date  # RELIEF: 3 working days promised
    assert due is not None
    eve = due - timedelta(days=1)
    while calendar.count_workdays(eve, due) < 1:
        eve -= timedelta(days=1)
    later = datetime.combine(eve, datetime.min.time(), CST).replace(hour=10)
    hub.clock = lambda: later
    colours = {c.number: c.colour for c in await supervision.cards(hub)}
    assert colours == {scene.red: "red", accepted.case: "yellow"}
    assert accepted.case not in {c.number for c in await supervision.cards(hub, near_days=0)}

    counts = await supervision.supervise(hub)
    assert counts == {"yellow": 1, "red": 1}
    alerts = [(a.kind, a.subject) for a in await hub.store.alerts()]
    assert ("red_card", scene.red) in alerts
    await supervision.supervise(hub)  # a red card is alerted once
    assert [a.subject for a in await hub.store.alerts() if a.kind == "red_card"] == [scene.red]
    async with aiohttp.ClientSession() as http, http.get(f"{scene.running.url}metrics") as resp:
        text = await resp.text()
    assert 'tongban_hub_overdue_cards{colour="red"} 1.0' in text
    assert 'tongban_hub_overdue_cards{colour="yellow"} 1.0' in text
    for name in ("tongban_hub_events_pushed", "tongban_hub_sync_latency_seconds",
                 "tongban_hub_blob_bytes_sent", "tongban_hub_events_received"):  # fmt: skip
        assert name in text


async def test_dashboard_needs_an_operator_and_shows_what_needs_attention(scene: Scene) -> None:
    base = scene.running.url
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{base}dashboard", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=")
        async with http.get(f"{base}dashboard/api/members") as resp:
            assert resp.status == 401
        await login(http, base, REVIEWER)
        async with http.get(f"{base}dashboard") as resp:
            assert resp.status == 403 and "运维人员" in await resp.text()
        await login(http, base, OPERATOR)
        async with http.get(f"{base}dashboard") as resp:
            assert resp.status == 200
            page = await resp.text()
        async with http.get(f"{base}dashboard?sort=last_seen&desc=1&district=210102") as resp:
            sorted_page = await resp.text()
        async with http.get(f"{base}dashboard/api/members") as resp:
            rows = {r["id"]: r for r in (await resp.json())["members"]}
    assert "红牌" in page and scene.red in page
    assert "排队两个小时" in page and "差评 1 分" in page
    assert f'data-bad-rating="{scene.rated}"' in page
    assert "<svg" in page and "<script" not in page.split("</head>")[1]
    assert "13812345678" not in page  # no phone number on the page
    assert rows[VILLAGE_B]["last_seen"] is None and rows[VILLAGE_B]["silent"]
    assert rows[VILLAGE_A]["last_seen"] is not None and not rows[VILLAGE_A]["silent"]
    assert rows[DISTRICT]["silent"] is False  # the hub itself
    order = [m for m in (VILLAGE_A, VILLAGE_B, "2101") if f'data-member="{m}"' in sorted_page]
    assert order == [VILLAGE_A, VILLAGE_B]  # filtered to 和平区: the city hub is not listed
    assert sorted_page.index(f'data-member="{VILLAGE_A}"') < sorted_page.index(
        f'data-member="{VILLAGE_B}"'
    )


async def test_dashboard_flags_a_member_whose_clock_is_off(scene: Scene) -> None:
    """Village B's clock runs two days behind: it still syncs, and the operator sees it."""
    base = scene.running.url
    behind = 2 * 86_400
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = scene.running.client(VILLAGE_B, http, clock=lambda: time.time() - behind)
        chain = Chain(VILLAGE_B)
        await client.push(wire(submit(chain)))
        await login(http, base, OPERATOR)
        async with http.get(f"{base}dashboard") as resp:
            assert resp.status == 200
            page = await resp.text()
        async with http.get(f"{base}dashboard/api/members") as resp:
            rows = {r["id"]: r for r in (await resp.json())["members"]}
    assert rows[VILLAGE_B]["clock_skewed"] and abs(rows[VILLAGE_B]["clock_skew"] - behind) <= 2
    assert not rows[VILLAGE_A]["clock_skewed"] and abs(rows[VILLAGE_A]["clock_skew"]) <= 2
    assert rows[DISTRICT]["clock_skew"] is None  # the hub never signs requests to itself
    assert "时钟偏差 1 个" in page
    row = page[page.index(f'data-member="{VILLAGE_B}"') :]
    row = row[: row.index("</tr>")]
    assert "慢 2.0 天" in row and "时钟偏差" in row
    row = page[page.index(f'data-member="{VILLAGE_A}"') :]
    assert "时钟偏差" not in row[: row.index("</tr>")]
    alert = page[page.index(f'data-skewed="{VILLAGE_B}"') :]
    assert "慢 2.0 天" in alert[: alert.index("</tr>")]
    assert f'data-skewed="{VILLAGE_A}"' not in page


async def test_member_list_reads_the_status_api(scene: Scene) -> None:
    rows = {r["id"]: r for r in await members_status(scene.running.url, OPERATOR, PASSWORD)}
    assert rows[VILLAGE_A]["silent_seconds"] is not None and rows[VILLAGE_B]["silent"]
    with pytest.raises(StatusFailed, match="登录"):
        await members_status(scene.running.url, OPERATOR, "wrong password")
    with pytest.raises(StatusFailed, match="403"):
        await members_status(scene.running.url, REVIEWER, PASSWORD)


@pytest.mark.browser
async def test_the_dashboard_in_a_browser(scene: Scene, chromium_path: str) -> None:
    """An operator logs in and finds the silent station, the red card and the 差评."""
    from playwright.async_api import async_playwright, expect

    base = scene.running.url
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=chromium_path, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
            context.set_default_timeout(10_000)
            page = await context.new_page()
            await page.goto(f"{base}dashboard")  # → the login page, then back here
            await page.fill('input[name="staff"]', OPERATOR)
            await page.fill('input[name="password"]', PASSWORD)
            await page.click('button:has-text("登录")')
            await expect(page.locator("h1")).to_have_text("运维监控")
            silent = page.locator(f'#members tr[data-member="{VILLAGE_B}"]')
            await expect(silent).to_contain_text("从未联系")
            await expect(silent.locator(".badge")).to_have_text("失联")
            red = page.locator('#cards tr[data-card="red"]')
            await expect(red).to_have_count(1)
            await expect(red).to_contain_text(scene.red)
            await expect(red.locator(".badge")).to_have_text("红牌")
            bad = page.locator(f'#ratings tr[data-bad-rating="{scene.rated}"]')
            await expect(bad).to_contain_text("差评 1 分")
            await expect(bad).to_contain_text("排队两个小时")
            assert await page.locator("#volume svg rect").count() >= 1
            # Sorting by 最近联系 and filtering by district stay on the page.
            await page.click('#members th a:has-text("最近联系")')
            await expect(page).to_have_url(f"{base}dashboard?sort=last_seen")
            # Longest silent first: the station never seen before the one seen today.
            order = await page.locator("#members tbody tr").evaluate_all(
                "rows => rows.map(r => r.dataset.member)"
            )
            assert order.index(VILLAGE_B) < order.index(VILLAGE_A)
            await page.select_option('select[name="district"]', DISTRICT)
            await page.click('#members button:has-text("筛选")')
            await expect(page.locator("#members tbody tr")).to_have_count(3)  # 和平区 and its two
        finally:
            await browser.close()
