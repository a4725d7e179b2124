"""The window pages: login/logout, CSRF on every form, escaping, the application form,
the receipt, the case page with the result and 出件, the list, the quarantine page."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp.test_utils import TestClient

from node.app import build_app
from node.metrics import NodeMetrics
from node.services.auth import Auth
from node.services.context import NodeContext
from protocol.http.server import RUNNER_KWARGS
from tests.protocol.fed import ANNUAL, FOOD, VILLAGE

from .conftest import Initialised, Synced
from .helpers import MONDAY, HubSigner, resident_id
from .test_sync import sync

PDF = b"%PDF-1.4 a scanned application form" * 50
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def token_of(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match is not None, html[:500]
    return match.group(1)


async def page_login(client: TestClient, password: str) -> str:
    """Log in through the login page; returns the session's CSRF token (from a page)."""
    form_page = await client.get("/login")
    token = token_of(await form_page.text())
    resp = await client.post(
        "/login",
        data={"username": "admin", "password": password, "csrf_token": token, "next": "/cases"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/cases"
    return token_of(await (await client.get("/cases")).text())


def application_form(csrf: str | None, name: str = "张三", **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    values = {
        "matter": ANNUAL,
        "applicant_name": name,
        "applicant_id_type": "111",
        "applicant_id_number": resident_id(),
        "phone": "13812345678",
        "location": "",
        "pickup": VILLAGE,
        "material.form": "provided",
        **fields,
    }
    if csrf is not None:
        values["csrf_token"] = csrf
    for key, value in values.items():
        form.add_field(key, value)
    form.add_field("file.form", PDF, filename="申请表.pdf", content_type="application/pdf")
    return form


async def submit(client: TestClient, csrf: str | None, **fields: str) -> aiohttp.ClientResponse:
    return await client.post(
        f"/new/{ANNUAL}", data=application_form(csrf, **fields), allow_redirects=False
    )


async def test_login_page_sets_a_strict_session_cookie_and_logout_ends_it(
    api: TestClient, station: Initialised
) -> None:
    resp = await api.get("/cases", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=%2Fcases")
    page = await api.get("/login")
    html = await page.text()
    assert page.status == 200 and "窗口人员登录" in html
    assert "tb_login_csrf" in page.headers["Set-Cookie"]
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]

    # No token, then a wrong password: no session either way.
    resp = await api.post(
        "/login", data={"username": "admin", "password": station.password}, allow_redirects=False
    )
    assert resp.status == 403 and "页面已过期" in await resp.text()
    token = token_of(html)
    resp = await api.post(
        "/login",
        data={"username": "admin", "password": "wrong-password", "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 401 and "用户名或密码错误。" in await resp.text()
    assert "tongban_session" not in resp.cookies

    resp = await api.post(
        "/login",
        data={"username": "admin", "password": station.password, "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/"
    cookie = resp.cookies["tongban_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"

    page = await api.get("/cases")
    html = await page.text()
    assert page.status == 200 and "办件列表" in html and "同步未运行" in html
    assert page.headers["Cache-Control"] == "no-store"
    csrf = token_of(html)

    resp = await api.post("/logout", data={}, allow_redirects=False)
    assert resp.status == 403  # no CSRF token: still logged in
    assert (await api.get("/cases", allow_redirects=False)).status == 200
    resp = await api.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert (await api.get("/cases", allow_redirects=False)).status == 303
    assert (await api.get("/api/session")).status == 401


async def test_every_page_renders_with_the_sync_bar(api: TestClient, station: Initialised) -> None:
    await page_login(api, station.password)
    for path, text in [
        ("/new", "选择事项"),
        (f"/new?q={ANNUAL}", ANNUAL),
        (f"/new/{ANNUAL}", "申请材料"),
        (f"/new/{FOOD}", "容缺后补"),
        ("/cases", "还没有办件"),
        ("/quarantine", "隔离区为空"),
        ("/password", "修改密码"),
    ]:
        resp = await api.get(path)
        html = await resp.text()
        assert resp.status == 200, (path, html)
        assert text in html, path
        assert 'class="syncbar' in html and "配置版本：1" in html, path
    assert "待上报：0 条记录" in await (await api.get("/sync-bar")).text()
    assert (await api.get("/", allow_redirects=False)).headers["Location"] == "/new"
    css = await api.get("/static/tongban.css")
    assert css.status == 200 and css.content_type == "text/css"
    assert (await api.get("/static/__init__.py")).status == 404
    resp = await api.get("/new/NO-SUCH-MATTER")
    assert resp.status == 404 and "事项目录中没有该事项。" in await resp.text()


async def test_the_application_form_needs_the_csrf_token(
    api: TestClient, station: Initialised, ctx: NodeContext
) -> None:
    csrf = await page_login(api, station.password)
    for token in (None, "forged"):
        resp = await submit(api, token)
        assert resp.status == 403 and "页面已过期" in await resp.text()
    assert (await ctx.store.list_cases(text=None, id_hash=None, state=None, limit=10, offset=0))[
        1
    ] == 0
    resp = await submit(api, csrf)
    assert resp.status == 303, re.findall(r"notice-error[^>]*>([^<]+)<", await resp.text())
    assert resp.headers["Location"].endswith("/receipt")


async def test_accept_print_the_receipt_and_list_it(api: TestClient, station: Initialised) -> None:
    csrf = await page_login(api, station.password)
    resp = await submit(api, csrf)
    receipt = await api.get(resp.headers["Location"])
    html = await receipt.text()
    number = re.search(r'id="case-number">([^<]+)<', html)
    assert number is not None and number.group(1).startswith(f"{VILLAGE}-")
    assert "受理回执" in html and "<svg" in html and "data-print" in html
    assert "2101**********" in html and resident_id() not in html
    assert "13812345678" not in html  # the phone stays in the station's database

    listing = await (await api.get("/cases", params={"q": "张三"})).text()
    assert number.group(1) in listing and resident_id() not in listing
    listing = await (await api.get("/cases", params={"q": resident_id()})).text()
    assert number.group(1) in listing  # a whole ID number finds the case (by hash)
    listing = await (await api.get("/cases", params={"state": "decided"})).text()
    assert "没有符合条件的办件" in listing

    case_page = await (await api.get(f"/cases/{number.group(1)}")).text()
    assert "收件" in case_page and "待上报" in case_page and "申请表.pdf" in case_page
    assert resident_id() not in case_page
    stamp = await (await api.get(f"/cases/{number.group(1)}/stamp")).text()
    assert stamp == "submitted:1"
    resp = await api.get(f"/cases/{number.group(1)}/result")
    assert resp.status == 409 and "尚未办结" in await resp.text()


async def test_markup_in_the_applicant_name_is_escaped(
    api: TestClient, station: Initialised
) -> None:
    csrf = await page_login(api, station.password)
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    resp = await submit(api, csrf, name=payload[:50])
    assert resp.status == 303
    for path in (resp.headers["Location"], "/cases"):
        html = await (await api.get(path)).text()
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(" in html


async def test_a_refusal_is_shown_next_to_its_field_and_keeps_the_form(
    api: TestClient, station: Initialised, ctx: NodeContext
) -> None:
    csrf = await page_login(api, station.password)
    resp = await submit(api, csrf, applicant_id_number="210102199001011230")
    html = await resp.text()
    assert resp.status == 422
    field = html[html.index('name="applicant_id_number"') :]
    assert field.index("居民身份证号码有误") < field.index("</label>")
    assert 'value="张三"' in html and "请重新选择要上传的材料文件" in html

    resp = await submit(api, csrf, **{"material.form": "deferred"})
    assert resp.status == 422 and "不允许容缺受理" in await resp.text()
    resp = await submit(api, csrf, matter=FOOD)
    assert resp.status == 400 and "事项与页面不一致" in await resp.text()
    assert (await ctx.store.list_cases(text=None, id_hash=None, state=None, limit=10, offset=0))[
        1
    ] == 0


async def test_the_result_arrives_and_the_clerk_records_delivery(
    synced: Synced,
    station: Initialised,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    app = build_app(ctx, Auth(ctx.store), NodeMetrics())
    client: TestClient = await aiohttp_client(app, server_kwargs=dict(RUNNER_KWARGS))
    csrf = await page_login(client, station.password)
    location = (await submit(client, csrf)).headers["Location"]
    number = location.split("/")[2]
    await sync(engine)
    for event in HubSigner().accept_and_approve(number, VILLAGE, MONDAY):
        hub.serve(event)
    await sync(engine)

    html = await (await client.get(f"/cases/{number}")).text()
    assert "办理结果：出证办结" in html and "电子签章有效" in html
    assert 'action="/cases/' + number + '/deliver"' in html
    result = await (await client.get(f"/cases/{number}/result")).text()
    assert "<svg" in result and "准予备案" in result and "data-print" in result
    # the shared print view of protocol.http.web.result, the same as the hub's
    assert 'id="result-doc"' in result and "真实有效" in result

    resp = await client.post(
        f"/cases/{number}/deliver",
        data={"collector": "李四", "method": "窗口领取", "when": "", "note": ""},
        allow_redirects=False,
    )
    assert resp.status == 403  # no CSRF token
    resp = await client.post(
        f"/cases/{number}/deliver",
        data={"collector": "", "method": "窗口领取", "csrf_token": csrf},
        allow_redirects=False,
    )
    assert resp.status == 422 and "请填写领取人姓名" in await resp.text()
    resp = await client.post(
        f"/cases/{number}/deliver",
        data={
            "collector": "李四",
            "method": "窗口领取",
            "when": "2026-11-23T09:15",
            "csrf_token": csrf,
        },
        allow_redirects=False,
    )
    assert resp.status == 303
    html = await (await client.get(resp.headers["Location"])).text()
    assert "已送达" in html and "出件：李四 领取（窗口领取）" in html
    assert 'id="deliver"' not in html


async def test_quarantine_release_needs_the_token(api: TestClient, station: Initialised) -> None:
    csrf = await page_login(api, station.password)
    resp = await api.post("/quarantine/1/release", data={}, allow_redirects=False)
    assert resp.status == 403
    resp = await api.post("/quarantine/1/release", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 404 and "没有找到该隔离记录" in await resp.text()


async def test_change_the_initial_password(api: TestClient, station: Initialised) -> None:
    csrf = await page_login(api, station.password)
    assert "您仍在使用初始密码" in await (await api.get("/cases")).text()
    form = {"old_password": "wrong-password", "new_password": "新的密码-2026 ", "csrf_token": csrf}
    resp = await api.post("/password", data={**form, "repeat_password": "other"})
    assert resp.status == 422 and "两次输入的新密码不一致" in await resp.text()
    resp = await api.post("/password", data={**form, "repeat_password": form["new_password"]})
    assert resp.status == 401 and "原密码错误" in await resp.text()
    form["old_password"] = station.password
    resp = await api.post("/password", data={**form, "repeat_password": form["new_password"]})
    html = await resp.text()  # 303 to /password?done=1, followed
    assert resp.status == 200 and "密码已修改" in html and "您仍在使用初始密码" not in html
    await api.post("/logout", data={"csrf_token": csrf})
    await page_login(api, "新的密码-2026 ")  # the trailing space is part of the password
