"""The applicant's pages in a real browser on a phone-sized screen: a matter's 办事指南,
then 进度查询 with the code from the receipt showing the 补正 items; a wrong code is
refused and the 6th wrong try within a minute is rate-limited.

The station runs in process (its app on 127.0.0.1) with the hub double of the node tests
serving the authority's 补正 notice; Playwright drives Debian's chromium.
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import async_playwright, expect

from node.app import build_app
from node.metrics import NodeMetrics
from node.services.accept import (
    Application,
    MaterialInput,
    Person,
    UploadedFile,
    accept_application,
)
from node.services.auth import Auth
from protocol.http.server import RUNNER_KWARGS
from protocol.http.web.track import MAX_WRONG
from tests.node.conftest import Synced, clock, station, synced  # noqa: F401 (fixtures)
from tests.node.helpers import MONDAY, HubSigner, resident_id
from tests.node.test_sync import sync
from tests.protocol.fed import ANNUAL, FOOD, VILLAGE

pytestmark = [pytest.mark.browser]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PROBLEM = "申请表缺少本人签名"


async def test_guide_and_track_on_a_phone(synced: Synced, chromium_path: str) -> None:  # noqa: F811
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    receipt = await accept_application(
        ctx,
        Application(
            matter=ANNUAL,
            applicant=Person("张三", resident_id()),
            materials=(
                MaterialInput(
                    "form", "provided", (UploadedFile("f.pdf", "application/pdf", b"%PDF"),)
                ),
            ),
            phone="13812345678",
            pickup=VILLAGE,
        ),
    )
    number, code = receipt["number"], receipt["query_code"]
    await sync(engine)
    hub.serve(
        HubSigner().sign(
            "case.correction_requested",
            number,
            {"by": "sfj-shouli", "items": [{"material": "form", "problem": PROBLEM}]},
            [VILLAGE],
            MONDAY,
        )
    )
    await sync(engine)

    server = TestServer(build_app(ctx, Auth(ctx.store), NodeMetrics()), host="127.0.0.1")
    await server.start_server(**RUNNER_KWARGS)
    base = str(server.make_url("/")).rstrip("/")
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path, args=ARGS)
            try:
                context = await browser.new_context(
                    viewport={"width": 390, "height": 844},
                    locale="zh-CN",
                    timezone_id="Asia/Shanghai",
                    is_mobile=True,
                )
                context.set_default_timeout(10_000)
                page = await context.new_page()

                await page.goto(f"{base}/guide")
                await page.get_by_role("link", name=f"事项 {FOOD}").click()
                await expect(page.locator("#matter-name")).to_have_text(f"事项 {FOOD}")
                await expect(page.locator(".mark-deferrable")).to_be_visible()
                await expect(page.locator(".mark-pledgeable")).to_be_visible()
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390  # no sideways scrolling on a phone

                await page.get_by_role("link", name="长辈模式（大字）").click()
                await expect(page.locator("body")).to_have_class("public large-text")

                await page.goto(f"{base}/track")
                await page.get_by_label("办件编号").fill(number)
                await page.get_by_label("查询码").fill(code)
                await page.get_by_role("button", name="查询").click()
                await expect(page.locator("#track-items")).to_contain_text(PROBLEM)
                await expect(page.locator("#track-result")).not_to_contain_text(resident_id())

                for attempt in range(MAX_WRONG + 1):
                    await page.goto(f"{base}/track")
                    await page.get_by_label("办件编号").fill(number)
                    await page.get_by_label("查询码").fill(
                        "222222" if code != "222222" else "333333"
                    )
                    await page.get_by_role("button", name="查询").click()
                    expected = "查询码不正确" if attempt < MAX_WRONG else "一分钟后再试"
                    await expect(page.locator("#track-error")).to_contain_text(expected)
                    await expect(page.locator("#track-result")).to_have_count(0)
            finally:
                await browser.close()
    finally:
        await server.close()
