"""收件 at the window with no hub reachable: signed event, chain, receipt, deadline, refusals."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from node.services import matters
from node.services.accept import (
    Application,
    MaterialInput,
    Person,
    UploadedFile,
    accept_application,
)
from node.services.context import NodeContext
from node.services.errors import ServiceError
from protocol.case import CaseFolder
from protocol.event import Event
from protocol.http.blobs import sha256_hex
from tests.protocol.fed import ANNUAL, DIBAO, FOOD, LAWYER, RELIEF, RIDE

from .conftest import STATION_ID
from .helpers import CST, Clock, resident_id

FORM = UploadedFile("申请表.pdf", "application/pdf", b"%PDF-1.4 form " * 100)


def application(matter: str = ANNUAL, **changes: Any) -> Application:
    base: dict[str, Any] = {
        "matter": matter,
        "applicant": Person("张三", resident_id()),
        "materials": (MaterialInput("form", "provided", (FORM,)),),
    }
    base.update(changes)
    return Application(**base)


async def own_events(ctx: NodeContext) -> list[Event]:
    return await ctx.store.own_events_after(STATION_ID, 0)


async def test_accept_offline_signs_chains_and_returns_the_receipt(ctx: NodeContext) -> None:
    first = await accept_application(ctx, application())
    second = await accept_application(ctx, application(applicant=Person("李四", resident_id())))

    assert first["number"] == f"{STATION_ID}-20261123-0001"
    assert second["number"] == f"{STATION_ID}-20261123-0002"
    events = await own_events(ctx)
    assert [e.seq for e in events] == [1, 2]
    assert events[0].prev is None and events[1].prev == events[0].id
    for event in events:
        event.verify(ctx.key.public)  # signed with the station's own key
        assert event.type == "case.submitted" and event.to == ("2101:sfj",)
    assert await ctx.store.head() == (2, events[1].id)

    body = events[0].body
    assert (
        body["applicant"]["id_masked"] == "2101**********1231"[:4] + "*" * 10 + resident_id()[-4:]
    )
    assert resident_id() not in events[0].wire_bytes.decode()
    private = await ctx.store.case_private(first["number"])
    assert private is not None and private.id_number == resident_id()

    # The federation's own fold accepts what the station signed.
    federation = ctx.configs.require()
    case = CaseFolder(federation).apply(None, events[0])
    assert case.number == first["number"] and case.authority == "2101:sfj"

    assert first["matter"]["code"] == ANNUAL
    assert first["state_label"] == "收件"
    assert first["qr_svg"].startswith("<svg") and first["number"] in first["qr_svg"]
    assert first["deadline"] == {
        "date": "2026-11-30",  # Monday + 5 working days
        "basis": "自收件之日起 5 个工作日",
        "warning": None,
    }
    assert first["applicant"] == {"name": "张三", "id_masked": body["applicant"]["id_masked"]}
    assert first["deferred"] == [] and first["not_provided"] == []


async def test_deadline_skips_the_national_day_holiday(ctx: NodeContext, clock: Clock) -> None:
    clock.at = datetime(2026, 9, 24, 10, 0, tzinfo=CST)  # Thursday before 9-25 and 10-1..7
    receipt = await accept_application(ctx, application())
    # 9-25 off, 28/29/30 count, 10-1..7 off, 10-8 and 10-9 count: the 5th is 10-09.
    assert receipt["deadline"]["date"] == "2026-10-09"
    assert receipt["number"].endswith("-20260924-0001")


async def test_deadline_warns_when_the_calendar_lacks_the_year(
    ctx: NodeContext, clock: Clock
) -> None:
    clock.at = datetime(2026, 12, 28, 10, 0, tzinfo=CST)
    receipt = await accept_application(ctx, application())
    assert receipt["deadline"]["date"] == "2027-01-04"
    assert "2027 年" in receipt["deadline"]["warning"]


async def test_materials_are_blobs_written_before_the_event(ctx: NodeContext) -> None:
    scan = UploadedFile("身份证.jpg", "image/jpeg", b"\xff\xd8 id card scan" * 1000)
    order: list[str] = []
    real_open_case = ctx.store.open_case

    async def spy(*args: Any, **kwargs: Any) -> Any:  # observes, then runs the real store
        order.append("event")
        assert ctx.blobs.has(sha256_hex(FORM.data)) and ctx.blobs.has(sha256_hex(scan.data))
        return await real_open_case(*args, **kwargs)

    ctx.store.open_case = spy  # type: ignore[method-assign]
    receipt = await accept_application(
        ctx,
        application(
            LAWYER,
            materials=(
                MaterialInput("form", "provided", (FORM,)),
                MaterialInput("idcard", "provided", (scan, scan)),
                MaterialInput("nocrime", "pledged"),
            ),
            pledge_text="本人承诺无犯罪记录，如有不实愿承担法律责任。",
        ),
    )
    assert order == ["event"]
    event = (await own_events(ctx))[0]
    by_id = {m["id"]: m for m in event.body["materials"]}
    assert by_id["form"]["blobs"] == [sha256_hex(FORM.data)]
    assert by_id["idcard"]["blobs"] == [sha256_hex(scan.data)]  # the same scan once
    assert by_id["nocrime"] == {
        "id": "nocrime",
        "name": "无犯罪记录证明",
        "mode": "pledged",
        "blobs": [],
    }
    assert ctx.blobs.read(sha256_hex(scan.data)) == scan.data
    row = await ctx.store.blob(sha256_hex(scan.data))
    assert row is not None and row.name == "身份证.jpg" and row.mime == "image/jpeg"
    uploads = await ctx.store.uploads()
    assert {u.hash for u in uploads} == {sha256_hex(FORM.data), sha256_hex(scan.data)}
    assert receipt["pledged"] == ["无犯罪记录证明"]
    assert receipt["not_provided"] == ["照片"]


async def test_deferred_material_needs_a_pledge_deadline(ctx: NodeContext) -> None:
    materials = (
        MaterialInput("form", "provided", (FORM,)),
        MaterialInput("health", "deferred"),
        MaterialInput("premises", "provided"),
    )
    with pytest.raises(ServiceError) as refused:
        await accept_application(ctx, application(FOOD, materials=materials, pledge_text="承诺"))
    assert refused.value.reason == "missing_pledge" and refused.value.field == "pledge_deadline"
    receipt = await accept_application(
        ctx,
        application(
            FOOD, materials=materials, pledge_text="承诺补交", pledge_deadline=date(2026, 11, 30)
        ),
    )
    assert receipt["deferred"] == ["健康证明"]
    assert receipt["pledge"] == {"text": "承诺补交", "deadline": "2026-11-30"}


@pytest.mark.parametrize(
    ("app", "reason", "words"),
    [
        (application(RELIEF, location="210103001001"), "out_of_scope", "不能受理"),
        (application("NO-SUCH"), "no_such_matter", "没有该事项"),
        (application(LAWYER), "missing_material", "身份证"),
        (application(materials=(MaterialInput("form", "deferred"),)), "not_deferrable", "容缺"),
        (application(applicant=Person("张三", "210102199001011230")), "bad_id_number", "校验"),
        (application(location="21"), "bad_location", "区划"),
        (application(pickup="210103"), "bad_pickup", "出件窗口"),
    ],
)
async def test_refusals_are_clear_and_change_nothing(
    ctx: NodeContext, app: Application, reason: str, words: str
) -> None:
    with pytest.raises(ServiceError) as refused:
        await accept_application(ctx, app)
    assert refused.value.reason == reason
    assert words in refused.value.message
    assert await ctx.store.head() == (0, None)
    assert await ctx.store.uploads() == []
    assert not ctx.blobs.has(sha256_hex(FORM.data))
    assert (await ctx.store.list_cases())[1] == 0


async def test_out_of_scope_names_the_matter_and_the_rule(ctx: NodeContext) -> None:
    with pytest.raises(ServiceError) as refused:
        await accept_application(ctx, application(RELIEF, location="210103001001"))
    assert refused.value.status == 422
    assert refused.value.message == (
        "本窗口不能受理事项「事项 SY-MZJ-JZ-02」：仅限审批部门所在区县的窗口受理，"
        "本窗口（210102001001）不在范围内。"
    )


async def test_agent_and_case_numbers_restart_each_day(ctx: NodeContext, clock: Clock) -> None:
    agent = Person("王五", resident_id("21010219800101456"))
    first = await accept_application(ctx, application(agent=agent))
    clock.advance(days=1)
    second = await accept_application(ctx, application(DIBAO, materials=first_form()))
    assert first["agent"] == {"name": "王五", "id_masked": "2101**********" + agent.id_number[-4:]}
    assert second["number"] == f"{STATION_ID}-20261124-0001"
    assert second["authority"]["id"] == "210102:mzj"


def first_form() -> tuple[MaterialInput, ...]:
    return (MaterialInput("form", "provided", (FORM,)),)


async def test_matter_search_lists_only_what_this_window_may_accept(ctx: NodeContext) -> None:
    found = {m["code"]: m for m in matters.search_matters(ctx)}
    assert {ANNUAL, LAWYER, DIBAO, FOOD, RELIEF, RIDE} <= set(found)
    assert found[RELIEF]["authority"] == {"id": "210102:mzj", "name": "部门 210102:mzj"}
    assert [m["code"] for m in matters.search_matters(ctx, "kh-02")] == [ANNUAL]
    detail = matters.matter_detail(ctx, LAWYER)
    assert [m["id"] for m in detail["materials"]] == ["form", "idcard", "nocrime", "photo"]
    with pytest.raises(ServiceError) as missing:
        matters.matter_detail(ctx, "FS-SFJ-02")
    assert missing.value.status == 404


async def test_no_config_refuses_with_a_clear_message(ctx: NodeContext) -> None:
    ctx.configs.home = None
    ctx.configs.federation = None
    with pytest.raises(ServiceError) as refused:
        await accept_application(ctx, application())
    assert refused.value.reason == "no_config" and "联邦配置" in refused.value.message


async def test_stale_config_does_not_stop_acceptance(ctx: NodeContext, clock: Clock) -> None:
    clock.at = datetime(2027, 1, 5, 10, 0, tzinfo=CST)  # the config expired on 2027-01-01
    receipt = await accept_application(ctx, application())
    assert receipt["number"].endswith("-20270105-0001")


async def test_a_pledge_deadline_past_the_promised_date_is_refused(ctx: NodeContext) -> None:
    materials = (
        MaterialInput("form", "provided", (FORM,)),
        MaterialInput("health", "deferred"),
        MaterialInput("premises", "pledged"),
    )
    with pytest.raises(ServiceError) as refused:
        await accept_application(
            ctx,
            application(
                FOOD, materials=materials, pledge_text="承诺", pledge_deadline=date(2026, 12, 31)
            ),
        )
    assert refused.value.reason == "bad_pledge_deadline"
    assert refused.value.message == "补交期限须在 2026-11-23 至 2026-12-07（承诺办结日）之间。"
