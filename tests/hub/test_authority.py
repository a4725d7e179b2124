"""The authority side over real HTTP: acceptance (受理, 不予受理, 一次性补正, deemed acceptance),
the chain of review steps by role with 退回, 补办, 特别程序, one 延长, 异常终止, the 容缺
deadline job, 告知承诺 核查 and 差评 回访, and the sealed result with its print view."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from hub.review_jobs import terminate_overdue
from hub.services.staff import set_password
from protocol.case import day_of
from protocol.config import FederationConfig, sign_config
from protocol.seal import result_text, seal_result, verify_result
from protocol.sync import FeedPage
from protocol.workdays import Pause
from tests.hub.conftest import RunningHub, StartHub
from tests.hub.fed import (
    ACCEPTOR,
    APPROVER,
    CHAIN,
    CST,
    DISTRICT,
    HP_MZJ,
    OTHER_DEPT,
    PASSWORD,
    RELIEF,
    REVIEWER,
    VILLAGE_A,
    VILLAGE_B,
    Chain,
    Fed,
    _grant,
    key,
    submit,
    wire,
)
from tests.hub.test_pages import Pages
from tests.hub.test_review import Workbench, browser
from tests.protocol.fed import FS_CITY, FS_SFJ, fushun_dict

__all__ = ["browser"]  # the cookie-keeping client fixture

CALENDAR = Fed().federation().home.calendar
FIRE = {"id": "fire", "mode": "provided"}
FIRE_LATER = {"id": "fire", "mode": "deferred", "name": "消防验收意见"}
NOCRIME = {"id": "nocrime", "mode": "provided"}
NOCRIME_PLEDGED = {"id": "nocrime", "mode": "pledged", "name": "无犯罪记录证明"}


@pytest.fixture
async def district(start_hub: StartHub) -> RunningHub:
    running = await start_hub()
    for staff in (REVIEWER, ACCEPTOR, APPROVER, OTHER_DEPT):
        await set_password(running.hub, staff, PASSWORD)
    return running


class Desk:
    """One reviewer at the workbench, in their own browser."""

    def __init__(self, hub: RunningHub, browser: aiohttp.ClientSession, staff: str) -> None:
        self.bench = Workbench(hub, browser)
        self.staff = staff

    async def login(self) -> Desk:
        status, _ = await self.bench.login(self.staff)
        assert status == 200
        return self

    async def do(self, number: str, action: str, /, **payload: Any) -> tuple[int, Any]:
        return await self.bench.call("POST", f"/api/cases/{number}/{action}", payload)

    async def ok(self, number: str, action: str, /, **payload: Any) -> Any:
        status, answer = await self.do(number, action, **payload)
        assert status == 200, answer
        return answer

    async def refused(self, number: str, action: str, expected: str, /, **payload: Any) -> int:
        status, answer = await self.do(number, action, **payload)
        assert answer.get("error") == expected, answer
        return status

    async def file(self, number: str) -> Any:
        status, answer = await self.bench.call("GET", f"/api/cases/{number}")
        assert status == 200, answer
        return answer

    async def tasks(self) -> Any:
        status, answer = await self.bench.call("GET", "/api/tasks")
        assert status == 200, answer
        return answer


@pytest.fixture
async def desks(
    district: RunningHub,
) -> Any:
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(4)]
    staff = (ACCEPTOR, REVIEWER, APPROVER, OTHER_DEPT)
    yield [await Desk(district, s, who).login() for s, who in zip(sessions, staff, strict=True)]
    for s in sessions:
        await s.close()


async def push_case(
    hub: RunningHub, session: aiohttp.ClientSession, chain: Chain, matter: str = RELIEF, **kw: Any
) -> str:
    event = submit(chain, matter, pickup=VILLAGE_B, **kw)
    ack = await hub.client(chain.author, session).push(wire(event))
    assert not ack.get("rejected"), ack
    assert event.case is not None
    assert await hub.hub.store.case(event.case) is not None  # folded, not refused
    return event.case


async def push_window(
    hub: RunningHub,
    session: aiohttp.ClientSession,
    chain: Chain,
    number: str,
    type: str,
    **body: Any,
) -> None:
    event = chain.next(type, case=number, to=(HP_MZJ,), body=body)
    ack = await hub.client(chain.author, session).push(wire(event))
    assert not ack.get("rejected"), ack
    record = await hub.hub.store.case(number)
    assert record is not None and record.last_error is None, record  # folded, not refused


def today(hub: RunningHub) -> date:
    return day_of(hub.hub.now())


# -- acceptance -------------------------------------------------------------------------------


async def test_correction_lists_every_item_in_one_notice_then_not_accepted(
    district: RunningHub, session: aiohttp.ClientSession, desks: list[Desk]
) -> None:
    reviewer = desks[1]
    number = await push_case(district, session, Chain(VILLAGE_A))
    await reviewer.refused(number, "request-correction", "bad_request", items=[])
    await reviewer.refused(
        number, "request-correction", "unknown_material", items=[{"material": "x", "problem": "?"}]
    )
    items = [
        {"material": "idcard", "problem": "身份证复印件不清晰"},
        {"material": "form", "problem": "申请表缺少签名"},
        {"field": "address", "problem": "住址与户籍不符"},
    ]
    assert (await reviewer.ok(number, "request-correction", items=items))["state"] == "correction"
    file = await reviewer.file(number)
    assert [i["problem"] for i in file["items"]] == [i["problem"] for i in items]
    assert file["actions"] == ["not-accept"]
    await reviewer.refused(number, "not-accept", "missing_reason", reason=" ")
    answer = await reviewer.ok(number, "not-accept", reason="逾期未补正")
    assert answer["state_label"] == "不予受理"
    await reviewer.refused(number, "accept", "illegal_transition")


async def test_no_action_for_five_working_days_counts_as_accepted_from_receipt(
    district: RunningHub, session: aiohttp.ClientSession, desks: list[Desk]
) -> None:
    reviewer = desks[1]
    received = datetime.now(CST) - timedelta(days=12)  # at least 6 working days ago
    number = await push_case(district, session, Chain(VILLAGE_A), ts=received)
    _, queue = await reviewer.bench.call("GET", "/api/queue")
    [row] = [r for r in queue["cases"] if r["number"] == number]
    expected = CALENDAR.add_workdays(received.date(), 3).date
    assert expected is not None
    assert row["deemed_accepted"] and row["state"] == "submitted"
    assert row["deadline"]["date"] == expected.isoformat() and row["deadline"]["deemed"]
    await reviewer.ok(number, "accept", opinion="视为受理")
    file = await reviewer.file(number)
    assert file["deemed"] and file["deadline"]["date"] == expected.isoformat()
    on_time = await push_case(district, session, Chain(VILLAGE_B))
    await reviewer.ok(on_time, "accept")
    file = await reviewer.file(on_time)
    assert not file["deemed"] and not file["deemed_accepted"]
    due = CALENDAR.add_workdays(today(district), 3).date
    assert due is not None and file["deadline"]["date"] == due.isoformat()


# -- the chain of steps -----------------------------------------------------------------------


async def test_each_step_by_its_role_with_a_return_then_sealed_approval(
    district: RunningHub, session: aiohttp.ClientSession, desks: list[Desk]
) -> None:
    acceptor, reviewer, approver, other = desks
    number = await push_case(district, session, Chain(VILLAGE_A), CHAIN, materials=[FIRE, NOCRIME])
    # A reviewer of another department at the same hub sees and does nothing.
    assert await other.refused(number, "accept", "wrong_department") == 403
    status, _ = await other.bench.call("GET", f"/api/cases/{number}")
    assert status == 403
    await acceptor.ok(number, "accept")
    assert await reviewer.refused(number, "step", "wrong_role", opinion="越权") == 403
    await acceptor.refused(number, "step", "bad_body", opinion="")  # an opinion is required
    await acceptor.ok(number, "step", opinion="材料齐全，符合受理条件")
    await reviewer.refused(number, "decide", "steps_incomplete", result_code=0)
    await reviewer.ok(number, "step", outcome="return", to_step=0, opinion="请核实住址")
    file = await reviewer.file(number)
    assert file["next_step"] == 0 and file["state"] == "in_review"
    await acceptor.ok(number, "step", opinion="已核实")
    await reviewer.ok(number, "step", opinion="同意")
    assert await reviewer.refused(number, "step", "wrong_role", opinion="越权签发") == 403
    await approver.refused(number, "step", "wrong_step", step=1, opinion="重复")
    await approver.ok(number, "step", opinion="同意签发")
    await reviewer.refused(number, "decide", "wrong_role", result_code=0)
    answer = await approver.ok(
        number, "decide", result_code=0, licence_no="民养备 2026-0001", valid_until="2029-12-31"
    )
    assert answer["state"] == "decided"
    check = verify_result(answer["result"], Fed().federation())
    assert check.genuine and check.authority == HP_MZJ, check
    assert answer["result"]["licence_no"] == "民养备 2026-0001"
    assert answer["result"]["applicant"]["id_masked"] == "2101**********1234"

    file = await approver.file(number)
    taken = [(s["name"], s["outcome"], s["by"], s["opinion"]) for s in file["steps_taken"]]
    assert taken == [
        ("受理审查", "pass", ACCEPTOR, "材料齐全，符合受理条件"),
        ("审核", "return", REVIEWER, "请核实住址"),
        ("受理审查", "pass", ACCEPTOR, "已核实"),
        ("审核", "pass", REVIEWER, "同意"),
        ("签发", "pass", APPROVER, "同意签发"),
    ]
    assert all(s["at"] for s in file["steps_taken"])
    assert file["result"] == answer["result"]

    # The printable result with its QR code, for the window to print.
    pages = Pages(district, approver.bench.browser)
    status, html, _ = await pages.get(f"/cases/{number}/result")
    assert status == 200 and "<svg" in html and "民养备 2026-0001" in html
    assert "真实有效" in html and "部门 210102:mzj" in html and "2029-12-31" in html


# -- pauses, one extension, termination -------------------------------------------------------


async def test_supplement_suspend_resume_pause_the_clock_and_one_extension(
    district: RunningHub, session: aiohttp.ClientSession, desks: list[Desk]
) -> None:
    reviewer = desks[1]
    window = Chain(VILLAGE_A)
    number = await push_case(district, session, window)
    await reviewer.ok(number, "accept")
    items = [{"field": "收入", "problem": "缺收入证明"}]
    await reviewer.ok(number, "request-supplement", items=items)
    file = await reviewer.file(number)
    assert file["state_label"] == "待补办" and file["deadline"]["paused"]
    await push_window(district, session, window, number, "case.supplemented", materials=[])
    assert (await reviewer.file(number))["state"] == "accepted"

    start = today(district)
    first = (await reviewer.file(number))["deadline"]["date"]
    await reviewer.refused(number, "suspend", "missing_reason", reason="")
    await reviewer.ok(number, "suspend", reason="需要现场核查")
    file = await reviewer.file(number)
    assert file["state_label"] == "特别程序" and file["deadline"]["paused"]
    assert file["deadline"]["date"] is None and file["actions"] == ["resume", "terminate"]
    await reviewer.refused(number, "decide", "illegal_transition", result_code=0)
    later = datetime.now(CST) + timedelta(days=7)
    district.hub.clock = lambda: later
    await reviewer.login()  # the session of a week ago has expired
    await reviewer.ok(number, "resume", opinion="核查完毕")
    file = await reviewer.file(number)
    expected = CALENDAR.add_workdays(start, 3, [Pause(start, later.date())]).date
    assert expected is not None and expected.isoformat() > first
    assert file["deadline"]["date"] == expected.isoformat()

    await reviewer.refused(number, "extend", "bad_body", days=9, reason="情况复杂")  # > legal
    await reviewer.refused(number, "extend", "missing_reason", days=2, reason="")
    before = (await reviewer.file(number))["deadline"]["date"]
    await reviewer.ok(number, "extend", days=2, reason="需要征求相关部门意见")
    file = await reviewer.file(number)
    assert file["extension_days"] == 2 and file["deadline"]["date"] > before
    assert "extend" not in file["actions"]
    await reviewer.refused(number, "extend", "second_extension", days=1, reason="再延一次")

    await reviewer.refused(number, "terminate", "missing_reason", reason="")
    assert (await reviewer.ok(number, "terminate", reason="申请人死亡"))["state"] == "terminated"
    # The window learns of every act through its feed.
    district.hub.clock = lambda: datetime.now(CST)  # the window signs its requests in real time
    page = FeedPage.from_dict(await district.client(VILLAGE_A, session).feed(None, 0))
    assert [e.type for e in page.events if e.author == district.hub.me] == [
        "case.accepted",
        "case.supplement_requested",
        "case.suspended",
        "case.resumed",
        "case.extended",
        "case.terminated",
    ]


# -- 容缺 and 告知承诺 -------------------------------------------------------------------------


async def test_overdue_容缺_material_terminates_the_case(
    district: RunningHub, session: aiohttp.ClientSession, desks: list[Desk]
) -> None:
    acceptor = desks[0]
    due = datetime.now(CST).date().isoformat()
    pledge = {"text": "本人承诺当日补交消防验收意见", "deadline": due}
    window_a = Chain(VILLAGE_A)
    late = await push_case(
        district, session, window_a, CHAIN, materials=[FIRE_LATER, NOCRIME], pledge=pledge
    )
    window_b = Chain(VILLAGE_B)
    supplied = await push_case(
        district, session, window_b, CHAIN, materials=[FIRE_LATER, NOCRIME], pledge=pledge
    )
    waiting = await push_case(  # never accepted: not the job's to end
        district, session, window_a, CHAIN, materials=[FIRE_LATER, NOCRIME], pledge=pledge
    )
    for number in (late, supplied):
        await acceptor.ok(number, "accept", opinion="容缺受理")
    file = await acceptor.file(late)
    assert file["outstanding"] == ["fire"]
    assert file["pledge"] == {"text": pledge["text"], "deadline": due, "overdue": False}
    items = [{"material": "fire", "problem": "请补交消防验收意见"}]
    await acceptor.ok(supplied, "request-supplement", items=items)
    await push_window(
        district, session, window_b, supplied, "case.supplemented",
        materials=[{"id": "fire", "mode": "provided"}],
    )  # fmt: skip
    assert await terminate_overdue(district.hub) == []  # not yet past the deadline

    district.hub.clock = lambda: datetime.now(CST) + timedelta(days=2)
    await acceptor.login()
    assert (await acceptor.file(late))["pledge"]["overdue"]
    assert await terminate_overdue(district.hub) == [late]
    file = await acceptor.file(late)
    assert file["state"] == "terminated" and "容缺材料未在承诺期限" in file["reason"]
    [event] = [e for e in file["timeline"] if e["type"] == "case.terminated"]
    assert event["by"] is None and event["author"] == district.hub.me
    assert (await acceptor.file(supplied))["state"] == "accepted"
    waiting_file = await acceptor.file(waiting)
    assert waiting_file["state"] == "submitted" and waiting_file["pledge"]["overdue"]
    assert await terminate_overdue(district.hub) == []  # nothing left to do, nothing twice


async def test_告知承诺_approval_opens_a_verification_task(
    district: RunningHub, session: aiohttp.ClientSession, desks: list[Desk]
) -> None:
    acceptor, reviewer, approver, _ = desks
    pledge = {"text": "本人承诺无犯罪记录，如有不实愿承担法律责任"}
    number = await push_case(
        district, session, Chain(VILLAGE_A), CHAIN,
        materials=[FIRE, NOCRIME_PLEDGED], pledge=pledge,
    )  # fmt: skip
    await acceptor.ok(number, "accept")
    await acceptor.ok(number, "step", opinion="同意")
    await reviewer.ok(number, "step", opinion="同意")
    await approver.ok(number, "step", opinion="同意")
    assert (await approver.tasks())["verify"] == []
    await approver.refused(number, "verify", "illegal_transition", outcome="confirmed", note="x")
    await approver.ok(number, "decide", result_code=0, licence_no="民养备 2026-0002")
    [task] = (await reviewer.tasks())["verify"]
    assert task["number"] == number and task["pledge"]["text"] == pledge["text"]
    assert "verify" in (await reviewer.file(number))["actions"]
    await reviewer.refused(number, "verify", "missing_reason", outcome="false", note="")
    await reviewer.refused(number, "verify", "bad_body", outcome="也许", note="未核实")
    await reviewer.ok(number, "verify", outcome="false", note="公安机关回函：有犯罪记录")
    assert (await reviewer.tasks())["verify"] == []
    file = await reviewer.file(number)
    assert file["verification"]["outcome"] == "false" and file["verification"]["by"] == REVIEWER
    assert file["actions"] == ["terminate"]
    await reviewer.refused(number, "verify", "already_verified", outcome="confirmed", note="x")
    answer = await reviewer.ok(number, "terminate", reason="承诺不实，撤销备案")
    assert answer["state_label"] == "异常终止"


# -- 好差评 ------------------------------------------------------------------------------------


async def test_差评_opens_a_follow_up_closed_with_a_note(
    district: RunningHub, session: aiohttp.ClientSession, desks: list[Desk]
) -> None:
    reviewer = desks[1]
    window = Chain(VILLAGE_A)
    number = await push_case(district, session, window)
    await reviewer.ok(number, "accept")
    await reviewer.ok(number, "decide", result_code=1, reason="不符合救助条件")
    pickup = Chain(VILLAGE_B)
    await push_window(
        district, session, pickup, number, "case.delivered", collector="张三", method="窗口领取"
    )
    await push_window(district, session, window, number, "case.rated", score=5, comment="好")
    assert (await reviewer.tasks())["follow_up"] == []
    await reviewer.refused(number, "follow-up", "no_follow_up_needed", note="无需回访")
    await push_window(district, session, window, number, "case.rated", score=1, comment="等太久")
    [task] = (await reviewer.tasks())["follow_up"]
    assert task["number"] == number and task["rating"] == {"score": 1, "comment": "等太久"}
    await reviewer.refused(number, "follow-up", "missing_reason", note=" ")
    await desks[3].refused(number, "follow-up", "wrong_department", note="越权")
    await reviewer.ok(number, "follow-up", note="已电话回访致歉，窗口增派人手")
    assert (await reviewer.tasks())["follow_up"] == []
    file = await reviewer.file(number)
    assert [r["score"] for r in file["ratings"]] == [5, 1]  # ratings stay as given
    assert [f["note"] for f in file["follow_ups"]] == ["已电话回访致歉，窗口增派人手"]
    assert not file["needs_follow_up"]


# -- the workbench forms and the public verify page ------------------------------------------


async def test_the_new_controls_as_workbench_forms(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    number = await push_case(district, session, Chain(VILLAGE_A))
    pages = Pages(district, browser)
    assert await pages.login() == 303
    await pages.post(f"/cases/{number}/accept", {"csrf_token": pages.csrf})
    _, html, _ = await pages.get(f"/cases/{number}")
    for control in ("act-supplement", "act-suspend", "act-extend", "act-terminate", "act-decide"):
        assert f'id="{control}"' in html, control
    assert "最多 2 个工作日" in html  # legal_days 5 - promise_days 3
    status, html, _ = await pages.post(f"/cases/{number}/suspend", {"reason": "核查"})
    assert status == 403 and "页面已过期" in html  # no CSRF token, nothing done
    status, html, _ = await pages.post(
        f"/cases/{number}/suspend", {"csrf_token": pages.csrf, "reason": ""}
    )
    assert status == 400 and "请填写理由" in html
    status, _, resp = await pages.post(
        f"/cases/{number}/suspend", {"csrf_token": pages.csrf, "reason": "需要听证"}
    )
    assert status == 303 and resp.headers["Location"].endswith("?done=suspend")
    _, html, _ = await pages.get(f"/cases/{number}?done=suspend")
    assert "已进入特别程序，计时暂停。" in html and 'id="act-resume"' in html
    assert 'id="act-extend"' not in html
    await pages.post(f"/cases/{number}/resume", {"csrf_token": pages.csrf})
    form = {"csrf_token": pages.csrf, "days": "2", "reason": "情况复杂"}
    status, _, _ = await pages.post(f"/cases/{number}/extend", form)
    assert status == 303
    _, html, _ = await pages.get(f"/cases/{number}")
    assert 'id="act-extend"' not in html and "2 个工作日" in html
    status, html, _ = await pages.post(f"/cases/{number}/extend", {**form, "days": "1"})
    assert status == 400 and "每个办件只能延长一次办理期限" in html


async def test_public_verify_page_needs_no_login(
    district: RunningHub, session: aiohttp.ClientSession, desks: list[Desk]
) -> None:
    reviewer = desks[1]
    number = await push_case(district, session, Chain(VILLAGE_A))
    await reviewer.ok(number, "accept")
    answer = await reviewer.ok(number, "decide", result_code=0, licence_no="救助 2026-7")
    text = result_text(answer["result"])
    base = district.url.rstrip("/")
    async with aiohttp.ClientSession() as public:  # no cookie, no login
        async with public.get(base + "/verify") as resp:
            assert resp.status == 200 and "结果核验" in await resp.text()
        async with public.post(base + "/verify", data={"text": text}) as resp:
            html = await resp.text()
        assert resp.status == 200 and "真实有效" in html and "部门 210102:mzj" in html
        assert "救助 2026-7" in html and "盖章时印章密钥有效" in html
        flipped = text[:40] + ("A" if text[40] != "A" else "B") + text[41:]
        async with public.post(base + "/verify", data={"text": flipped}) as resp:
            html = await resp.text()
        assert resp.status == 422 and "核验未通过" in html and "救助 2026-7" not in html
        async with public.get(base + "/verify", params={"r": "TBRES1.garbage"}) as resp:
            assert resp.status == 422 and "核验未通过" in await resp.text()


async def test_public_verify_page_judges_a_metro_peer_result_by_its_city_config(
    start_hub: StartHub,
) -> None:
    """A result sealed by 抚顺 (2104): unknown until the hub holds 抚顺's root-signed config
    (its peer config fetch), then genuine, naming the city."""
    peer = {"city": FS_CITY, "name": "抚顺市", "endpoint": "http://127.0.0.1:9/"}
    hub = await start_hub(DISTRICT, fed=Fed(peers=[{**peer, "root_keys": [_grant("root 2104")]}]))
    doc = {
        "case": "210102001001-20261123-0008",
        "matter": "FS-SFJ-01",
        "matter_name": "抚顺的都市圈事项",
        "applicant": {"name": "李四", "id_masked": "2101**********5678"},
        "result_code": 0,
        "decision": "准予",
        "licence_no": "抚司 2026-8",
        "authority": FS_SFJ,
        "authority_name": f"部门 {FS_SFJ}",
        "issued": "2026-11-24T10:00:00+08:00",
    }
    text = result_text(seal_result(doc, key(f"seal {FS_SFJ}")))
    base = hub.url.rstrip("/")
    async with aiohttp.ClientSession() as public:
        async with public.post(base + "/verify", data={"text": text}) as resp:
            html = await resp.text()
        assert resp.status == 422 and "签发部门不在联邦配置中" in html
        fushun = sign_config(FederationConfig.parse(fushun_dict()), key("root 2104"))
        assert (await hub.hub.view.adopt_peer(fushun.to_dict(), hub.hub.now())).adopted
        async with public.post(base + "/verify", data={"text": text}) as resp:
            html = await resp.text()
        assert resp.status == 200 and "真实有效" in html and "抚司 2026-8" in html
        assert f"部门 {FS_SFJ}" in html and "都市圈伙伴城市" in html and "（2104，" in html
