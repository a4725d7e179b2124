"""送达回执: the authority's hub signs ``case.received`` once an event and all its materials
are held, and it travels back to the window like any event; and peer-config fetch failures
on the operator's status page and in ``/metrics``."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import aiohttp
import pytest
from sqlalchemy.engine import Connection

from hub.services import review, staff
from hub.services.casecodec import CodecError, decode_case
from hub.services.cases import load_case_txn
from protocol.case import Case, Receipt
from protocol.event import Event
from protocol.http.web.track import track_body
from protocol.sync import FeedPage
from tests.hub import test_review
from tests.hub.clients import Tus
from tests.hub.conftest import RunningHub, StartHub
from tests.hub.fed import (
    ANNUAL,
    CITY,
    CITY_REVIEWER,
    DISTRICT,
    HP_MZJ,
    PASSWORD,
    REVIEWER,
    SFJ,
    VILLAGE_A,
    VILLAGE_B,
    Chain,
    Fed,
    _grant,
    sha,
    submit,
    wire,
)
from tests.hub.test_pages import Pages

browser = test_review.browser


async def upload(hub: RunningHub, session: aiohttp.ClientSession, data: bytes) -> None:
    tus = Tus(hub, session, VILLAGE_A)
    _, headers = await tus.create(sha(data), len(data))
    await tus.patch(headers["Location"], 0, data)


async def receipts_for(hub: RunningHub, member: str, session: aiohttp.ClientSession) -> list[Event]:
    page = FeedPage.from_dict(await hub.client(member, session).feed(None, 0))
    return [e for e in page.events if e.type == "case.received"]


async def test_the_receipt_waits_for_every_material_and_is_signed_once(
    start_hub: StartHub, session: aiohttp.ClientSession
) -> None:
    district = await start_hub(DISTRICT)
    scan = b"\xff\xd8\xff" + bytes(range(256)) * 40
    submitted = submit(Chain(VILLAGE_A), to=HP_MZJ, blobs={"idcard": [sha(scan)], "form": []})
    number = submitted.case or ""
    await district.client(VILLAGE_A, session).push(wire(submitted))
    assert await district.jobs.sign_receipts() == 0  # the ID-card scan is not here yet
    assert await receipts_for(district, VILLAGE_A, session) == []

    await upload(district, session, scan)
    assert await district.jobs.sign_receipts() == 1
    assert await district.jobs.sign_receipts() == 0  # once
    [receipt] = await receipts_for(district, VILLAGE_A, session)
    assert (receipt.author, receipt.to, receipt.body) == (
        DISTRICT,
        (VILLAGE_A,),
        {"event": submitted.id},
    )
    record = await district.hub.store.case(number)
    assert record is not None
    case = decode_case(record.fold)
    assert case.received_by_authority and case.state.value == "submitted"


async def test_a_city_receipt_comes_back_down_through_the_district(
    start_hub: StartHub, session: aiohttp.ClientSession
) -> None:
    city = await start_hub(CITY)
    district = await start_hub(DISTRICT, parent_url=city.url)
    submitted = submit(Chain(VILLAGE_A), ANNUAL, to=SFJ, blobs={"form": [], "idcard": []})
    await district.client(VILLAGE_A, session).push(wire(submitted))
    assert await district.jobs.sign_receipts() == 0  # not the authority's hub: owes nothing
    assert await district.jobs.push_destination(CITY)
    assert await city.jobs.sign_receipts() == 1
    assert await district.jobs.pull_parent(wait=0) == 1
    [receipt] = await receipts_for(district, VILLAGE_A, session)
    assert (receipt.author, receipt.body["event"]) == (CITY, submitted.id)


async def test_a_fold_cached_before_receipts_were_owed_is_refolded(
    start_hub: StartHub, session: aiohttp.ClientSession
) -> None:
    """A fold stored by the previous release (receipts as ids, no ``awaiting``) must not
    decode as a case that awaits nothing: the hub re-folds it from its events, so the
    window's receipt of an act signed before the upgrade is still taken."""
    district = await start_hub(DISTRICT)
    store = district.hub.store
    chain = Chain(VILLAGE_A)
    submitted = submit(chain, to=HP_MZJ, blobs={"form": [], "idcard": []})
    number = submitted.case or ""
    await district.client(VILLAGE_A, session).push(wire(submitted))
    assert await district.jobs.sign_receipts() == 1
    await staff.set_password(district.hub, REVIEWER, PASSWORD)
    _, reviewer = await staff.login(district.hub, REVIEWER, PASSWORD)
    accepted = (await review.act(district.hub, reviewer, number, "accept", {}))["event"]

    record = await store.case(number)
    assert record is not None
    fold = json.loads(record.fold)
    assert fold["awaiting"] == [{"event": accepted, "member": VILLAGE_A}]
    old = {k: v for k, v in fold.items() if k != "awaiting"}
    old["receipts"] = [r["event"] for r in fold["receipts"]]
    for shape in (old, {**old, "receipts": []}):
        with pytest.raises(CodecError):
            decode_case(json.dumps(shape, ensure_ascii=False))

    def downgrade(c: Connection) -> None:
        store.save_case_txn(c, replace(record, fold=json.dumps(old, ensure_ascii=False)))

    def load(c: Connection) -> Case | None:
        federation = district.hub.view.require()
        return load_case_txn(store, c, federation, number, lock=False)[1]

    await district.hub.db.run("test", downgrade)
    refolded = await district.hub.db.run("test", load)
    assert refolded is not None
    assert refolded.awaiting == (Receipt(accepted, VILLAGE_A),)
    assert refolded.receipts == (Receipt(submitted.id, DISTRICT),)

    receipt = chain.next("case.received", case=number, to=(DISTRICT,), body={"event": accepted})
    await district.client(VILLAGE_A, session).push(wire(receipt))
    record = await store.case(number)
    assert record is not None and record.rejected == []
    case = decode_case(record.fold)
    assert case.awaiting == () and Receipt(accepted, VILLAGE_A) in case.receipts
    assert await district.jobs.sign_receipts() == 0  # a receipt is owed no receipt


async def test_the_reviewer_and_the_applicant_see_which_windows_confirmed(
    start_hub: StartHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    """Acts of the authority are sent to the accepting and the pickup window; each window's
    receipt shows on the reviewer's timeline as a 送达 mark of the act (not a line of its
    own); 进度查询 tells the applicant of two receipts only."""
    district = await start_hub(DISTRICT)
    accepting, pickup = Chain(VILLAGE_A), Chain(VILLAGE_B)
    draft = submit(Chain(VILLAGE_A), pickup=VILLAGE_B, blobs={"form": [], "idcard": []})
    body = {**draft.body, "track": track_body("ABC234")}
    submitted = accepting.next("case.submitted", case=draft.case, to=draft.to, body=body)
    number = submitted.case or ""
    await district.client(VILLAGE_A, session).push(wire(submitted))
    assert await district.jobs.sign_receipts() == 1
    await staff.set_password(district.hub, REVIEWER, PASSWORD)
    bench = test_review.Workbench(district, browser)
    assert (await bench.login())[0] == 200
    _, accepted = await bench.call("POST", f"/api/cases/{number}/accept", {})
    _, decided = await bench.call("POST", f"/api/cases/{number}/decide", {"result_code": 0})
    pages = Pages(district, browser)
    status, html, _ = await pages.get(f"/cases/{number}")
    assert status == 200, html[:300]
    assert html.count("传送中（站点 210102001001尚未签收）") == 2
    assert html.count("传送中（站点 210102001002尚未签收）") == 2
    assert "已送达窗口" not in html

    def confirm(chain: Chain, event: str) -> Event:
        return chain.next("case.received", case=number, to=(DISTRICT,), body={"event": event})

    # The pickup window confirms the submission to the accepting window (not folded here).
    await district.client(VILLAGE_B, session).push(
        wire(
            pickup.next(
                "case.received", case=number, to=(VILLAGE_A,), body={"event": submitted.id}
            ),
            confirm(pickup, decided["event"]),
        )
    )
    await district.client(VILLAGE_A, session).push(
        wire(confirm(accepting, accepted["event"]), confirm(accepting, decided["event"]))
    )
    record = await district.hub.store.case(number)
    assert record is not None and record.rejected == []
    _, html, _ = await pages.get(f"/cases/{number}")
    assert html.count("已送达窗口：站点 210102001001") == 2
    assert html.count("已送达窗口：站点 210102001002") == 1  # the decision
    assert html.count("传送中（站点 210102001002尚未签收）") == 1  # its 受理 not confirmed yet
    assert html.count("已签收（送达回执）") == 1  # this hub's own receipt keeps its line

    async with aiohttp.ClientSession() as public:
        url = district.url.rstrip("/") + "/track"
        async with public.post(url, data={"number": number, "code": "ABC234"}) as resp:
            html = await resp.text()
    assert resp.status == 200
    assert html.count("已送达审批部门") == 1 and html.count("办结结果已送达出件窗口") == 1
    assert "已签收" not in html


async def test_a_failed_peer_config_fetch_is_on_the_status_page_and_in_metrics(
    start_hub: StartHub, browser: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    dead = f"http://127.0.0.1:{unused_tcp_port}/"
    peer = {"city": "2104", "name": "抚顺市", "endpoint": dead, "root_keys": [_grant("root 2104")]}
    city = await start_hub(CITY, fed=Fed(peers=[peer]))
    assert await city.jobs.refresh_peer_configs() == []
    status = await city.hub.store.peer_status("2104:config")
    assert status.last_error is not None and status.last_success is None

    async with browser.get(city.url + "metrics") as resp:
        metrics = await resp.text()
    assert 'tongban_hub_relay_failures_total{destination="2104:config"} 1.0' in metrics
    assert 'tongban_hub_relay_last_error_timestamp_seconds{destination="2104:config"}' in metrics

    await staff.set_password(city.hub, CITY_REVIEWER, PASSWORD)
    pages = Pages(city, browser)
    assert await pages.login(CITY_REVIEWER) == 303
    _, html, _ = await pages.get("/status")
    assert "抚顺市（联邦配置）" in html and "2104:config" in html


async def test_a_config_fetch_that_succeeds_is_recorded(start_hub: StartHub) -> None:
    city = await start_hub(CITY)
    district = await start_hub(DISTRICT, parent_url=city.url)
    assert not await district.jobs.refresh_config()
    status = await district.hub.store.peer_status(f"{CITY}:config")
    assert status.last_success is not None and status.last_error is None


@pytest.mark.postgres
async def test_two_workers_sign_each_receipt_once(
    start_hub: StartHub, pg_url: str, session: aiohttp.ClientSession
) -> None:
    workers = [await start_hub(DISTRICT, db=pg_url, name=f"w{i}") for i in (1, 2)]
    chain = Chain(VILLAGE_A)
    events = [submit(chain, to=HP_MZJ, blobs={"form": [], "idcard": []}) for _ in range(6)]
    await workers[0].client(VILLAGE_A, session).push(wire(*events))
    counts = await asyncio.gather(*(w.jobs.sign_receipts() for w in workers))
    assert sum(counts) == len(events)
    receipts = await receipts_for(workers[1], VILLAGE_A, session)
    assert sorted(r.body["event"] for r in receipts) == sorted(e.id for e in events)
    assert [r.seq for r in sorted(receipts, key=lambda r: r.seq)] == list(range(1, 7))
