"""The JSON API: login, CSRF, rate limit, matters, cases (multipart), list, detail, sync."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api import read_application
from node.app import build_app
from node.metrics import NodeMetrics
from node.services.accept import accept_application
from node.services.auth import Auth
from node.services.context import NodeContext
from protocol.http.blobs import sha256_hex
from tests.protocol.fed import ANNUAL, LAWYER, RELIEF

from .conftest import STATION_ID, Initialised, login
from .helpers import resident_id

SCAN = b"%PDF-1.4 scanned application form" * 200


def case_form(matter: str = ANNUAL, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    values = {
        "matter": matter,
        "applicant_name": "张三",
        "applicant_id_type": "111",
        "applicant_id_number": resident_id(),
        "phone": "13812345678",
        **fields,
    }
    for name, value in values.items():
        form.add_field(name, value)
    form.add_field("file.form", SCAN, filename="申请表.pdf", content_type="application/pdf")
    return form


async def test_login_session_logout(api: TestClient, station: Initialised) -> None:
    assert (await api.get("/api/session")).status == 401
    csrf = await login(api, station.password)
    resp = await api.get("/api/session")
    body = await resp.json()
    assert body["clerk"]["username"] == "admin" and body["clerk"]["role"] == "admin"
    assert body["clerk"]["must_change_password"] is True
    assert body["csrf_token"] == csrf
    cookie = resp.cookies  # the session cookie is HttpOnly and SameSite=Strict
    del cookie
    assert (await api.post("/api/logout", headers={"X-CSRF-Token": csrf})).status == 204
    assert (await api.get("/api/session")).status == 401


async def test_wrong_password_is_refused_then_rate_limited(
    api: TestClient, station: Initialised
) -> None:
    for _ in range(5):
        resp = await api.post("/api/login", json={"username": "admin", "password": "nope"})
        assert resp.status == 401
        assert (await resp.json())["message"] == "用户名或密码错误。"
    resp = await api.post("/api/login", json={"username": "admin", "password": station.password})
    assert resp.status == 429
    assert (await resp.json())["error"] == "too_many_attempts"
    assert (await api.get("/api/session")).status == 401


async def test_unknown_user_costs_a_failure_too(api: TestClient) -> None:
    resp = await api.post("/api/login", json={"username": "ghost", "password": "whatever1"})
    assert resp.status == 401


async def test_state_changing_requests_need_the_csrf_token(
    api: TestClient, station: Initialised
) -> None:
    csrf = await login(api, station.password)
    resp = await api.post("/api/cases", data=case_form())
    assert resp.status == 403
    assert (await resp.json())["error"] == "csrf_failed"
    resp = await api.post("/api/cases", data=case_form(), headers={"X-CSRF-Token": "forged"})
    assert resp.status == 403
    resp = await api.post(
        "/api/cases",
        data=case_form(),
        headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
    )
    assert resp.status == 403 and (await resp.json())["error"] == "bad_origin"
    listed = await (await api.get("/api/cases")).json()
    assert listed["total"] == 0
    resp = await api.post("/api/cases", data=case_form(), headers={"X-CSRF-Token": csrf})
    assert resp.status == 201, await resp.text()


async def test_create_list_search_and_detail(
    api: TestClient, station: Initialised, ctx: NodeContext
) -> None:
    csrf = await login(api, station.password)
    headers = {"X-CSRF-Token": csrf}
    resp = await api.post("/api/cases", data=case_form(), headers=headers)
    assert resp.status == 201
    receipt = await resp.json()
    number = receipt["number"]
    assert number == f"{STATION_ID}-20261123-0001"
    assert receipt["deadline"]["date"] == "2026-11-30"
    assert receipt["materials"][0]["files"] == 1
    assert resident_id() not in await resp.text()
    assert ctx.blobs.read(sha256_hex(SCAN)) == SCAN

    other = case_form(applicant_name="李四", applicant_id_number=resident_id("21010319850505001"))
    assert (await api.post("/api/cases", data=other, headers=headers)).status == 201

    everything = await (await api.get("/api/cases")).json()
    assert everything["total"] == 2
    assert [c["applicant"]["name"] for c in everything["cases"]] == ["李四", "张三"]
    for query, names in [("张", ["张三"]), (number, ["张三"]), (resident_id(), ["张三"])]:
        found = await (await api.get("/api/cases", params={"q": query})).json()
        assert [c["applicant"]["name"] for c in found["cases"]] == names
    text = await (await api.get("/api/cases")).text()
    assert resident_id() not in text and "2101**********" in text

    detail = await (await api.get(f"/api/cases/{number}")).json()
    assert detail["case"]["state_label"] == "收件"
    assert detail["timeline"][0]["text"] == "站点 210102001001 收件"
    assert detail["timeline"][0]["synced"] is False
    assert detail["materials"][0]["files"][0]["name"] == "申请表.pdf"
    assert detail["materials"][0]["files"][0]["uploaded"] is False
    assert detail["actions"]["deliver"] is False
    assert detail["receipt"]["number"] == number
    assert (await (await api.get(f"/api/cases/{number}/receipt")).json())["number"] == number

    blob = await api.get(f"/api/blobs/{sha256_hex(SCAN)}")
    assert blob.status == 200 and await blob.read() == SCAN
    assert blob.headers["Content-Type"] == "application/pdf"
    assert (await api.get(f"/api/blobs/{'0' * 64}")).status == 404
    assert (await api.get("/api/cases/nope")).status == 404


async def test_a_material_is_served_by_what_it_is_not_what_it_claimed(
    api: TestClient, station: Initialised
) -> None:
    csrf = await login(api, station.password)
    trap = b"<html><script>alert(document.cookie)</script></html>"
    form = case_form()
    form.add_field("file.form", trap, filename="scan.png", content_type="image/png")
    assert (await api.post("/api/cases", data=form, headers={"X-CSRF-Token": csrf})).status == 201
    served = await api.get(f"/api/blobs/{sha256_hex(trap)}")
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    scan = await api.get(f"/api/blobs/{sha256_hex(SCAN)}")
    assert scan.headers["Content-Disposition"].startswith("inline;")


async def test_json_application_and_field_errors(api: TestClient, station: Initialised) -> None:
    csrf = await login(api, station.password)
    headers = {"X-CSRF-Token": csrf}
    application = {
        "matter": LAWYER,
        "applicant": {"name": "张三", "id_type": "111", "id_number": resident_id()},
        "materials": [{"id": "form"}, {"id": "idcard"}, {"id": "nocrime", "mode": "pledged"}],
        "pledge": {"text": "本人承诺无犯罪记录"},
    }
    form = aiohttp.FormData()
    form.add_field("application", json.dumps(application), content_type="application/json")
    form.add_field("file.idcard", b"id scan", filename="id.jpg", content_type="image/jpeg")
    resp = await api.post("/api/cases", data=form, headers=headers)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["pledged"] == ["无犯罪记录证明"]

    application["materials"] = [{"id": "form"}]
    resp = await api.post("/api/cases", json=application, headers=headers)
    assert resp.status == 422
    body = await resp.json()
    assert body == {
        "error": "missing_material",
        "message": "缺少必交材料：身份证、无犯罪记录证明。",
        "detail": "",
        "field": "materials",
    }
    resp = await api.post(
        "/api/cases", data=case_form(RELIEF, location="210103001001"), headers=headers
    )
    assert resp.status == 422 and (await resp.json())["error"] == "out_of_scope"


async def test_deliver_is_refused_before_the_decision(
    api: TestClient, station: Initialised
) -> None:
    csrf = await login(api, station.password)
    headers = {"X-CSRF-Token": csrf}
    number = (await (await api.post("/api/cases", data=case_form(), headers=headers)).json())[
        "number"
    ]
    resp = await api.post(
        f"/api/cases/{number}/deliver",
        json={"collector": "张三", "method": "窗口领取"},
        headers=headers,
    )
    assert resp.status == 409
    assert (await resp.json())["message"] == "办件尚未办结，不能出件（当前状态：收件）。"


async def test_matters_station_sync_and_metrics(api: TestClient, station: Initialised) -> None:
    await login(api, station.password)
    found = await (await api.get("/api/matters", params={"q": "律师"})).json()
    assert found == {"matters": []}  # the test catalog names matters 事项 <code>
    found = await (await api.get("/api/matters", params={"q": ANNUAL})).json()
    assert [m["code"] for m in found["matters"]] == [ANNUAL]
    detail = await (await api.get(f"/api/matters/{ANNUAL}")).json()
    assert detail["materials"][0]["name"] == "申请表"
    info = await (await api.get("/api/station")).json()
    assert info["id"] == STATION_ID and info["config"]["serial"] == 1
    assert info["id_types"]["111"] == "居民身份证"
    sync = await (await api.get("/api/sync")).json()
    assert sync["online"] is False and sync["label"] == "同步未运行"
    assert sync["waiting"] == {"events": 0, "event_bytes": 0, "blobs": 0, "blob_bytes": 0}
    assert sync["config"]["freshness"] == "fresh" and sync["config"]["warning"] is None
    assert (await (await api.get("/api/quarantine")).json()) == {"items": []}
    metrics = await (await api.get("/metrics")).text()
    assert "tongban_node_events_pushed_total" in metrics
    assert (await api.get("/healthz")).status == 200


async def test_clerks_and_passwords(api: TestClient, station: Initialised) -> None:
    csrf = await login(api, station.password)
    headers = {"X-CSRF-Token": csrf}
    resp = await api.post(
        "/api/clerks", json={"username": "wang", "display_name": "王窗口"}, headers=headers
    )
    assert resp.status == 201
    created = await resp.json()
    assert created["clerk"]["role"] == "clerk"
    resp = await api.post(
        "/api/password",
        json={"old_password": station.password, "new_password": "a-much-better-one"},
        headers=headers,
    )
    assert resp.status == 204
    assert (await api.get("/api/session")).status == 200  # this session stays

    clerk_csrf = await login(api, created["initial_password"], "wang")
    resp = await api.get("/api/clerks")
    assert resp.status == 403
    assert (await api.get("/api/cases")).status == 200
    del clerk_csrf


@pytest.mark.parametrize("path", ["/api/cases", "/api/sync", "/api/matters", "/api/quarantine"])
async def test_api_needs_a_session(api: TestClient, path: str) -> None:
    resp = await api.get(path)
    assert resp.status == 401
    assert (await resp.json())["error"] == "login_required"


async def test_html_forms_check_their_csrf_field(
    ctx: NodeContext,
    station: Initialised,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    """How the window pages (outside /api/) post the 新建办件 form."""
    app = build_app(ctx, Auth(ctx.store), NodeMetrics())

    async def new_case(request: web.Request) -> web.Response:
        application = await read_application(request, form_csrf=True)
        receipt = await accept_application(ctx, application)
        return web.json_response({"number": receipt["number"]})

    app.router.add_post("/cases/new", new_case)
    client = await aiohttp_client(app)
    csrf = await login(client, station.password)
    resp = await client.post("/cases/new", data=case_form())
    assert resp.status == 403 and (await resp.json())["error"] == "csrf_failed"
    form = case_form()
    form.add_field("csrf_token", csrf)
    resp = await client.post("/cases/new", data=form)
    assert resp.status == 200
    assert (await resp.json())["number"].endswith("-0001")
