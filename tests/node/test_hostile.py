"""Hostile input at a village station, one table: expected refusal and nothing changed.

Each row sends one hostile request to the station app (JSON API or HTML form) of a station
that already holds one accepted case, and asserts the status and error reason, then that no
table changed but the login bookkeeping (sessions, failed-login counts). The markup/SQL test
renders a case whose text fields carry ``<script>`` and ``'; DROP TABLE events; --``.
Hub-side rows are in tests/hub/test_hostile.py (issue 8).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from node.services.context import NodeContext
from node.storage import models
from tests.node.conftest import Initialised, login
from tests.node.helpers import resident_id
from tests.node.test_api import case_form
from tests.node.test_pages import submit, token_of
from tests.protocol.fed import ANNUAL

LOGIN_BOOKKEEPING = {"sessions", "login_failures"}
SCRIPT = "<script>alert(1)</script>"
SQL = "'; DROP TABLE events; --"


async def node_counts(ctx: NodeContext) -> dict[str, int]:
    """Rows per table of the station's database."""
    from sqlalchemy import func, select
    from sqlalchemy.engine import Connection

    def txn(c: Connection) -> dict[str, int]:
        return {
            name: int(c.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in models.metadata.tables.items()
        }

    return await ctx.store.db.read(txn)


@dataclass
class Ctx:
    api: TestClient
    station: Initialised
    csrf: str
    case: str

    async def json_post(
        self, path: str, body: Any = None, *, csrf: str | None = "", **kw: Any
    ) -> tuple[int, str]:
        headers = dict(kw.pop("headers", {}))
        token = self.csrf if csrf == "" else csrf
        if token is not None:
            headers["X-CSRF-Token"] = token
        resp = await self.api.post(path, headers=headers, **({"json": body} | kw))
        return resp.status, await reason(resp)


async def reason(resp: aiohttp.ClientResponse) -> str:
    text = await resp.text()
    try:
        answer = json.loads(text)
    except ValueError:
        return "页面已过期" if "页面已过期" in text else text[:200]
    return str(answer.get("error", "")) if isinstance(answer, dict) else ""


Run = Callable[[Ctx], Awaitable[tuple[int, str]]]
CASES: dict[str, tuple[Run, int, str]] = {}


def case(name: str, status: int, why: str) -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        CASES[name] = (run, status, why)
        return run

    return register


@case("API POST without a CSRF token", 403, "csrf_failed")
async def _no_csrf(ctx: Ctx) -> tuple[int, str]:
    return await ctx.json_post("/api/cases", data=case_form(), csrf=None)


@case("API POST with a forged CSRF token", 403, "csrf_failed")
async def _forged_csrf(ctx: Ctx) -> tuple[int, str]:
    return await ctx.json_post("/api/cases", data=case_form(), csrf="forged")


@case("API POST from another origin", 403, "bad_origin")
async def _origin(ctx: Ctx) -> tuple[int, str]:
    return await ctx.json_post(
        "/api/cases", data=case_form(), headers={"Origin": "http://evil.example"}
    )


@case("form POST without a CSRF token", 403, "页面已过期")
async def _form_no_csrf(ctx: Ctx) -> tuple[int, str]:
    resp = await submit(ctx.api, None)
    return resp.status, await reason(resp)


@case("form POST with a forged CSRF token", 403, "页面已过期")
async def _form_forged(ctx: Ctx) -> tuple[int, str]:
    resp = await submit(ctx.api, "forged")
    return resp.status, await reason(resp)


@case("deliver form without a CSRF token", 403, "页面已过期")
async def _deliver_no_csrf(ctx: Ctx) -> tuple[int, str]:
    resp = await ctx.api.post(
        f"/cases/{ctx.case}/deliver", data={"collector": "x"}, allow_redirects=False
    )
    return resp.status, await reason(resp)


@case("API without a session", 401, "login_required")
async def _no_session(ctx: Ctx) -> tuple[int, str]:
    await ctx.api.post("/api/logout", headers={"X-CSRF-Token": ctx.csrf})
    resp = await ctx.api.post("/api/cases", data=case_form())
    return resp.status, await reason(resp)


@case("login brute force (API)", 429, "too_many_attempts")
async def _brute_api(ctx: Ctx) -> tuple[int, str]:
    for _ in range(5):
        await ctx.api.post("/api/login", json={"username": "admin", "password": "nope"})
    resp = await ctx.api.post(
        "/api/login", json={"username": "admin", "password": ctx.station.password}
    )
    return resp.status, await reason(resp)


@case("login brute force (page)", 429, "too_many_attempts")
async def _brute_page(ctx: Ctx) -> tuple[int, str]:
    await ctx.api.post("/api/logout", headers={"X-CSRF-Token": ctx.csrf})
    for _ in range(5):
        token = token_of(await (await ctx.api.get("/login")).text())
        data = {"username": "admin", "password": "nope", "csrf_token": token}
        await ctx.api.post("/login", data=data, allow_redirects=False)
    token = token_of(await (await ctx.api.get("/login")).text())
    data = {"username": "admin", "password": ctx.station.password, "csrf_token": token}
    resp = await ctx.api.post("/login", data=data, allow_redirects=False)
    return resp.status, "too_many_attempts" if resp.status == 429 else (await resp.text())[:200]


@case("ID number with a wrong check character", 422, "bad_id_number")
async def _bad_id(ctx: Ctx) -> tuple[int, str]:
    form = case_form(applicant_id_number="210102199001011230")
    return await ctx.json_post("/api/cases", data=form)


@case("unknown matter", 422, "no_such_matter")
async def _unknown_matter(ctx: Ctx) -> tuple[int, str]:
    return await ctx.json_post("/api/cases", data=case_form("XX-NOPE-01"))


@case("invalid JSON", 400, "bad_request")
async def _bad_json(ctx: Ctx) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    return await ctx.json_post("/api/cases", data=b'{"matter": ', headers=headers)


@case("invalid UTF-8 in JSON", 400, "bad_request")
async def _bad_utf8(ctx: Ctx) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    return await ctx.json_post("/api/cases", data=b'{"matter": "\xff\xfe"}', headers=headers)


@case("deeply nested JSON (was a 500: RecursionError)", 400, "bad_request")
async def _deep(ctx: Ctx) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    body = b'{"matter": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    return await ctx.json_post("/api/cases", data=body, headers=headers)


@case("deeply nested JSON in a multipart application", 400, "bad_request")
async def _deep_multipart(ctx: Ctx) -> tuple[int, str]:
    form = aiohttp.FormData()
    nested = '{"matter": ' + "[" * 5000 + "]" * 5000 + "}"
    form.add_field("application", nested, content_type="application/json")
    return await ctx.json_post("/api/cases", data=form)


@case("path traversal in a blob hash", 404, "no_such_blob")
async def _traversal(ctx: Ctx) -> tuple[int, str]:
    resp = await ctx.api.get("/api/blobs/..%2F..%2Fstation.json")
    return resp.status, await reason(resp)


@case("a case number that is not ours", 404, "no_such_case")
async def _other_case(ctx: Ctx) -> tuple[int, str]:
    resp = await ctx.api.get("/api/cases/210103001001-20260101-0001")
    return resp.status, await reason(resp)


@case("deliver before the decision", 409, "not_decided")
async def _early_deliver(ctx: Ctx) -> tuple[int, str]:
    body = {"collector": "张三", "method": "窗口领取"}
    return await ctx.json_post(f"/api/cases/{ctx.case}/deliver", body)


@pytest.fixture
async def hostile(api: TestClient, station: Initialised) -> Ctx:
    csrf = await login(api, station.password)
    resp = await api.post("/api/cases", data=case_form(), headers={"X-CSRF-Token": csrf})
    assert resp.status == 201, await resp.text()
    return Ctx(api, station, csrf, (await resp.json())["number"])


@pytest.mark.parametrize("name", list(CASES))
async def test_hostile_request_is_refused_and_changes_nothing(
    hostile: Ctx, ctx: NodeContext, name: str
) -> None:
    run, status, why = CASES[name]
    before = await node_counts(ctx)
    assert await run(hostile) == (status, why)
    after = await node_counts(ctx)
    changed = {t for t in after if after[t] != before[t]} - LOGIN_BOOKKEEPING
    assert not changed, {t: (before[t], after[t]) for t in changed}


async def test_markup_and_sql_in_text_fields_are_escaped_and_inert(
    hostile: Ctx, ctx: NodeContext
) -> None:
    fields = {"applicant_name": (SCRIPT + SQL)[:50], "applicant_id_number": resident_id()}
    resp = await hostile.api.post(
        "/api/cases", data=case_form(**fields), headers={"X-CSRF-Token": hostile.csrf}
    )
    assert resp.status == 201, await resp.text()
    number = (await resp.json())["number"]
    before = await node_counts(ctx)
    for path in ("/cases", f"/cases/{number}", f"/cases/{number}/receipt", "/"):
        page = await hostile.api.get(path)
        html = await page.text()
        assert page.status == 200, path
        assert "<script>alert(1)" not in html, path
    html = await (await hostile.api.get(f"/cases/{number}")).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    search = await hostile.api.get("/api/cases", params={"q": SQL})
    assert search.status == 200
    assert await node_counts(ctx) == before  # the tables, events among them, are intact
    assert before["events"] >= 2 and before["cases"] == 2


def test_the_table_is_a_table() -> None:
    assert len(CASES) >= 15
    assert ANNUAL
