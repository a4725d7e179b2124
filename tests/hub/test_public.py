"""The hub's public pages: 办事指南 and 进度查询 of cases the hub holds (the query code's
Argon2id hash travels in the signed ``case.submitted``), rate-limited across workers, masked."""

from __future__ import annotations

import aiohttp

from protocol.http.web.track import MAX_WRONG, track_body
from tests.hub import test_review
from tests.hub.conftest import RunningHub, StartHub
from tests.hub.fed import (
    DISTRICT,
    HP_MZJ,
    RELIEF,
    VILLAGE_A,
    Chain,
    applicant,
    submit,
    wire,
)

district, browser = test_review.district, test_review.browser
CODE = "ABC234"


async def tracked_case(hub: RunningHub, session: aiohttp.ClientSession) -> str:
    """A case pushed by village A whose submission carries the query code's hash."""
    chain = Chain(VILLAGE_A)
    draft = submit(chain)
    assert draft.case is not None
    chain = Chain(VILLAGE_A)
    body = {**draft.body, "track": track_body(CODE)}
    event = chain.next("case.submitted", case=draft.case, to=(HP_MZJ,), body=body)
    await hub.client(VILLAGE_A, session).push(wire(event))
    return draft.case


async def test_the_hub_guide_lists_and_shows_matters(
    district: RunningHub, browser: aiohttp.ClientSession
) -> None:
    base = district.url.rstrip("/")
    async with browser.get(base + "/guide") as resp:
        html = await resp.text()
    assert resp.status == 200 and f'href="/guide/{RELIEF}"' in html and "办事指南" in html
    async with browser.get(base + f"/guide/{RELIEF}") as resp:
        html = await resp.text()
    assert resp.status == 200 and "设定依据" in html and "申请材料" in html
    async with browser.get(base + "/large?on=1&next=/guide") as resp:
        assert "large-text" in await resp.text()


async def test_track_a_case_the_hub_holds(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    number = await tracked_case(district, session)
    base = district.url.rstrip("/")
    bench = test_review.Workbench(district, browser)
    await bench.login()
    items = [{"problem": "身份证复印件不清晰", "material": "idcard"}]
    status, _ = await bench.call(
        "POST", f"/api/cases/{number}/request-correction", {"items": items}
    )
    assert status == 200

    async with aiohttp.ClientSession() as public:
        async with public.post(base + "/track", data={"number": number, "code": CODE}) as resp:
            html = await resp.text()
        assert resp.status == 200 and 'id="track-items"' in html and "身份证复印件不清晰" in html
        assert "张*" in html and applicant()["name"] not in html  # masked
        async with public.post(base + "/track", data={"number": number, "code": ""}) as resp:
            assert resp.status == 404 and 'id="track-result"' not in await resp.text()
        for _ in range(MAX_WRONG - 1):
            async with public.post(
                base + "/track", data={"number": number, "code": "ZZZZZZ"}
            ) as resp:
                assert resp.status == 404
        async with public.post(base + "/track", data={"qr": f"TB:{number}:{CODE}"}) as resp:
            assert resp.status == 429 and "一分钟后再试" in await resp.text()


async def test_wrong_codes_count_across_workers_of_one_database(
    start_hub: StartHub, session: aiohttp.ClientSession, db_url: str | None
) -> None:
    first = await start_hub(DISTRICT, db=db_url, name="w1")
    second = await start_hub(DISTRICT, db=db_url or first.settings.db_url, name="w2")
    number = await tracked_case(first, session)
    async with aiohttp.ClientSession() as public:
        for i in range(MAX_WRONG):  # alternate between the two workers
            url = (first if i % 2 else second).url.rstrip("/") + "/track"
            async with public.post(url, data={"number": number, "code": "ZZZZZZ"}) as resp:
                assert resp.status == 404
        for worker in (first, second):
            url = worker.url.rstrip("/") + "/track"
            async with public.post(url, data={"number": number, "code": CODE}) as resp:
                assert resp.status == 429
