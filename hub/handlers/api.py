"""The workbench JSON API (``/api/…``): staff login, queue, case file, decisions.

Sessions are a cookie (:data:`~hub.services.staff.SESSION_COOKIE`, HttpOnly, SameSite=Strict);
every POST but login must carry the session's CSRF token in ``X-CSRF-Token`` (or a
``csrf_token`` form field).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from protocol.errors import RemoteProtocolError

from ..services import review, staff
from ..services.staff import CSRF_HEADER, SESSION_COOKIE, StaffSession
from ..services.status import operator_status
from .common import hub_of

MAX_API_BYTES: Final = 256 * 1024


async def _payload(request: web.Request) -> dict[str, Any]:
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    raw = await request.content.read(MAX_API_BYTES + 1)
    if len(raw) > MAX_API_BYTES:
        raise RemoteProtocolError("body_too_large", "请求过大")
    return dict(review.loads_payload(raw))


async def _session(request: web.Request, *, post: dict[str, Any] | None = None) -> StaffSession:
    hub = hub_of(request)
    session = await staff.session_of(hub, request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise RemoteProtocolError("not_logged_in", "请先登录")
    if request.method == "POST":
        presented = request.headers.get(CSRF_HEADER) or (post or {}).get("csrf_token")
        staff.check_csrf(session, presented)
    return session


def _who(session: StaffSession) -> dict[str, Any]:
    s = session.staff
    return {
        "staff": s.id,
        "name": s.name,
        "member": s.member,
        "department": s.department,
        "roles": list(s.roles),
        "csrf": session.csrf,
    }


async def login(request: web.Request) -> web.Response:
    hub = hub_of(request)
    payload = await _payload(request)
    staff_id, password = payload.get("staff"), payload.get("password")
    if not isinstance(staff_id, str) or not isinstance(password, str):
        raise RemoteProtocolError("bad_request", "请输入工号和密码")
    token, session = await staff.login(hub, staff_id, password)
    response = web.json_response(_who(session))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(staff.SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="Strict",
        secure=(hub.settings.public_base or "").startswith("https://"),
        path="/",
    )
    return response


async def logout(request: web.Request) -> web.Response:
    session = await _session(request, post=await _payload(request))
    await staff.logout(hub_of(request), session)
    response = web.json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    return web.json_response(_who(await _session(request)))


async def queue(request: web.Request) -> web.Response:
    session = await _session(request)
    return web.json_response({"cases": await review.queue(hub_of(request), session)})


async def tasks(request: web.Request) -> web.Response:
    """核查 and 差评回访 work items of the staff member's department."""
    session = await _session(request)
    return web.json_response(await review.tasks(hub_of(request), session))


async def case_file(request: web.Request) -> web.Response:
    session = await _session(request)
    number = request.match_info["number"]
    return web.json_response(await review.case_file(hub_of(request), session, number))


async def act(request: web.Request) -> web.Response:
    payload = await _payload(request)
    session = await _session(request, post=payload)
    number, action = request.match_info["number"], request.match_info["action"]
    answer = await review.act(hub_of(request), session, number, action, payload)
    return web.json_response(answer)


async def status(request: web.Request) -> web.Response:
    await _session(request)
    return web.json_response(await operator_status(hub_of(request)))
