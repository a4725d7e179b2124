"""The demo as a newcomer meets it (issue 7): a small 沈阳都市圈 demo built and started by
``ops.demo`` (the code behind ``make demo``), then

* a small ``tongban demo scenario`` day against it, through the public HTTP APIs, whose
  summary accounts for every application (the numbers add up, and agree with what the
  reviewers and pickup windows did), with 即办 at the village window (its seal verified by
  the window), 容缺补齐 and 告知承诺核查;
* in a real browser, a clerk at a 抚顺 village window accepts a 沈阳 city matter open for
  都市圈通办; the scenario's reviewer at 沈阳 decides it; the sealed result shows at that
  window, and its seal verifies against the two cities' signed configs (protocol/seal.py),
  as any window holding them could check offline.

One process-level test (six members on SQLite and two uplinks) keeps the suite lean.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from ops.demo import Demo, Topology, load
from ops.launch import EXAMPLES, eventually, port_is_free
from ops.scenario import Desk, people, run_scenario
from protocol.config import Federation, accept_config, parse_signed
from protocol.encoding import loads_strict
from protocol.keys import PublicKey
from protocol.seal import parse_result_text, verify_result
from tests.conftest import need_service
from tests.integration.harness import id_number
from tests.integration.test_browser_window import ARGS, SHOTS_ENV, open_page, scan_png

pytestmark = pytest.mark.browser

FS_VILLAGE = "210402001001"  # illustrative village code under 新抚区 (抚顺)
SMALL = EXAMPLES / "demo-small.yaml"
RIDE = "网络预约出租汽车驾驶员从业资格证核发"  # SY-JTJ-WY-01: 2101:jtj, scope metro, 3 steps


def free_base() -> int:
    """A base port where every port of the small topology is free."""
    offsets = Topology.load(SMALL).ports(0)
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(20_000, 50_000, 10)
        if all(port_is_free(base + offset) for offset in offsets):
            return base
    raise RuntimeError("no free port range")


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    root = tmp_path / "demo-data"
    built, logins = load(root, free_base(), SMALL)
    assert logins is None
    try:
        logins = await built.build()
        await built.start(logins)
        yield built
    finally:
        await built.stop(built.members())


def trusted(demo: Demo, city: str) -> Federation:
    """A city's current signed config, checked against its root key, as a Federation."""
    fed = demo.feds[city]
    signed = parse_signed(loads_strict((fed.fed_dir / "current.json").read_bytes()))
    anchor = PublicKey.from_text(fed.root_key)
    return Federation(accept_config(None, signed, [anchor]).config)


async def test_demo_scenario_and_metro_result_in_the_browser(demo: Demo, tmp_path: Path) -> None:
    # -- a small day: every application accounted for ------------------------------------
    summary = await run_scenario(demo.root, cases=24, seed=7)
    assert summary.submitted == 24 and not summary.unaccounted
    parts = (summary.at_window, summary.in_custody, summary.decided)
    assert sum(parts) + summary.delivered + summary.closed == summary.submitted
    assert summary.adds_up()
    # What the windows see agrees with what the reviewers and pickup windows did.
    reviewed = summary.reviewer
    assert summary.decided + summary.delivered == reviewed["approved"] + reviewed["denied"]
    assert summary.closed == reviewed["not_accepted"]
    assert summary.at_window == 0  # the offline village reported everything once back
    acts = {"市区联办", "都市圈通办", "断网受理", "补正", "补齐补正", "即办", "告知承诺核查"}
    assert acts <= set(summary.tags), summary.render()
    # 容缺: every case reviewed up to its deferred materials had them supplied and was decided.
    assert summary.reviewer["waiting_deferred"] == 0, summary.render()
    assert summary.tags["好评"] + summary.tags["差评"] > 0
    assert summary.mean_to_result is not None and summary.mean_to_result >= 0

    # -- 都市圈通办 in the browser, at a 抚顺 village window ---------------------------------
    chromium = os.environ.get("TONGBAN_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        need_service("chromium", "apt-get install chromium")
    assert chromium is not None
    _, windows, desks = people(demo.root)
    window = windows[FS_VILLAGE]
    shots = Path(os.environ.get(SHOTS_ENV) or tmp_path / "screenshots")
    os.makedirs(shots, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            page = await open_page(browser)
            await page.goto(window.url)
            await page.fill('input[name="username"]', "admin")
            await page.fill('input[name="password"]', window.password)
            await page.click('button:has-text("登录")')
            await expect(page.locator("h1")).to_contain_text("选择事项")
            await page.fill('input[name="q"]', "网络预约")
            await page.click(f'#matter-rows a:has-text("{RIDE}")')
            await expect(page.locator("h1")).to_contain_text(RIDE)
            await page.fill('input[name="applicant_name"]', "周司机")
            await page.fill('input[name="applicant_id_number"]', id_number(41, region="210402"))
            await page.set_input_files(
                'input[name="file.form"]',
                files=[{"name": "申请表.png", "mimeType": "image/png", "buffer": scan_png()}],
            )
            await page.check('input[name="material.nocrime"][value="pledged"]')
            await page.fill(
                'textarea[name="pledge_text"]', "本人承诺无犯罪记录，如有不实愿承担法律责任。"
            )
            await page.click('button:has-text("收件并生成受理回执")')
            await expect(page.locator("h1.doc-title")).to_have_text("受理回执")
            number = (await page.locator("#case-number").inner_text()).strip()
            assert number.startswith(f"{FS_VILLAGE}-")
            assert "沈阳市交通运输局" in await page.inner_text("body")

            # The scenario's reviewer at 沈阳 decides it, through the workbench API.
            desk: Desk = desks["2101:jtj"]
            await desk.login()
            try:
                await until_queued(desk, number)
                await desk.act(number, "accept", {"opinion": "材料齐全，予以受理"})
                for step in range(3):
                    await desk.act(
                        number, "step", {"step": step, "outcome": "pass", "opinion": "同意"}
                    )
                await desk.act(
                    number,
                    "decide",
                    {"result_code": 0, "opinion": "准予", "licence_no": "SYWY-0007"},
                )
            finally:
                await desk.http.close()
                await window.http.close()

            await page.goto(f"{window.url}cases/{number}")
            await expect(page.locator("#seal")).to_contain_text("电子签章有效", timeout=60_000)
            await expect(page.locator("h1 .badge")).to_have_text("办结")
            assert "SYWY-0007" in await page.inner_text("body")
            await page.screenshot(path=str(shots / "window-metro-result.png"), full_page=True)
            # The printable result (its QR code) verifies offline with the two cities' configs.
            answer = await (await page.request.get(f"{window.url}api/cases/{number}")).json()
        finally:
            await browser.close()
    doc = parse_result_text(answer["result"]["text"])
    fushun, shenyang = trusted(demo, "2104"), trusted(demo, "2101")
    check = verify_result(doc, Federation(fushun.home, {"2101": shenyang.home}))
    assert check.genuine and check.authority == "2101:jtj", check
    assert doc["case"] == number and doc["licence_no"] == "SYWY-0007"
    tampered = {**doc, "licence_no": "SYWY-9999"}
    assert not verify_result(tampered, Federation(fushun.home, {"2101": shenyang.home})).genuine


async def until_queued(desk: Desk, number: str) -> None:
    async def queued() -> bool:
        return number in {c["number"] for c in (await desk.get("api/queue"))["cases"]}

    await eventually(queued, within=60)
