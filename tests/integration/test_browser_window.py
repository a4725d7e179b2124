"""The whole slice in a real browser: a clerk at a village window accepts an application with
an upload and prints the receipt; a reviewer at the district hub accepts it, passes both
review steps and approves it with a licence number; the clerk sees the sealed result and
records 出件.

A real district hub (PostgreSQL) and a real village node run as ``tongban … run`` processes
on 127.0.0.1 (:mod:`ops.launch`); Playwright drives Debian's chromium. ``make screenshots``
runs it to refresh the pictures in ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from ops.launch import Member, eventually, free_port
from tests.integration.harness import Clerk, heping, id_number

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

MATTER = "HP-WJJ-ZS-02"  # 诊所备案: 和平区卫生健康局, steps 受理审查 (acceptor) → 审核 (reviewer)
STAFF = ("hp-wjj-02", "李审批", "审批口令-2026-ok")
VILLAGE = "210102001001"  # illustrative village code under 和平区 (210102)
# Screenshots go to the test's temp folder; `make screenshots` points this at docs/screenshots
# to refresh the ones the docs show (a test run must not rewrite tracked files).
SHOTS_ENV = "TONGBAN_SCREENSHOTS"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def scan_png(width: int = 480, height: int = 340) -> bytes:
    """A small grey-on-white PNG that looks like a scanned form (no imaging library)."""
    rows = []
    for y in range(height):
        line = bytearray()
        for x in range(width):
            ink = (
                (y % 28 in (0, 1) and 40 <= x < width - 40 and 40 <= y < height - 30)
                or (14 <= y < 34 and 150 <= x < 330)
                or x in (20, width - 21)
                or y in (10, height - 11)
            )
            line += bytes((90, 90, 96) if ink else (250, 250, 247))
        rows.append(b"\x00" + bytes(line))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


@dataclass
class Running:
    hub: Member
    station: Member
    password: str


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """沈阳 with the 和平区 hub (PostgreSQL) and one village station, both running."""
    async with heping(tmp_path, STAFF, "acceptor", "reviewer") as (fed, hub):
        station, password = await fed.add_station(
            VILLAGE, "示例村便民服务站", hub, port=free_port()
        )
        await hub.proc.start()
        await fed.publish()
        await fed.set_password(hub, STAFF[0], STAFF[2])
        await station.proc.start()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            clerk = Clerk(station, password, http)
            await clerk.login()

            async def has_config() -> bool:
                return bool((await clerk.get("api/sync"))["config"]["serial"])

            await eventually(has_config)
        yield Running(hub, station, password)


async def open_page(browser: Browser) -> Page:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(10_000)
    return await context.new_page()


async def clerk_accepts(page: Page, running: Running, shots: Path) -> str:
    station = running.station.url
    await page.goto(station)  # → the login page
    await page.fill('input[name="username"]', "admin")
    await page.fill('input[name="password"]', running.password)
    await page.click('button:has-text("登录")')
    await expect(page.locator("h1")).to_contain_text("选择事项")
    await expect(page.locator(".syncbar")).to_contain_text("配置版本")

    await page.fill('input[name="q"]', "诊所")  # the live filter hides other matters
    await expect(page.locator("#matter-rows tr:visible")).to_have_count(1)
    await page.click('#matter-rows a:has-text("诊所备案")')
    await expect(page.locator("h1")).to_contain_text("诊所备案")

    await page.fill('input[name="applicant_name"]', "张三")
    await page.fill('input[name="applicant_id_number"]', id_number(7))
    await page.fill('input[name="phone"]', "13812345678")
    await page.set_input_files(
        'input[name="file.form"]',
        files=[{"name": "诊所备案信息表.png", "mimeType": "image/png", "buffer": scan_png()}],
    )
    await page.set_input_files(
        'input[name="file.licence"]',
        files=[{"name": "营业执照.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n%"}],
    )
    await expect(page.locator("[data-pledge]")).to_be_hidden()
    await page.check('input[name="material.rules"][value="pledged"]')
    await expect(page.locator("[data-pledge]")).to_be_visible()
    await page.fill(
        'textarea[name="pledge_text"]', "本诊所已建立规章制度，如有不实愿承担法律责任。"
    )
    await page.click('button:has-text("收件并生成受理回执")')

    await expect(page.locator("h1.doc-title")).to_have_text("受理回执")
    number = (await page.locator("#case-number").inner_text()).strip()
    assert number.startswith(f"{VILLAGE}-")
    assert await page.locator(".qr svg").count() == 1
    await expect(page.locator("button[data-print]")).to_have_text("打印回执")
    body = await page.inner_text("body")
    assert "诊所备案" in body and "2101**********" in body and id_number(7) not in body
    assert "13812345678" not in body
    await page.screenshot(path=str(shots / "window-receipt.png"), full_page=True)
    return number


async def reviewer_approves(page: Page, running: Running, number: str, shots: Path) -> None:
    hub = running.hub.url
    await page.goto(hub)
    await page.fill('input[name="staff"]', STAFF[0])
    await page.fill('input[name="password"]', STAFF[2])
    await page.click('button:has-text("登录")')
    await expect(page.locator("h1")).to_contain_text("待办")

    async def listed() -> bool:
        await page.goto(hub)
        return await page.locator(f'a:has-text("{number}")').count() == 1

    await eventually(listed, within=15, every=0.5)
    await page.click(f'a:has-text("{number}")')
    await expect(page.locator("#case-number")).to_have_text(number)
    await expect(page.locator(".viewer img")).to_have_count(1)  # the scan, inline

    await page.fill("#act-accept textarea[name=opinion]", "材料齐全，予以受理。")
    await page.click('#act-accept button:has-text("受理")')
    await expect(page.locator(".notice-ok")).to_contain_text("已受理")
    for opinion in ("现场核查合格，同意。", "审核通过，同意备案。"):
        await page.fill("#act-step textarea[name=opinion]", opinion)
        await page.click('#act-step button:has-text("提交审查意见")')
        await expect(page.locator(".notice-ok")).to_contain_text("审查意见已提交")
    await page.check('#act-decide input[name="result_code"][value="0"]')
    await page.fill("#act-decide input[name=licence_no]", "和卫诊备〔2026〕0012号")
    await page.fill("#act-decide input[name=valid_until]", "2031-12-31")
    await page.fill("#act-decide textarea[name=opinion]", "准予备案。")
    await page.screenshot(path=str(shots / "workbench-case.png"), full_page=True)
    await page.click('#act-decide button:has-text("办结")')
    await expect(page.locator(".notice-ok")).to_contain_text("已办结")
    await expect(page.locator("h1 .badge")).to_have_text("办结")


async def clerk_hands_out(page: Page, running: Running, number: str, shots: Path) -> None:
    await page.goto(f"{running.station.url}cases/{number}")
    # The node long-polls the hub; the page reloads itself when the case changes.
    await expect(page.locator("#seal")).to_contain_text("电子签章有效", timeout=15_000)
    await expect(page.locator("h1 .badge")).to_have_text("办结")
    assert "和卫诊备〔2026〕0012号" in await page.inner_text("body")
    await page.fill('#deliver input[name="collector"]', "张三")
    await page.select_option('#deliver select[name="method"]', "窗口领取")
    await page.click('#deliver button:has-text("登记出件")')
    await expect(page.locator(".notice-ok")).to_contain_text("出件已登记")
    await expect(page.locator("h1 .badge")).to_have_text("已送达")
    await expect(page.locator("#delivered")).to_contain_text("出件：张三 领取（窗口领取）")
    await page.screenshot(path=str(shots / "window-case.png"), full_page=True)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get(SHOTS_ENV) or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_accept_review_approve_and_hand_out_in_the_browser(
    running: Running, chromium_path: str, shots: Path
) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path, args=ARGS)
        try:
            clerk, reviewer = await open_page(browser), await open_page(browser)
            number = await clerk_accepts(clerk, running, shots)
            await reviewer_approves(reviewer, running, number, shots)
            await clerk_hands_out(clerk, running, number, shots)
        finally:
            await browser.close()
