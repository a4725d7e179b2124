"""The station's public pages: 办事指南, 进度查询 by number and query code (rate-limited),
the 长辈模式 switch, and the notifications the station keeps in its outbox."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from node.app import build_app
from node.metrics import NodeMetrics
from node.services import query
from node.services.accept import Application, MaterialInput, Person, accept_application
from node.services.auth import Auth
from node.services.context import NodeContext
from node.services.folding import case_record, refold_case
from node.services.notify import DEFAULTS, load_templates
from node.storage import CaseRecord, StoredEvent
from node.storage.outbox import OutboxStore
from node.storage.track import WrongCodeStore
from protocol.case import CaseFolder, submitted_to
from protocol.event import Event
from protocol.http.server import RUNNER_KWARGS
from protocol.http.web.track import WINDOW, attempt_keys, blocked
from tests.protocol.fed import (
    ANNUAL,
    DIBAO,
    FOOD,
    HP_MZJ,
    NEIGHBOUR,
    SFJ,
    VILLAGE,
    key,
    submission,
)

from .conftest import Initialised, Synced
from .helpers import MONDAY, HubSigner, resident_id
from .test_pages import page_login, submit
from .test_sync import sync

CODE = re.compile(r'id="query-code">([0-9A-Z]{6})<')
PHONE = "13812345678"


async def accept_one(
    client: TestClient[web.Request, web.Application], csrf: str
) -> tuple[str, str]:
    """收件 at the window; returns (case number, query code from the receipt)."""
    location = (await submit(client, csrf)).headers["Location"]
    number = location.split("/")[2]
    html = await (await client.get(location)).text()
    found = CODE.search(html)
    assert found is not None, html[:2000]
    assert f"TB:{number}:{found.group(1)}" in html  # the QR's text (in the SVG title)
    return number, found.group(1)


async def test_the_guide_lists_matters_and_marks_deferrable_and_pledgeable(
    api: TestClient[web.Request, web.Application],
) -> None:
    html = await (await api.get("/guide")).text()
    assert "办事指南" in html and f'href="/guide/{FOOD}"' in html and f"事项 {FOOD}" in html
    assert 'name="viewport"' in html and '<script src="http' not in html
    html = await (await api.get("/guide?q=SCJ")).text()
    assert f'href="/guide/{FOOD}"' in html and f'href="/guide/{ANNUAL}"' not in html
    html = await (await api.get(f"/guide/{FOOD}")).text()
    for word in (
        "设定依据",
        "办理流程",
        "申请材料",
        "承诺期限",
        "法定期限",
        "收费",
        "可在哪里申请",
    ):
        assert word in html
    assert "健康证明" in html and "mark-deferrable" in html and "mark-pledgeable" in html
    assert (await api.get("/guide/NO-SUCH")).status == 404


async def test_track_needs_number_and_code_and_masks_personal_data(
    api: TestClient[web.Request, web.Application], station: Initialised
) -> None:
    csrf = await page_login(api, station.password)
    number, code = await accept_one(api, csrf)
    resp = await api.post("/track", data={"number": number, "code": code.lower()})
    html = await resp.text()
    assert resp.status == 200 and 'id="track-result"' in html and "等待审批部门受理" in html
    assert resident_id() not in html and "2101**********" in html and "张*" in html
    resp = await api.post("/track", data={"qr": f"TB:{number}:{code}"})
    assert resp.status == 200 and 'id="track-result"' in await resp.text()
    # the number alone finds nothing, and says no more than a wrong number would
    resp = await api.post("/track", data={"number": number, "code": ""})
    assert resp.status == 404 and 'id="track-result"' not in await resp.text()


async def test_the_sixth_wrong_code_in_a_minute_is_refused(
    api: TestClient[web.Request, web.Application], station: Initialised
) -> None:
    csrf = await page_login(api, station.password)
    number, code = await accept_one(api, csrf)
    wrong = "222222" if code != "222222" else "333333"
    for _ in range(query.MAX_WRONG):
        resp = await api.post("/track", data={"number": number, "code": wrong})
        assert resp.status == 404 and "查询码不正确" in await resp.text()
    resp = await api.post("/track", data={"number": number, "code": code})
    assert resp.status == 429 and "一分钟后再试" in await resp.text()


async def test_wrong_codes_are_counted_per_client_and_per_case_in_the_database(
    ctx: NodeContext,
) -> None:
    now = [1000.0]
    counter = WrongCodeStore(ctx.store.db, lambda: now[0])
    for i in range(query.MAX_WRONG):
        await counter.add(attempt_keys(f"client-{i}", "N1"), WINDOW)  # five clients, one case
    assert await blocked(counter, "client-9", "N1")
    assert not await blocked(counter, "client-9", "N2")
    # Another counter over the same file (a restarted station) sees the same tries.
    assert await blocked(WrongCodeStore(ctx.store.db, lambda: now[0]), "client-9", "N1")
    now[0] += WINDOW + 1
    assert not await blocked(counter, "client-9", "N1")


async def test_large_text_mode_is_a_cookie_switch(
    api: TestClient[web.Request, web.Application],
) -> None:
    resp = await api.get("/large?on=1&next=/guide", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/guide"
    html = await (await api.get("/guide")).text()
    assert 'class="public large-text"' in html and "标准字体" in html
    await api.get("/large?on=0&next=//evil.example/")
    html = await (await api.get("/guide")).text()
    assert "large-text" not in html


async def test_the_receipt_has_the_large_text_switch(
    api: TestClient[web.Request, web.Application], station: Initialised
) -> None:
    csrf = await page_login(api, station.password)
    location = (await submit(api, csrf)).headers["Location"]
    html = await (await api.get(location)).text()
    assert 'id="large-toggle"' in html


async def test_a_notification_for_each_event_and_no_full_numbers(
    synced: Synced,
    station: Initialised,
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        build_app(ctx, Auth(ctx.store), NodeMetrics()), server_kwargs=dict(RUNNER_KWARGS)
    )
    csrf = await page_login(client, station.password)
    first, code = await accept_one(client, csrf)
    second, _ = await accept_one(client, csrf)
    await sync(engine)
    signer = HubSigner()
    hub.serve(
        signer.sign(
            "case.correction_requested",
            first,
            {"by": "sfj-shouli", "items": [{"material": "form", "problem": "缺少本人签名"}]},
            [VILLAGE],
            MONDAY,
        )
    )
    for event in signer.accept_and_approve(second, VILLAGE, MONDAY):
        hub.serve(event)
    await sync(engine)
    await sync(engine)  # a replayed page adds nothing

    rows = await OutboxStore(ctx.store.db).rows()
    kinds = sorted(r.kind for r in rows)
    assert kinds == ["accepted", "correction", "decided", "pickup"]
    for row in rows:
        assert row.destination == PHONE
        assert resident_id() not in row.text and PHONE not in row.text
        assert "【通办】" in row.text
    correction = next(r for r in rows if r.kind == "correction")
    assert "缺少本人签名" in correction.text and correction.case_no == first

    # the applicant sees the 补正 items
    html = await (await client.post("/track", data={"number": first, "code": code})).text()
    assert 'id="track-items"' in html and "缺少本人签名" in html

    page = await (await client.get("/notifications")).text()
    assert "138****5678" in page and PHONE not in page and "待领取" in page
    resp = await client.get("/notifications.csv")
    body = (await resp.read()).decode("utf-8-sig")
    assert resp.status == 200 and "138****5678" in body and PHONE not in body
    client.session.cookie_jar.clear()
    resp = await client.get("/notifications", allow_redirects=False)
    assert resp.status == 303  # clerks only


def test_operator_templates_override_the_defaults(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    (tmp_path / "notify_templates.json").write_text(
        '{"accepted": "已受理 {number}", "nonsense": 1}', "utf-8"
    )
    templates = load_templates(tmp_path)
    assert (
        templates["accepted"] == "已受理 {number}" and templates["decided"] == DEFAULTS["decided"]
    )
    (tmp_path / "notify_templates.json").write_text("not json", "utf-8")
    assert load_templates(tmp_path) == DEFAULTS


async def test_a_decision_made_at_the_window_itself_notifies(ctx: NodeContext) -> None:
    """即办: the window accepts and decides a delegated matter itself; the notifications
    come from the fold, as they do for a decision that came down the feed."""
    receipt = await accept_application(
        ctx,
        Application(
            matter=DIBAO,
            applicant=Person("张三", resident_id()),
            materials=(MaterialInput("form", "provided"),),
            phone=PHONE,
        ),
    )
    number = receipt["number"]
    folder = CaseFolder(ctx.configs.require())
    acts = [
        ("case.accepted", {"by": "v-clerk"}),
        ("case.decided", {"by": "v-clerk", "result_code": 0, "result": {"证明": "低保待遇"}}),
    ]
    for kind, body in acts:

        def make(
            held: list[StoredEvent], seq: int, prev: str | None, kind: str = kind, body: Any = body
        ) -> tuple[Event, CaseRecord]:
            case, _ = refold_case(folder, held)
            event = Event.create(
                ctx.key, author=VILLAGE, seq=seq, prev=prev, ts=ctx.now().isoformat(),
                type=kind, case=number, to=[HP_MZJ], body=body,
            )  # fmt: skip
            return event, case_record(folder.apply(case, event), ctx.configs.require())

        await ctx.store.append_to_case(number, make, ctx.stamp())
    rows = await OutboxStore(ctx.store.db).rows()
    assert sorted(r.kind for r in rows) == ["accepted", "decided", "pickup"]
    assert all(r.destination == PHONE and r.case_no == number for r in rows)


async def test_a_pickup_window_elsewhere_lists_the_waiting_result(synced: Synced) -> None:
    """The result of a case accepted at another window, collected here: 待领取 goes into this
    station's outbox (no phone number here); 受理 and 办结 are the accepting window's."""
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    number = f"{NEIGHBOUR}-20261123-0001"
    submitted = Event.create(
        key(NEIGHBOUR), author=NEIGHBOUR, seq=1, prev=None, ts=MONDAY.isoformat(),
        type="case.submitted", case=number, to=submitted_to(SFJ, NEIGHBOUR, VILLAGE),
        body=submission(ANNUAL, NEIGHBOUR, pickup=VILLAGE),
    )  # fmt: skip
    hub.serve(submitted)
    for event in HubSigner().accept_and_approve(number, VILLAGE, MONDAY):
        hub.serve(event)
    await sync(engine)
    rows = await OutboxStore(ctx.store.db).rows()
    assert [(r.kind, r.case_no, r.destination) for r in rows] == [("pickup", number, None)]


async def test_track_tells_of_two_receipts_only(
    synced: Synced,
    station: Initialised,
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
) -> None:
    """进度查询 at the window: 已送达审批部门 (the authority's receipt of the application) and
    办结结果已送达出件窗口 (the pickup window's, here this station's own, of the decision);
    the station's receipt of the 受理 is bookkeeping and not shown."""
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        build_app(ctx, Auth(ctx.store), NodeMetrics()), server_kwargs=dict(RUNNER_KWARGS)
    )
    csrf = await page_login(client, station.password)
    number, code = await accept_one(client, csrf)
    await sync(engine)
    submitted = (await ctx.store.case_events(number))[0].event
    signer = HubSigner()
    hub.serve(signer.sign("case.received", number, {"event": submitted.id}, [VILLAGE], MONDAY))
    for event in signer.accept_and_approve(number, VILLAGE, MONDAY):
        hub.serve(event)
    await sync(engine)
    own = [h.event for h in await ctx.store.case_events(number) if h.own]
    assert [e.type for e in own] == ["case.submitted", "case.received", "case.received"]

    html = await (await client.post("/track", data={"number": number, "code": code})).text()
    assert html.count("已送达审批部门") == 1 and html.count("办结结果已送达出件窗口") == 1
    assert "已签收" not in html
