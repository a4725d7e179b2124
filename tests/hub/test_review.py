"""The workbench API: login, CSRF, lockout, queue, case file, decisions sealed and routed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hub.services.staff import MAX_FAILURES, set_password
from protocol.seal import verify_result
from protocol.sync import FeedPage
from tests.hub.clients import Tus
from tests.hub.conftest import RunningHub, StartHub
from tests.hub.fed import (
    CLERK,
    HP_MZJ,
    PASSWORD,
    REVIEWER,
    VILLAGE_A,
    VILLAGE_B,
    Chain,
    Fed,
    sha,
    submit,
    wire,
)


@pytest.fixture
async def district(start_hub: StartHub, session: aiohttp.ClientSession) -> RunningHub:
    running = await start_hub()
    await set_password(running.hub, REVIEWER, PASSWORD)
    await set_password(running.hub, CLERK, PASSWORD)
    return running


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A cookie-keeping client, like the workbench page in a browser."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


class Workbench:
    def __init__(self, hub: RunningHub, browser: aiohttp.ClientSession) -> None:
        self.hub, self.browser = hub, browser
        self.csrf = ""

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, csrf: bool = True
    ) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if csrf and self.csrf else {}
        url = self.hub.url.rstrip("/") + path
        async with self.browser.request(method, url, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def login(self, staff: str = REVIEWER, password: str = PASSWORD) -> tuple[int, Any]:
        status, answer = await self.call(
            "POST", "/api/login", {"staff": staff, "password": password}, csrf=False
        )
        if status == 200:
            self.csrf = answer["csrf"]
        return status, answer


async def submitted_case(hub: RunningHub, session: aiohttp.ClientSession) -> str:
    chain = Chain(VILLAGE_A)
    event = submit(chain, pickup=VILLAGE_B)
    await hub.client(VILLAGE_A, session).push(wire(event))
    assert event.case is not None
    return event.case


async def test_reviewer_accepts_and_approves_with_a_sealed_result(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    number = await submitted_case(district, session)
    bench = Workbench(district, browser)
    status, me = await bench.login()
    assert (status, me["department"], me["roles"]) == (200, "mzj", ["reviewer"])

    status, answer = await bench.call("GET", "/api/queue")
    [row] = answer["cases"]
    assert (row["number"], row["state"], row["state_label"]) == (number, "submitted", "收件")
    assert row["applicant"] == {"name": "张三", "id_masked": "2101**********1234"}

    status, answer = await bench.call(
        "POST", f"/api/cases/{number}/accept", {"opinion": "材料齐全"}
    )
    assert (status, answer["state"]) == (200, "accepted")
    status, answer = await bench.call(
        "POST", f"/api/cases/{number}/decide", {"result_code": 0, "opinion": "同意"}
    )
    assert (status, answer["state"], answer["state_label"]) == (200, "decided", "办结")
    check = verify_result(answer["result"], Fed().federation())
    assert check.genuine, check
    assert check.authority == HP_MZJ

    status, file = await bench.call("GET", f"/api/cases/{number}")
    assert status == 200
    assert [e["type"] for e in file["timeline"]] == [
        "case.submitted",
        "case.accepted",
        "case.decided",
    ]
    assert file["timeline"][1]["by"] == REVIEWER and file["timeline"][1]["opinion"] == "材料齐全"
    assert file["materials"][0]["blobs"][0]["url"].startswith("/v1/blobs/")
    assert file["deadline"]["date"] is not None
    assert file["actions"] == []
    status, answer = await bench.call("GET", "/api/queue")
    assert answer["cases"] == []

    # The decision reaches the accepting window and the pickup window through their feeds.
    for window in (VILLAGE_A, VILLAGE_B):
        page = FeedPage.from_dict(await district.client(window, session).feed(None, 0))
        kinds = [(e.type, e.author, e.body.get("by")) for e in page.events]
        # The pickup window got the submission too, so it can fold the case (出件).
        submitted = [("case.submitted", VILLAGE_A, None)] if window == VILLAGE_B else []
        assert kinds == [
            *submitted,
            ("case.accepted", district.hub.me, REVIEWER),
            ("case.decided", district.hub.me, REVIEWER),
        ]
    assert (await district.hub.store.chain_head(district.hub.me))[0] == 2


async def test_staff_can_view_the_materials(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    scan = b"%PDF-1.7 " + bytes(range(256)) * 10
    tus = Tus(district, session, VILLAGE_A)
    _, headers = await tus.create(sha(scan), len(scan))
    await tus.patch(headers["Location"], 0, scan)
    chain = Chain(VILLAGE_A)
    event = submit(chain, blobs={"idcard": [sha(scan)]})
    await district.client(VILLAGE_A, session).push(wire(event))
    bench = Workbench(district, browser)
    await bench.login()
    _, file = await bench.call("GET", f"/api/cases/{event.case}")
    [link] = [b for m in file["materials"] if m["id"] == "idcard" for b in m["blobs"]]
    assert link["held"]
    async with browser.get(district.url.rstrip("/") + link["url"]) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/pdf"
        assert await resp.read() == scan
    async with session.get(district.url.rstrip("/") + link["url"]) as resp:
        assert resp.status == 401  # neither a session nor a signed request


async def test_state_changes_need_the_csrf_token(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    number = await submitted_case(district, session)
    bench = Workbench(district, browser)
    await bench.login()
    status, answer = await bench.call("POST", f"/api/cases/{number}/accept", {}, csrf=False)
    assert (status, answer["error"]) == (403, "bad_csrf")
    bench.csrf = "forged"
    status, answer = await bench.call("POST", f"/api/cases/{number}/accept", {})
    assert (status, answer["error"]) == (403, "bad_csrf")
    assert (await district.hub.store.case(number)).state == "submitted"  # type: ignore[union-attr]


async def test_no_session_no_workbench(
    district: RunningHub, browser: aiohttp.ClientSession
) -> None:
    status, answer = await Workbench(district, browser).call("GET", "/api/queue")
    assert (status, answer["error"]) == (401, "not_logged_in")


async def test_repeated_failures_lock_the_account(
    district: RunningHub, browser: aiohttp.ClientSession
) -> None:
    bench = Workbench(district, browser)
    for _ in range(MAX_FAILURES):
        status, answer = await bench.login(password="错误的密码")
        assert (status, answer["error"]) == (401, "bad_login")
    status, answer = await bench.login()  # even the right password, for now
    assert (status, answer["error"]) == (429, "locked_out")
    status, answer = await bench.login(staff="nobody")
    assert (status, answer["error"]) == (401, "bad_login")


async def test_the_fold_is_the_rule_book(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    number = await submitted_case(district, session)
    bench = Workbench(district, browser)
    await bench.login()
    status, answer = await bench.call("POST", f"/api/cases/{number}/decide", {"result_code": 0})
    assert (status, answer["error"]) == (400, "illegal_transition")
    status, answer = await bench.call("POST", f"/api/cases/{number}/not-accept", {"opinion": "x"})
    assert (status, answer["error"]) == (400, "missing_reason")
    assert (await district.hub.store.chain_head(district.hub.me))[0] == 0
    status, answer = await bench.call(
        "POST", f"/api/cases/{number}/not-accept", {"reason": "不属于本部门受理范围"}
    )
    assert (status, answer["state"]) == (200, "not_accepted")


async def test_staff_without_the_department_sees_nothing(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    number = await submitted_case(district, session)
    bench = Workbench(district, browser)
    await bench.login(CLERK)
    status, answer = await bench.call("GET", "/api/queue")
    assert (status, answer["error"]) == (403, "wrong_department")
    status, answer = await bench.call("GET", f"/api/cases/{number}")
    assert (status, answer["error"]) == (403, "wrong_department")


async def test_correction_then_step_then_denial(
    district: RunningHub, session: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    number = await submitted_case(district, session)
    bench = Workbench(district, browser)
    await bench.login()
    items = [{"problem": "身份证复印件不清晰", "material": "idcard"}]
    status, answer = await bench.call(
        "POST", f"/api/cases/{number}/request-correction", {"items": items}
    )
    assert (status, answer["state_label"]) == (200, "补正")
    _, file = await bench.call("GET", f"/api/cases/{number}")
    assert file["items"] == [{"problem": "身份证复印件不清晰", "material": "idcard", "field": None}]
    assert file["actions"] == ["not-accept"]
    chain = Chain(VILLAGE_A)
    chain.seq, chain.head = 1, (await district.hub.store.chain_head(VILLAGE_A))[1]
    corrected = chain.next(
        "case.corrected",
        case=number,
        to=(HP_MZJ,),
        body={
            "materials": [{"id": m, "mode": "provided", "blobs": []} for m in ("form", "idcard")]
        },
    )
    await district.client(VILLAGE_A, session).push(wire(corrected))
    await bench.call("POST", f"/api/cases/{number}/accept", {})
    status, answer = await bench.call(
        "POST", f"/api/cases/{number}/step", {"outcome": "pass", "opinion": "不符合条件"}
    )
    assert (status, answer["state"]) == (200, "in_review")
    status, answer = await bench.call(
        "POST", f"/api/cases/{number}/decide", {"result_code": 1, "reason": "不符合救助条件"}
    )
    assert (status, answer["state"], answer["result"]) == (200, "decided", None)
    _, file = await bench.call("GET", f"/api/cases/{number}")
    assert [s["by"] for s in file["steps_taken"]] == [REVIEWER]
    assert (file["result_code"], file["reason"]) == (1, "不符合救助条件")
