"""The workbench pages: login/logout, CSRF on every form, escaping, the queue, the case
file with viewable materials, and decisions made through the forms."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import aiohttp

from hub.services import supervision
from protocol.event import Event
from protocol.seal import verify_result
from tests.hub import test_review
from tests.hub.clients import Tus
from tests.hub.conftest import RunningHub
from tests.hub.fed import (
    CLERK,
    CST,
    HP_MZJ,
    PASSWORD,
    REVIEWER,
    VILLAGE_A,
    Chain,
    Fed,
    applicant,
    sha,
    submit,
    wire,
)

# The review tests' fixtures: a district hub with staff passwords, a cookie-keeping client.
district, browser = test_review.district, test_review.browser
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
PDF = b"%PDF-1.7 " + bytes(range(256)) * 4


def token_of(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match is not None, html[:400]
    return match.group(1)


class Pages:
    def __init__(self, hub: RunningHub, browser: aiohttp.ClientSession) -> None:
        self.base, self.browser = hub.url.rstrip("/"), browser
        self.csrf = ""

    async def get(self, path: str) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.browser.get(self.base + path, allow_redirects=False) as resp:
            return resp.status, await resp.text(), resp

    async def post(self, path: str, data: object) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.browser.post(self.base + path, data=data, allow_redirects=False) as resp:
            return resp.status, await resp.text(), resp

    async def login(self, staff: str = REVIEWER, password: str = PASSWORD) -> int:
        _, html, _ = await self.get("/login")
        status, _, _ = await self.post(
            "/login", {"staff": staff, "password": password, "csrf_token": token_of(html)}
        )
        if status == 303:
            self.csrf = token_of((await self.get("/status"))[1])
        return status


async def pushed_case(
    hub: RunningHub,
    session: aiohttp.ClientSession,
    *,
    name: str | None = None,
    blobs: dict[str, list[str]] | None = None,
    chain: Chain | None = None,
) -> str:
    chain = chain or Chain(VILLAGE_A)
    if name is None:
        event = submit(chain, blobs=blobs)
    else:
        person = {**applicant(), "name": name}
        del person["phone"]
        number = f"{VILLAGE_A}-{datetime.now(CST):%Y%m%d}-9001"
        body = {
            "matter": "SY-MZJ-JZ-02",
            "applicant": person,
            "location": VILLAGE_A,
            "pickup": VILLAGE_A,
            "materials": [
                {"id": m, "mode": "provided", "blobs": [sha(m)], "name": m}
                for m in ("form", "idcard")
            ],
        }
        event = chain.next("case.submitted", case=number, to=(HP_MZJ,), body=body)
    await hub.client(VILLAGE_A, session).push(wire(event))
    assert event.case is not None
    return event.case


async def test_login_cookie_and_logout(
    district: RunningHub, browser: aiohttp.ClientSession
) -> None:
    pages = Pages(district, browser)
    status, _, resp = await pages.get("/")
    assert status == 303 and resp.headers["Location"] == "/login?next=%2F"
    status, html, resp = await pages.get("/login")
    assert status == 200 and "审批人员登录" in html
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]

    status, html, _ = await pages.post("/login", {"staff": REVIEWER, "password": PASSWORD})
    assert status == 403 and "页面已过期" in html
    token = token_of((await pages.get("/login"))[1])
    status, html, resp = await pages.post(
        "/login", {"staff": REVIEWER, "password": "错误的密码", "csrf_token": token}
    )
    assert status == 401 and "工号或密码错误。" in html and "tb_hub_session" not in resp.cookies
    status, _, resp = await pages.post(
        "/login", {"staff": REVIEWER, "password": PASSWORD, "csrf_token": token, "next": "/status"}
    )
    assert status == 303 and resp.headers["Location"] == "/status"
    cookie = resp.cookies["tb_hub_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"

    status, html, _ = await pages.get("/")
    assert status == 200 and "没有待办的办件" in html and "工作人员 hp-shenhe" in html
    csrf = token_of(html)
    status, html, _ = await pages.post("/logout", {})
    assert status == 403 and "页面已过期" in html
    status, _, resp = await pages.post("/logout", {"csrf_token": csrf})
    assert status == 303 and resp.headers["Location"] == "/login"
    assert (await pages.get("/"))[0] == 303


async def test_queue_and_case_file_show_masked_data_and_viewable_materials(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    tus = Tus(district, session, VILLAGE_A)
    for data in (PNG, PDF):
        _, headers = await tus.create(sha(data), len(data))
        await tus.patch(headers["Location"], 0, data)
    number = await pushed_case(district, session, blobs={"form": [sha(PDF)], "idcard": [sha(PNG)]})
    pages = Pages(district, browser)
    await pages.login()
    status, html, _ = await pages.get("/")
    assert status == 200 and number in html and "2101**********1234" in html
    assert "210102199001011234" not in html and "13812345678" not in html

    status, html, _ = await pages.get(f"/cases/{number}")
    assert status == 200 and "申请材料" in html and "办理进程" in html
    assert f'<img src="/v1/blobs/{sha(PNG)}"' in html
    assert f'<iframe src="/v1/blobs/{sha(PDF)}"' in html
    assert 'id="act-accept"' in html and 'id="act-correct"' in html
    assert 'id="act-decide"' not in html  # not before 受理
    async with browser.get(district.url.rstrip("/") + f"/v1/blobs/{sha(PNG)}") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "image/png"
    assert (await pages.get("/status"))[0] == 200


async def test_decisions_through_the_forms_need_the_csrf_token(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    number = await pushed_case(district, session)
    pages = Pages(district, browser)
    await pages.login()
    status, html, _ = await pages.post(f"/cases/{number}/accept", {"opinion": "材料齐全"})
    assert status == 403 and "页面已过期" in html
    assert (await district.hub.store.case(number)).state == "submitted"  # type: ignore[union-attr]

    status, _, resp = await pages.post(
        f"/cases/{number}/accept", {"opinion": "材料齐全", "csrf_token": pages.csrf}
    )
    assert status == 303 and resp.headers["Location"].endswith("?done=accept")
    status, html, _ = await pages.get(resp.headers["Location"])
    assert "已受理。" in html and 'id="act-decide"' in html and "材料齐全" in html

    status, html, _ = await pages.post(
        f"/cases/{number}/decide",
        {"result_code": "1", "reason": "", "opinion": "", "csrf_token": pages.csrf},
    )
    assert status == 400 and "请填写理由。" in html
    decide_form = html[html.index('id="act-decide"') :]
    assert decide_form.index("请填写理由。") < decide_form.index("</form>")

    status, _, resp = await pages.post(
        f"/cases/{number}/decide",
        {
            "result_code": "0",
            "licence_no": "和卫备字〔2026〕001号",
            "valid_until": "2031-11-22",
            "opinion": "同意",
            "reason": "",
            "csrf_token": pages.csrf,
        },
    )
    assert status == 303
    status, html, _ = await pages.get(resp.headers["Location"])
    assert "已办结" in html and "办结：出证办结" in html and "该办件当前无需本部门操作" in html
    file_ = await district.hub.store.case(number)
    assert file_ is not None and file_.state == "decided"
    [decided] = [
        e for e in await district.hub.store.events_of_case(number) if b"case.decided" in e.wire
    ]
    document = Event.from_json(decided.wire).body["result"]
    assert document["licence_no"] == "和卫备字〔2026〕001号"
    assert verify_result(document, Fed().federation()).genuine


async def test_correction_notice_lists_every_item_and_refusals_are_shown(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    number = await pushed_case(district, session)
    pages = Pages(district, browser)
    await pages.login()
    empty = {"item_target": "m:form", "item_problem": "", "csrf_token": pages.csrf}
    status, html, _ = await pages.post(f"/cases/{number}/request-correction", empty)
    assert status == 400 and "请至少列出一项需要补正的内容。" in html

    form = aiohttp.FormData()
    for target, problem in [("m:form", "申请表未签字"), ("m:idcard", "身份证复印件不清晰")]:
        form.add_field("item_target", target)
        form.add_field("item_problem", problem)
    form.add_field("item_target", "f:applicant")
    form.add_field("item_problem", "")
    form.add_field("csrf_token", pages.csrf)
    status, _, _ = await pages.post(f"/cases/{number}/request-correction", form)
    assert status == 303
    _, html, _ = await pages.get(f"/cases/{number}")
    assert "申请表未签字" in html and "身份证复印件不清晰" in html
    assert 'id="act-accept"' not in html and 'id="act-not-accept"' in html

    status, html, _ = await pages.post(
        f"/cases/{number}/not-accept", {"reason": " ", "csrf_token": pages.csrf}
    )
    assert status == 400 and "请填写理由。" in html


async def test_markup_from_a_window_is_escaped(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    number = await pushed_case(district, session, name='<script>alert("x")</script>')
    pages = Pages(district, browser)
    await pages.login()
    for path in ("/", f"/cases/{number}"):
        status, html, _ = await pages.get(path)
        assert status == 200
        assert "<script>alert" not in html and "&lt;script&gt;alert(" in html


async def test_staff_without_a_department_get_a_clear_page(
    district: RunningHub, browser: aiohttp.ClientSession
) -> None:
    pages = Pages(district, browser)
    assert await pages.login(CLERK) == 303
    status, html, _ = await pages.get("/")
    assert status == 403 and "该工作人员不属于任何审批部门。" in html


async def test_the_queue_flags_overdue_and_deemed_accepted_cases(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    chain = Chain(VILLAGE_A)
    late = await pushed_case(district, session, chain=chain)
    waiting = await pushed_case(district, session, chain=chain)
    pages = Pages(district, browser)
    await pages.login()
    await pages.post(f"/cases/{late}/accept", {"csrf_token": pages.csrf})
    district.hub.clock = lambda: datetime.now(CST) + timedelta(days=30)
    await pages.login()  # the session of a month ago has expired
    status, html, _ = await pages.get("/")
    # The case nobody acted on counts as accepted from receipt (rule 1), so it is late too.
    assert status == 200 and "已超期 2 件" in html and "视为受理 1 件" in html
    # 电子监察: both red cards listed on the workbench, from hub.services.supervision, which
    # also decides the queue's own 已超期 flags (one source).
    cards = html[html.index('id="cards"') : html.index("</section>")]
    cards_of = {c.number: c for c in await supervision.department_cards(district.hub, "mzj")}
    assert set(cards_of) == {late, waiting}
    for number in (late, waiting):
        at = cards.index(f">{number}<")
        row = cards[cards.rindex("<tr", 0, at) : cards.index("</tr>", at)]
        assert "红牌" in row and cards_of[number].matter_name in row
        assert cards_of[number].deadline.isoformat() in row
    assert cards.count('data-card="red"') == 2 and 'data-card="yellow"' not in cards
    listed = html[html.index("</section>") :]
    row = listed[listed.index(f">{late}<") :]
    assert "已超期" in row[: row.index("</tr>")]
    row = listed[listed.index(f">{waiting}<") :]
    assert "视为受理" in row[: row.index("</tr>")]
    assert '<tr class="overdue">' in listed
    # One working day before the accepted case's deadline it is a yellow card, in the block
    # and in the queue row alike; the other is still within its acceptance window: no card.
    calendar = district.hub.view.require().home.calendar
    due = calendar.add_workdays(datetime.now(CST).date(), 3).date  # 3 working days promised
    assert due is not None and due == cards_of[late].deadline
    eve = due - timedelta(days=1)
    while calendar.count_workdays(eve, due) < 1:
        eve -= timedelta(days=1)
    district.hub.clock = lambda: datetime.combine(eve, datetime.min.time(), CST).replace(hour=10)
    status, html, _ = await pages.get("/")
    assert status == 200 and "即将到期 1 件" in html and "已超期" not in html
    cards = html[html.index('id="cards"') : html.index("</section>")]
    assert 'data-card="yellow"' in cards and "黄牌" in cards and f">{late}<" in cards
    assert f">{waiting}<" not in cards
    listed = html[html.index("</section>") :]
    assert '<tr class="near">' in listed and '<tr class="overdue">' not in listed
