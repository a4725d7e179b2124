"""The reviewer workbench pages (HTML, in Chinese): login, 待办 queue, case file with the
actions the case allows now, and a small 状态 page.

Thin handlers over the services the workbench JSON API uses (``hub.services.staff``,
``review``, ``blobs``, ``status``); templates in ``hub/templates`` extend the shared layout
of :mod:`protocol.http.web`. Every page needs a staff session (else: to the login page),
every form carries the session's CSRF token, and a refusal by the case fold is shown in
Chinese inside the form that was posted; nothing is written then.

Routes: ``/login`` ``/logout``; ``/`` (待办); ``/cases/{n}`` (办件卷宗), POST
``/cases/{n}/{action}`` (each action of :data:`hub.services.review.ACTIONS`: 受理, 不予受理,
补正, 审查环节, 补办, 特别程序 and its end, 延长, 办结, 异常终止, 核查, 回访),
``/cases/{n}/result`` (the sealed result, printable); ``/status`` (状态). Materials open at
``/v1/blobs/{hash}`` (the session cookie is accepted there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from protocol.case import RECEIPT, RESULT_CODES, day_of
from protocol.config import Federation
from protocol.errors import ProtocolError, RemoteProtocolError
from protocol.http import web as shared
from protocol.http.web import result as sealed
from protocol.ids import member_of
from protocol.seal import verify_result

from .core import Hub
from .handlers.common import hub_of, status_of
from .logs import mask
from .services import blobs, review, staff, supervision
from .services.cases import FOLLOW_UP, VERIFY
from .services.staff import SESSION_COOKIE, StaffSession
from .services.status import operator_status

TEMPLATES: Final = web.AppKey("tongban_hub_templates", jinja2.Environment)
APP_TITLE: Final = "审批工作台"
NAV: Final = (
    {"key": "queue", "label": "待办", "href": "/"},
    {"key": "status", "label": "状态", "href": "/status"},
)
ROLE_NAMES: Final = {"acceptor": "受理", "reviewer": "审核", "approver": "签发", "clerk": "窗口"}
#: The fold's and the services' reasons, as the reviewer reads them.
REASONS: Final = {
    "illegal_transition": "办件当前状态不允许此操作（可能已被他人处理），请刷新后再看。",
    "wrong_step": "该审查环节已经处理过，请刷新后再看。",
    "wrong_role": "您没有该环节所需的岗位权限。",
    "steps_incomplete": "审查环节尚未全部通过，还不能办结。",
    "materials_outstanding": "还有容缺材料没有补齐，不能准予。",
    "unknown_material": "补正事项中的材料不在该事项的材料清单中。",
    "bad_body": "填写的内容不完整或格式有误。",
    "unknown_staff": "您的账号不在联邦配置的工作人员名单中。",
    "inactive_staff": "您的账号已停用。",
    "no_seal_key": "本枢纽没有该部门的电子印章，无法出具结果文书，请联系运维人员。",
    "no_config": "本枢纽尚未取得联邦配置。",
    "no_such_case": "没有找到该办件。",
    "bad_csrf": "页面已过期，请刷新后重试。",
    "second_extension": "每个办件只能延长一次办理期限，本办件已经延长过。",
    "already_verified": "该办件的告知承诺已经核查过。",
    "nothing_to_verify": "该办件不是以告知承诺方式准予的，无需核查。",
    "no_follow_up_needed": "该办件没有待回访的差评。",
    "no_pledge": "只有以承诺方式准予的办件才能在办结后异常终止。",
    "not_overdue": "容缺材料尚未逾期。",
}
EVENT_TEXT: Final = {
    "case.submitted": "收件",
    "case.correction_requested": "一次性告知补正",
    "case.corrected": "提交补正材料",
    "case.accepted": "受理",
    "case.not_accepted": "不予受理",
    "case.step": "审查",
    "case.supplement_requested": "要求补办材料（计时暂停）",
    "case.supplemented": "提交补办材料",
    "case.suspended": "进入特别程序（计时暂停）",
    "case.resumed": "特别程序结束",
    "case.extended": "延长办理期限",
    "case.decided": "办结",
    "case.delivered": "出件送达",
    "case.rated": "好差评",
    "case.withdrawn": "申请人撤回",
    "case.terminated": "异常终止",
    "case.verified": "告知承诺核查",
    "case.followed_up": "差评回访",
    "case.received": "已签收（送达回执）",  # this hub's; the windows' are marks of the acts
}
DONE_TEXT: Final = {
    "accept": "已受理。",
    "not-accept": "已作出不予受理决定。",
    "request-correction": "补正通知已发出（一次性告知）。",
    "step": "审查意见已提交。",
    "decide": "已办结，结果已发往出件窗口。",
    "request-supplement": "补办通知已发出，计时暂停。",
    "suspend": "已进入特别程序，计时暂停。",
    "resume": "特别程序结束，恢复计时。",
    "extend": "已延长办理期限，并告知申请人。",
    "terminate": "办件已异常终止。",
    "verify": "核查结果已记录。",
    "follow-up": "回访情况已记录。",
}
#: The form (key of ``can`` in case.html) of each action.
FORM_OF: Final = {
    "accept": "accept",
    "not-accept": "not_accept",
    "request-correction": "correct",
    "step": "step",
    "decide": "decide",
    "request-supplement": "supplement",
    "suspend": "suspend",
    "resume": "resume",
    "extend": "extend",
    "terminate": "terminate",
    "verify": "verify",
    "follow-up": "follow_up",
}
VERIFY_OUTCOMES: Final = (("confirmed", "承诺属实"), ("false", "承诺不实"))
CORRECTION_ROWS: Final = 3
_CJK = re.compile(r"[\u4e00-\u9fff]")


def message_of(exc: ProtocolError) -> str:
    """A refusal in Chinese: the known reasons, else the service's own Chinese detail."""
    known = REASONS.get(exc.reason)
    if known:
        return known
    if _CJK.search(exc.detail):
        return exc.detail.rstrip("。") + "。"
    return f"操作被拒绝（{exc.reason}）。"


def _names(hub: Hub) -> tuple[str, Federation | None]:
    federation = hub.view.federation
    member = None if federation is None else federation.member(hub.me)
    return (member.name if member else hub.settings.name or hub.me), federation


def render(
    request: web.Request,
    session: StaffSession | None,
    template: str,
    *,
    active: str = "",
    status_code: int = 200,
    **values: Any,
) -> web.Response:
    """A workbench page inside the shared frame."""
    hub = hub_of(request)
    place, federation = _names(hub)
    user_name = None
    if session is not None:
        user_name = session.staff.name
        dept = session.staff.department
        authority = (
            None if federation is None or dept is None else federation.authority(f"{hub.me}:{dept}")
        )
        if authority is not None:
            user_name += f" · {authority.name}"
    html = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            app_title=APP_TITLE,
            place=place,
            nav=NAV if session is not None else (),
            active=active,
            user_name=user_name,
            csrf="" if session is None else session.csrf,
            **values,
        )
    )
    return shared.html_response(html, status_code)


async def session_of(request: web.Request) -> StaffSession | None:
    return await staff.session_of(hub_of(request), request.cookies.get(SESSION_COOKIE))


async def _refusal(
    request: web.Request, session: StaffSession, exc: Exception
) -> web.StreamResponse:
    assert isinstance(exc, ProtocolError)
    code = status_of(exc.reason)
    return render(request, session, "error.html", status_code=code, message=message_of(exc))


#: Page handlers (request, session): log in first; a refusal becomes a page.
staff_page = shared.guard(session_of, _refusal, (ProtocolError,))


async def _form(request: web.Request, session: StaffSession) -> MultiDictProxy[Any]:
    """A posted form whose ``csrf_token`` matches the session (``bad_csrf`` otherwise)."""
    form = await request.post()
    token = form.get("csrf_token")
    staff.check_csrf(session, token if isinstance(token, str) else None)
    return form


def _field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# -- login -----------------------------------------------------------------------------------


async def _authenticate(request: web.Request, staff_id: str, password: str) -> tuple[str, int]:
    try:
        token, _ = await staff.login(hub_of(request), staff_id, password)
    except RemoteProtocolError as exc:
        raise shared.LoginRefused(message_of(exc), status_of(exc.reason)) from None
    return token, int(staff.SESSION_TTL.total_seconds())


async def _show_login(request: web.Request, values: dict[str, str], code: int) -> web.Response:
    return render(request, None, "login.html", status_code=code, **values)


LOGIN: Final = shared.LoginPages("staff", SESSION_COOKIE, session_of, _authenticate, _show_login)


@staff_page
async def logout(request: web.Request, session: StaffSession) -> web.StreamResponse:
    await _form(request, session)
    await staff.logout(hub_of(request), session)
    response = shared.see_other("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# -- 待办 ------------------------------------------------------------------------------------


def _member_name(federation: Federation | None, member_id: str) -> str:
    member = None if federation is None else federation.member(member_id)
    peer = None if federation is None else federation.home.peers.get(member_id)
    return member.name if member is not None else peer.name if peer is not None else member_id


def _destination(federation: Federation | None, destination: str) -> str:
    """A relay destination for people: a member, its feed (拉取), or the parent's config."""
    member, _, what = destination.partition(":")
    where = "上级" if member == "parent" else _member_name(federation, member)
    return {"feed": f"{where}（下行记录）", "config": f"{where}（联邦配置）"}.get(what, where)


#: 电子监察 card colour → the queue row's class (one source: :mod:`hub.services.supervision`).
URGENCY: Final = {"red": "overdue", "yellow": "near"}


@staff_page
async def queue(request: web.Request, session: StaffSession) -> web.StreamResponse:
    hub = hub_of(request)
    rows = await review.queue(hub, session)
    work = await review.tasks(hub, session)
    federation = hub.view.federation
    today = day_of(hub.now())
    cards = await supervision.department_cards(hub, session.staff.department or "")
    urgency = {c.number: URGENCY[c.colour] for c in cards}
    for row in [*rows, *work[VERIFY], *work[FOLLOW_UP]]:
        row["urgency"] = urgency.get(row["number"], "")
        row["window_name"] = _member_name(federation, row["window"])
    counts = {
        "overdue": sum(c.colour == "red" for c in cards),
        "near": sum(c.colour == "yellow" for c in cards),
        "deemed": sum(bool(r["deemed_accepted"]) for r in rows),
    }
    return render(
        request,
        session,
        "queue.html",
        active="queue",
        rows=rows,
        counts=counts,
        cards=cards,
        today=today,
        verify=work[VERIFY],
        follow_up=work[FOLLOW_UP],
    )


# -- 办件卷宗 and the actions ----------------------------------------------------------------


async def _kind(hub: Hub, blob: str) -> str:
    """How the browser can show a material: ``image`` inline, ``pdf`` in a frame, or a link."""
    try:
        _, content_type = await blobs.blob_file(hub, blob)
    except ProtocolError:
        return "missing"
    if content_type.startswith("image/"):
        return "image"
    return "pdf" if content_type == "application/pdf" else "file"


def _staff_names(federation: Federation | None) -> dict[str, str]:
    return {} if federation is None else {s.id: s.name for s in federation.home.staff.values()}


def _timeline(
    file: Mapping[str, Any], federation: Federation | None, authority_name: str
) -> list[dict[str, Any]]:
    """The case's events in plain Chinese: what, who (staff and department), opinion."""
    staff_names = _staff_names(federation)
    steps = file.get("steps", [])
    host = member_of(file["authority"])
    out = []
    for entry in file["timeline"]:
        if entry["type"] == RECEIPT and entry["author"] != host and not entry.get("refused"):
            continue  # a window's 送达回执: shown as the mark of the act it confirms
        text = EVENT_TEXT.get(entry["type"], entry["type"])
        if entry["type"] == "case.step":
            index = entry.get("step")
            name = steps[index]["name"] if isinstance(index, int) and index < len(steps) else ""
            text = f"{name or '审查'}：{'通过' if entry.get('outcome') == 'pass' else '退回'}"
        elif entry["type"] == "case.decided":
            code = entry.get("result_code")
            text = f"办结：{RESULT_CODES.get(code, '')}" if isinstance(code, int) else "办结"
        by = entry.get("by")
        who = _member_name(federation, entry["author"])
        if isinstance(by, str) and by:
            who = f"{staff_names.get(by, by)}（{authority_name}）"
        notes = [
            f"{label}：{entry[key]}"
            for key, label in (("opinion", "意见"), ("reason", "理由"))
            if entry.get(key)
        ]
        if entry.get("refused"):
            notes.append(f"未被采纳：{entry['refused'].get('reason')}")
        out.append(
            {
                "at": entry["ts"],
                "text": text,
                "who": who,
                "note": "；".join(notes),
                "bad": bool(entry.get("refused")),
                "marks": [_delivery(federation, sent) for sent in entry.get("sent_to", [])],
            }
        )
    return out


def _delivery(federation: Federation | None, sent: Mapping[str, Any]) -> dict[str, Any]:
    """The 送达 mark of an act for one window it was sent to: confirmed (with when) or not."""
    name = _member_name(federation, sent["member"])
    if sent["confirmed"]:
        return {"text": f"已送达窗口：{name}", "at": sent.get("at"), "ok": True}
    return {"text": f"传送中（{name}尚未签收）", "at": None, "ok": False}


def _correction_targets(file: Mapping[str, Any], federation: Federation | None) -> list[Any]:
    found = None if federation is None else federation.matter(file["matter"])
    materials = [] if found is None else [(f"m:{m.id}", m.name) for m in found[1].materials]
    return [*materials, ("f:applicant", "申请人信息"), ("f:form", "申请表填写内容")]


async def _case_page(
    request: web.Request,
    session: StaffSession,
    number: str,
    *,
    failed: str = "",
    error: str = "",
    posted: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> web.Response:
    hub = hub_of(request)
    file = await review.case_file(hub, session, number)
    federation = hub.view.federation
    for material in file["materials"]:
        for blob in material["blobs"]:
            blob["kind"] = await _kind(hub, blob["hash"]) if blob["held"] else "missing"
    authority = None if federation is None else federation.authority(file["authority"])
    authority_name = authority.name if authority is not None else file["authority"]
    steps, next_step, actions = file["steps"], file["next_step"], file["actions"]
    reviewing = "step" in actions or "decide" in actions
    single = len(steps) <= 1
    step_open = reviewing and not single and next_step < len(steps)
    can = {
        "accept": "accept" in actions,
        "not_accept": "not-accept" in actions,
        "correct": "request-correction" in actions,
        "step": step_open,
        "decide": "decide" in actions and not step_open,
        "supplement": "request-supplement" in actions,
        "suspend": "suspend" in actions,
        "resume": "resume" in actions,
        "extend": "extend" in actions,
        "terminate": "terminate" in actions,
        "verify": "verify" in actions,
        "follow_up": "follow-up" in actions,
    }
    # A refusal of an action whose form is no longer offered is shown above the forms.
    orphan = error if failed and not can.get(FORM_OF.get(failed, ""), False) else ""
    return render(
        request,
        session,
        "case.html",
        active="queue",
        status_code=status_code,
        orphan_error=orphan,
        f=file,
        entries=_timeline(file, federation, authority_name),
        staff_names=_staff_names(federation),
        window_name=_member_name(federation, file["window"]),
        pickup_name=_member_name(federation, file["pickup"]),
        authority_name=authority_name,
        can=can,
        room=_extension_room(federation, file["matter"]),
        outcomes=VERIFY_OUTCOMES,
        step=steps[next_step] if step_open else None,
        step_role=ROLE_NAMES.get(steps[next_step]["role"], steps[next_step]["role"])
        if step_open
        else "",
        earlier=[(str(i), s["name"]) for i, s in enumerate(steps[:next_step])],
        role_names=ROLE_NAMES,
        my_roles="、".join(ROLE_NAMES.get(r, r) for r in session.staff.roles) or "无",
        targets=_correction_targets(file, federation),
        rows=CORRECTION_ROWS,
        failed=failed,
        error=error,
        posted=posted or {},
        done=DONE_TEXT.get(request.query.get("done", ""), ""),
    )


@staff_page
async def case_page(request: web.Request, session: StaffSession) -> web.StreamResponse:
    return await _case_page(request, session, request.match_info["number"])


def _items(form: MultiDictProxy[Any]) -> list[dict[str, str]]:
    """The 补正 notice rows (target, problem) that were filled in."""
    items = []
    targets, problems = form.getall("item_target", []), form.getall("item_problem", [])
    for target, problem in zip(targets, problems, strict=False):
        if not isinstance(problem, str) or not problem.strip() or not isinstance(target, str):
            continue
        kind, _, name = target.partition(":")
        key = "material" if kind == "m" else "field"
        items.append({"problem": problem.strip(), key: name or "form"})
    return items


def _extension_room(federation: Federation | None, matter: str) -> int:
    """How many working days a 延长 may add: legal_days - promise_days of the matter."""
    found = None if federation is None else federation.matter(matter)
    return 0 if found is None else found[1].legal_days - found[1].promise_days


def _payload(action: str, form: MultiDictProxy[Any]) -> dict[str, Any]:
    """The workbench action's request, from the posted form."""
    payload: dict[str, Any] = {"opinion": _field(form, "opinion")}
    if action in ("not-accept", "suspend", "terminate"):
        payload["reason"] = _field(form, "reason")
    elif action in ("request-correction", "request-supplement"):
        payload["items"] = _items(form)
        if not payload["items"]:
            raise RemoteProtocolError("bad_request", "请至少列出一项需要补正的内容")
    elif action == "extend":
        payload["days"] = _field(form, "days")
        payload["reason"] = _field(form, "reason")
    elif action == "verify":
        payload["outcome"] = _field(form, "outcome")
        payload["note"] = _field(form, "note")
    elif action == "follow-up":
        payload["note"] = _field(form, "note")
    elif action == "step":
        payload["step"] = _field(form, "step")
        payload["outcome"] = _field(form, "outcome") or "pass"
        if payload["outcome"] == "return":
            payload["to_step"] = _field(form, "to_step")
            if not payload["to_step"]:
                raise RemoteProtocolError("bad_request", "请选择退回到哪个环节")
    elif action == "decide":
        payload["result_code"] = _field(form, "result_code")
        payload["reason"] = _field(form, "reason")
        if payload["result_code"] == "0":
            for name in ("licence_no", "valid_from", "valid_until"):
                if _field(form, name):
                    payload[name] = _field(form, name)
    return payload


@staff_page
async def act(request: web.Request, session: StaffSession) -> web.StreamResponse:
    number, action = request.match_info["number"], request.match_info["action"]
    if action not in review.ACTIONS:
        raise web.HTTPNotFound()
    form = await _form(request, session)
    posted = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    try:
        payload = _payload(action, form)
        await review.act(hub_of(request), session, number, action, payload)
    except RemoteProtocolError as exc:
        if exc.reason in ("no_such_case", "wrong_department", "bad_csrf"):
            raise
        return await _case_page(
            request,
            session,
            number,
            failed=action,
            error=message_of(exc),
            posted=posted,
            status_code=status_of(exc.reason),
        )
    return shared.see_other(f"/cases/{quote(number)}?done={quote(action)}")


@staff_page
async def result_page(request: web.Request, session: StaffSession) -> web.StreamResponse:
    """The sealed result, printable with its QR code (the window prints the same page)."""
    hub = hub_of(request)
    file = await review.case_file(hub, session, request.match_info["number"])
    doc = file.get("result")
    if not isinstance(doc, dict):
        raise RemoteProtocolError("not_decided", "该办件没有准予的结果文书。")
    federation = hub.view.require()
    verdict = sealed.verdict(verify_result(doc, federation), doc, federation)
    return render(
        request, session, "result.html", active="queue", f=file,
        r=sealed.document_view(doc), v=verdict,
    )  # fmt: skip


# -- 状态 ------------------------------------------------------------------------------------


@staff_page
async def status_page(request: web.Request, session: StaffSession) -> web.StreamResponse:
    hub = hub_of(request)
    report = await operator_status(hub)
    _, federation = _names(hub)
    for row in report.get("destinations", []):
        row["name"] = _destination(federation, row["destination"])
    return render(request, session, "status.html", active="status", report=report)


def add_routes(app: web.Application) -> None:
    """Register the workbench pages and the shared static files on the hub app."""
    env = shared.environment("hub")
    env.filters["mask"] = lambda value: mask(value) if isinstance(value, str) else value
    app[TEMPLATES] = env
    r = app.router
    shared.add_static(r)
    r.add_get("/", queue)
    r.add_get("/login", LOGIN.form)
    r.add_post("/login", LOGIN.post)
    r.add_post("/logout", logout)
    r.add_get("/status", status_page)
    r.add_get("/cases/{number}", case_page)
    r.add_get("/cases/{number}/result", result_page)
    r.add_post("/cases/{number}/{action}", act)
