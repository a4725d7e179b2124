"""补齐补正 at another window, in a real browser: a clerk at village A accepts an application;
the reviewer at the 和平区 workbench asks for 补正 (一次性告知); the applicant goes to village
B, whose clerk checks their ID, fetches the case from the hub and uploads the corrected
scan; the reviewer sees the case back, accepts, passes both steps and approves; village A,
the pickup window, hands the sealed result out.

Real processes (``tongban hub run`` on PostgreSQL, two ``tongban node run``) on 127.0.0.1;
Playwright drives chromium. The acceptance at village A goes through the station's JSON API
(the browser test of the acceptance form is test_browser_window.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Page, async_playwright, expect

from ops.launch import Member, eventually, free_port
from tests.integration.harness import Clerk, heping, id_number
from tests.integration.test_browser_window import ARGS, MATTER, STAFF, open_page, scan_png

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

VILLAGE_A, VILLAGE_B = "210102001001", "210102001002"  # illustrative, under 和平区
APPLICANT = id_number(31)


@dataclass
class Running:
    hub: Member
    a: Member
    b: Member
    passwords: dict[str, str]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with heping(tmp_path, STAFF, "acceptor", "reviewer") as (fed, hub):
        a, pa = await fed.add_station(VILLAGE_A, "示例村便民服务站", hub, port=free_port())
        b, pb = await fed.add_station(VILLAGE_B, "邻村便民服务站", hub, port=free_port())
        await hub.proc.start()
        await fed.publish()
        await fed.set_password(hub, STAFF[0], STAFF[2])
        await a.proc.start()
        await b.proc.start()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            for station, password in ((a, pa), (b, pb)):
                clerk = Clerk(station, password, http)
                await clerk.login()

                async def has_config(clerk: Clerk = clerk) -> bool:
                    return bool((await clerk.get("api/sync"))["config"]["serial"])

                await eventually(has_config)
        yield Running(hub, a, b, {VILLAGE_A: pa, VILLAGE_B: pb})


async def accept_at_a(running: Running) -> str:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        clerk = Clerk(running.a, running.passwords[VILLAGE_A], http)
        await clerk.login()
        form = aiohttp.FormData()
        application = {
            "matter": MATTER,
            "applicant": {"name": "张三", "id_number": APPLICANT},
            "materials": [{"id": "doctors"}, {"id": "layout"}, {"id": "rules", "mode": "pledged"}],
            "pledge": {"text": "本诊所已建立规章制度，如有不实愿承担法律责任。"},
        }
        form.add_field("application", json.dumps(application, ensure_ascii=False))
        form.add_field("file.form", scan_png(), filename="信息表.png", content_type="image/png")
        form.add_field("file.licence", b"%PDF-1.4\n%", filename="执照.pdf")
        receipt = await clerk.post("api/cases", form, expect=201)
        return str(receipt["number"])


async def login_clerk(page: Page, station: Member, password: str) -> None:
    await page.goto(station.url)
    await page.fill('input[name="username"]', "admin")
    await page.fill('input[name="password"]', password)
    await page.click('button:has-text("登录")')
    await expect(page.locator("h1")).to_contain_text("选择事项")


async def reviewer_opens(page: Page, running: Running, number: str, state: str) -> None:
    hub = running.hub.url

    async def shows() -> bool:
        await page.goto(f"{hub}cases/{number}")
        return await page.locator("h1 .badge").inner_text() == state

    await eventually(shows, within=20, every=0.5)


async def test_correction_supplied_at_another_window_in_the_browser(
    running: Running, chromium_path: str
) -> None:
    number = await accept_at_a(running)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path, args=ARGS)
        try:
            reviewer, clerk_b, clerk_a = [await open_page(browser) for _ in range(3)]
            # The reviewer asks for 补正 on the workbench.
            await reviewer.goto(running.hub.url)
            await reviewer.fill('input[name="staff"]', STAFF[0])
            await reviewer.fill('input[name="password"]', STAFF[2])
            await reviewer.click('button:has-text("登录")')
            await reviewer_opens(reviewer, running, number, "收件")
            await reviewer.select_option("#act-correct select[name=item_target]", "m:form")
            await reviewer.fill("#act-correct input[name=item_problem]", "信息表缺少法定代表人签字")
            await reviewer.click('#act-correct button:has-text("发出补正通知")')
            await expect(reviewer.locator("h1 .badge")).to_have_text("补正")

            # The applicant goes to village B: ID checked, case fetched from the hub.
            await login_clerk(clerk_b, running.b, running.passwords[VILLAGE_B])
            await clerk_b.click('nav a:has-text("补齐补正")')
            await clerk_b.fill('input[name="number"]', number)
            await clerk_b.fill('input[name="id_number"]', "210102199001019999")
            await clerk_b.click('button:has-text("查找办件")')
            await expect(clerk_b.locator(".notice-error")).to_contain_text("核对")

            async def found() -> bool:
                await clerk_b.fill('input[name="number"]', number)
                await clerk_b.fill('input[name="id_number"]', APPLICANT)
                await clerk_b.click('button:has-text("查找办件")')
                return await clerk_b.locator("#items").count() == 1

            await eventually(found, within=15, every=0.5)  # the hub holds the 补正 notice
            await expect(clerk_b.locator("#items")).to_contain_text("信息表缺少法定代表人签字")
            body = await clerk_b.inner_text("body")
            assert APPLICANT not in body and "2101**********" in body
            await clerk_b.set_input_files(
                'input[name="file.form"]',
                files=[
                    {"name": "信息表-已签字.png", "mimeType": "image/png", "buffer": scan_png(500)}
                ],
            )
            await clerk_b.fill('textarea[name="note"]', "已补签字")
            await clerk_b.click('button:has-text("提交补正")')
            await expect(clerk_b.locator(".notice-ok")).to_contain_text("补正材料已提交")
            await expect(clerk_b.locator("h1 .badge")).to_have_text("收件")

            # Back at the workbench: the case is 收件 again with the new scan; approve it.
            await reviewer_opens(reviewer, running, number, "收件")
            await expect(reviewer.locator("body")).to_contain_text("提交补正材料")
            await reviewer.fill("#act-accept textarea[name=opinion]", "补正后材料齐全。")
            await reviewer.click('#act-accept button:has-text("受理")')
            await expect(reviewer.locator(".notice-ok")).to_contain_text("已受理")
            for opinion in ("核查合格。", "同意备案。"):
                await reviewer.fill("#act-step textarea[name=opinion]", opinion)
                await reviewer.click('#act-step button:has-text("提交审查意见")')
                await expect(reviewer.locator(".notice-ok")).to_contain_text("审查意见已提交")
            await reviewer.check('#act-decide input[name="result_code"][value="0"]')
            await reviewer.fill("#act-decide input[name=licence_no]", "和卫诊备〔2026〕0031号")
            await reviewer.click('#act-decide button:has-text("办结")')
            await expect(reviewer.locator("h1 .badge")).to_have_text("办结")

            # Village A, the pickup window, hands the sealed result out.
            await login_clerk(clerk_a, running.a, running.passwords[VILLAGE_A])
            await clerk_a.goto(f"{running.a.url}cases/{number}")
            await expect(clerk_a.locator("#seal")).to_contain_text("电子签章有效", timeout=15_000)
            await clerk_a.fill('#deliver input[name="collector"]', "张三")
            await clerk_a.click('#deliver button:has-text("登记出件")')
            await expect(clerk_a.locator("h1 .badge")).to_have_text("已送达")
            timeline = await clerk_a.inner_text("body")
            assert "提交补正材料" in timeline and "要求补正" in timeline
        finally:
            await browser.close()
