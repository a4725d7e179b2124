"""The window pages (HTML, in Chinese) the station serves to its clerks.

Thin handlers over the same services as the JSON API (``node/services``): parse the form,
call the service, render a template of ``node/templates`` (which extend the shared layout
of :mod:`protocol.http.web`). Every page needs the clerk's session (else: to the login
page); every form carries the session's CSRF token (:func:`node.app.read_form`); a refused
action is shown in Chinese next to the field at fault (``ServiceError.field``) and changes
nothing. Every page shows the sync bar.

Routes: ``/login`` ``/logout`` ``/password``; ``/`` → 新建办件; ``/new`` (matter picker),
``/new/{code}`` (the application form, POST: 收件 → receipt); ``/cases`` (办件列表),
``/cases/{n}`` (办件详情, POST ``…/deliver``: 出件), ``/cases/{n}/receipt`` (受理回执),
``/cases/{n}/result`` (办理结果, printable), ``/cases/{n}/stamp`` (what the case page
polls), POST ``/cases/{n}/act/{withdraw|rate|decide}`` (撤回, 好差评, 即办);
``/supplement`` (补齐补正: ID check, then POST ``/supplement/{n}`` with the scans);
``/bundles/{code}/new`` and ``/bundles/{n}`` (一件事一次办, POST ``…/deliver``);
``/quarantine`` (隔离区, POST ``…/{id}/release``); ``/sync-bar`` (the bar alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote, urlencode

from aiohttp import web

from protocol.case import CHINA_TIME, RESULT_CODES, CaseState, day_of
from protocol.http import web as shared
from protocol.http.web import result as sealed
from protocol.ids import division
from protocol.seal import verify_result

from .api import check_form_csrf, read_application, read_multipart
from .app import current_session, read_form, render
from .appkeys import AUTH, CTX, SESSION_COOKIE, TEMPLATES
from .services import bundles, cases, matters, status, window
from .services.accept import (
    ID_TYPES,
    MODE_LABELS,
    Application,
    MaterialInput,
    accept_application,
    reusable_materials,
)
from .services.errors import ServiceError
from .services.folding import calendar_for, promised
from .storage import SessionRow

APP_TITLE: Final = "综合窗口"
NAV: Final = (
    {"key": "new", "label": "新建办件", "href": "/new"},
    {"key": "cases", "label": "办件列表", "href": "/cases"},
    {"key": "supplement", "label": "补齐补正", "href": "/supplement"},
    {"key": "quarantine", "label": "隔离区", "href": "/quarantine"},
)
PAGE_SIZE: Final = 50
#: Final states: the case page stops waiting for news.
SETTLED: Final = frozenset({"delivered", "rated", "withdrawn", "not_accepted", "terminated"})
SEAL_TEXT: Final = {
    "genuine": "电子签章有效",
    "unsealed": "未加盖电子签章",
    "bad_seal": "签章与文书内容不符，文书可能被篡改",
    "bad_result": "结果文书格式有误",
}
#: Form fields as the services name them → the form's own field names.
FIELD_ALIASES: Final = {
    "pledge.deadline": "pledge_deadline",
    "pledge.text": "pledge_text",
    "applicant.name": "applicant_name",
    "applicant.id_type": "applicant_id_type",
    "applicant.id_number": "applicant_id_number",
    "agent.name": "agent_name",
    "agent.id_type": "agent_id_type",
    "agent.id_number": "agent_id_number",
}

# -- the frame of every page ---------------------------------------------------------------


async def page(
    request: web.Request,
    session: SessionRow | None,
    template: str,
    *,
    active: str = "",
    status_code: int = 200,
    **values: Any,
) -> web.Response:
    """Render a page inside the frame: nav, the clerk, the sync bar (when logged in)."""
    ctx = request.app[CTX]
    response = render(
        request,
        template,
        status=status_code,
        app_title=APP_TITLE,
        place=ctx.station.name or ctx.station.id,
        nav=NAV if session is not None else (),
        active=active,
        user_name=None if session is None else session.clerk.display_name,
        user_href="/password",
        must_change=session is not None and session.clerk.password_changed_at is None,
        csrf="" if session is None else session.csrf,
        sync=None if session is None else await status.sync_status(ctx),
        **values,
    )
    shared.page_headers(response)
    return response


async def _session(request: web.Request) -> SessionRow | None:
    return current_session(request)


async def _refusal(request: web.Request, session: SessionRow, exc: Exception) -> web.StreamResponse:
    assert isinstance(exc, ServiceError)
    return await page(
        request,
        session,
        "error.html",
        status_code=exc.status,
        title="无法完成",
        message=exc.message,
    )


#: Page handlers (request, session): log in first; a refused action becomes a page.
clerk_page = shared.guard(_session, _refusal, (ServiceError,))


def _raw(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _text(form: Mapping[str, Any], name: str) -> str:
    return _raw(form, name).strip()


# -- login ---------------------------------------------------------------------------------


async def _authenticate(request: web.Request, username: str, password: str) -> tuple[str, int]:
    auth = request.app[AUTH]
    try:
        done = await auth.login(username, password, request.remote or "unknown")
    except ServiceError as exc:
        raise shared.LoginRefused(exc.message, exc.status) from None
    return done.token, int(done.expires_at - auth.now())


async def _show_login(request: web.Request, values: dict[str, str], code: int) -> web.Response:
    return await page(request, None, "login.html", status_code=code, **values)


LOGIN: Final = shared.LoginPages("username", SESSION_COOKIE, _session, _authenticate, _show_login)


@clerk_page
async def logout(request: web.Request, session: SessionRow) -> web.StreamResponse:
    await read_form(request)
    await request.app[AUTH].logout(request.cookies.get(SESSION_COOKIE, ""))
    response = shared.see_other("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@clerk_page
async def password_form(request: web.Request, session: SessionRow) -> web.StreamResponse:
    done = request.query.get("done") == "1"
    return await page(request, session, "password.html", errors={}, done=done)


@clerk_page
async def change_password(request: web.Request, session: SessionRow) -> web.StreamResponse:
    form = await read_form(request)
    ctx = request.app[CTX]
    new = _raw(form, "new_password")  # passwords as typed: never stripped
    if new != _raw(form, "repeat_password"):
        errors = {"repeat_password": "两次输入的新密码不一致。"}
        return await page(
            request, session, "password.html", status_code=422, errors=errors, done=False
        )
    try:
        await request.app[AUTH].change_password(
            session.clerk,
            _raw(form, "old_password"),
            new,
            ctx.stamp(),
            keep_token=request.cookies.get(SESSION_COOKIE),
        )
    except ServiceError as exc:
        errors = {exc.field or "new_password": exc.message}
        return await page(
            request, session, "password.html", status_code=exc.status, errors=errors, done=False
        )
    return shared.see_other("/password?done=1")


# -- 新建办件 ---------------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    if current_session(request) is None:
        return shared.see_other("/login")
    return shared.see_other("/new")


@clerk_page
async def pick_matter(request: web.Request, session: SessionRow) -> web.StreamResponse:
    ctx = request.app[CTX]
    query = request.query.get("q", "").strip()[:50]
    found = matters.search_matters(ctx, query, limit=500)
    return await page(
        request,
        session,
        "new_pick.html",
        active="new",
        query=query,
        matters=found,
        bundles=bundles.list_bundles(ctx),
    )


def _blank_values(ctx_station: str) -> dict[str, Any]:
    return {
        "applicant_name": "",
        "applicant_id_type": "111",
        "applicant_id_number": "",
        "phone": "",
        "agent_name": "",
        "agent_id_type": "111",
        "agent_id_number": "",
        "location": division(ctx_station),
        "pickup": ctx_station,
        "pledge_text": "",
        "pledge_deadline": "",
        "note": "",
        "modes": {},
        "had_files": False,
    }


def _values_of(application: Application) -> dict[str, Any]:
    """What the clerk typed, to fill the form again after a refusal (files must be chosen
    again: a browser never pre-fills a file input)."""
    agent = application.agent
    return {
        "applicant_name": application.applicant.name,
        "applicant_id_type": application.applicant.id_type,
        "applicant_id_number": application.applicant.id_number,
        "phone": application.phone or "",
        "agent_name": agent.name if agent else "",
        "agent_id_type": agent.id_type if agent else "111",
        "agent_id_number": agent.id_number if agent else "",
        "location": application.location or "",
        "pickup": application.pickup or "",
        "pledge_text": application.pledge_text or "",
        "pledge_deadline": (
            application.pledge_deadline.isoformat() if application.pledge_deadline else ""
        ),
        "note": application.note,
        "modes": {m.id: m.mode for m in application.materials},
        "had_files": any(m.files for m in application.materials),
    }


async def _application_page(
    request: web.Request,
    session: SessionRow,
    code: str,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
    reusable: dict[str, list[dict[str, Any]]] | None = None,
) -> web.Response:
    ctx = request.app[CTX]
    matter = matters.matter_detail(ctx, code)
    federation = ctx.configs.require()
    found = federation.matter(code)
    latest = ""
    if found is not None:
        calendar = calendar_for(federation, matter["authority"]["id"])
        latest = promised(found[1], day_of(ctx.now()), calendar)[0].isoformat()
    stations = [
        (m.id, f"{m.name}（{m.id}）")
        for m in federation.home.members.values()
        if "station" in m.roles
    ]
    stations.sort(key=lambda s: (s[0] != ctx.station.id, s[0]))
    return await page(
        request,
        session,
        "new_form.html",
        active="new",
        status_code=status_code,
        matter=matter,
        values=values,
        errors=errors,
        id_types=list(ID_TYPES.items()),
        mode_labels=MODE_LABELS,
        stations=stations,
        today=day_of(ctx.now()).isoformat(),
        latest=latest,
        reusable=reusable,
    )


@clerk_page
async def application_form(request: web.Request, session: SessionRow) -> web.StreamResponse:
    code = request.match_info["code"]
    values = _blank_values(request.app[CTX].station.id)
    return await _application_page(request, session, code, values, {})


@clerk_page
async def submit_application(request: web.Request, session: SessionRow) -> web.StreamResponse:
    code = request.match_info["code"]
    ctx = request.app[CTX]
    values = _blank_values(ctx.station.id)
    try:
        application = await read_application(request, form_csrf=True)
        values = _values_of(application)
        if application.matter != code:
            raise ServiceError("bad_request", "事项与页面不一致，请重新选择事项。", field="matter")
        receipt = await accept_application(ctx, application, session.clerk)
    except ServiceError as exc:
        if exc.reason == "csrf_failed":
            raise
        field = FIELD_ALIASES.get(exc.field or "", exc.field or "form")
        return await _application_page(
            request, session, code, values, {field: exc.message}, status_code=exc.status
        )
    return shared.see_other(f"/cases/{quote(receipt['number'])}/receipt")


@clerk_page
async def find_reusable(request: web.Request, session: SessionRow) -> web.StreamResponse:
    """只提交一次材料: the form posted back with the applicant's earlier licence scans (证照)
    offered beside each material of the same licence type."""
    code = request.match_info["code"]
    ctx = request.app[CTX]
    application = await read_application(request, form_csrf=True)
    found = await reusable_materials(ctx, application.applicant.id_number)
    matter = matters.matter_detail(ctx, code)
    offered = {
        m["id"]: [r for r in found if r["licence_type"] == m["licence_type"]]
        for m in matter["materials"]
        if m["licence_type"]
    }
    return await _application_page(
        request, session, code, _values_of(application), {}, reusable=offered
    )


# -- 办件 ------------------------------------------------------------------------------------


@clerk_page
async def case_list(request: web.Request, session: SessionRow) -> web.StreamResponse:
    ctx = request.app[CTX]
    query = request.query.get("q", "").strip()[:60]
    state = request.query.get("state", "")
    try:
        offset = max(0, int(request.query.get("offset", "0")))
    except ValueError:
        offset = 0
    found = await cases.list_cases(ctx, query, state or None, limit=PAGE_SIZE, offset=offset)
    base = "/cases?" + urlencode({"q": query, "state": state}) + "&"
    return await page(
        request,
        session,
        "cases.html",
        active="cases",
        query=query,
        state=state,
        states=[(s.value, s.label) for s in CaseState],
        found=found,
        base=base,
        today=day_of(ctx.now()).isoformat(),
    )


def _stamp(detail: Mapping[str, Any]) -> str:
    """What changes when news arrives: the state and the number of events."""
    return f"{detail['case']['state']}:{len(detail['timeline'])}"


def _entry(event: Mapping[str, Any]) -> dict[str, Any]:
    """One line of the case timeline as the shared macro shows it."""
    if event["fold_error"]:
        note = f"本站未采纳此记录：{event['fold_error']}"
    elif event["own"]:
        note = "已上报上级" if event["synced"] else "待上报"
    else:
        note = ""
    return {
        "at": event["at"],
        "text": event["text"],
        "who": "本站" if event["own"] else event["author_name"],
        "note": note,
        "bad": bool(event["fold_error"]),
    }


def _seal_text(result: Mapping[str, Any] | None) -> str:
    seal = (result or {}).get("seal")
    if not isinstance(seal, dict):
        return ""
    text = SEAL_TEXT.get(str(seal.get("reason")), f"签章无效（{seal.get('reason')}）")
    if seal.get("genuine") and seal.get("authority_name"):
        text += f"（{seal['authority_name']}）"
    return text


async def _case_page(
    request: web.Request,
    session: SessionRow,
    number: str,
    *,
    errors: dict[str, str] | None = None,
    deliver_values: dict[str, str] | None = None,
    status_code: int = 200,
) -> web.Response:
    ctx = request.app[CTX]
    detail = await cases.case_detail(ctx, number)
    result = detail["result"]
    now = ctx.now()
    return await page(
        request,
        session,
        "case.html",
        active="cases",
        status_code=status_code,
        detail=detail,
        c=detail["case"],
        result=result,
        result_label=RESULT_CODES.get(result["result_code"], "") if result else "",
        seal_text=_seal_text(result),
        stamp=_stamp(detail),
        # Wait for news while the case is open, but never reload under a form being filled.
        watching=detail["case"]["state"] not in SETTLED and not detail["actions"]["deliver"],
        errors=errors or {},
        deliver=deliver_values
        or {
            "collector": detail["case"]["applicant"]["name"],
            "method": cases.DELIVERY_METHODS[0],
            "when": now.strftime("%Y-%m-%dT%H:%M"),
            "note": "",
        },
        methods=[(m, m) for m in cases.DELIVERY_METHODS],
        mode_labels=MODE_LABELS,
        entries=[_entry(e) for e in detail["timeline"]],
        done=request.query.get("done", ""),
    )


@clerk_page
async def case_page(request: web.Request, session: SessionRow) -> web.StreamResponse:
    return await _case_page(request, session, request.match_info["number"])


@clerk_page
async def case_stamp(request: web.Request, session: SessionRow) -> web.StreamResponse:
    detail = await cases.case_detail(request.app[CTX], request.match_info["number"])
    return web.Response(text=_stamp(detail), headers={"Cache-Control": "no-store"})


@clerk_page
async def receipt_page(request: web.Request, session: SessionRow) -> web.StreamResponse:
    detail = await cases.case_detail(request.app[CTX], request.match_info["number"])
    if "receipt" not in detail:
        raise ServiceError("no_receipt", "该办件不是本窗口受理的，没有受理回执。", status=404)
    return await page(
        request, session, "receipt.html", active="new", r=detail["receipt"], c=detail["case"]
    )


@clerk_page
async def result_page(request: web.Request, session: SessionRow) -> web.StreamResponse:
    number = request.match_info["number"]
    detail = await cases.case_detail(request.app[CTX], number)
    result = detail["result"]
    if result is None:
        raise ServiceError("not_decided", "办件尚未办结，还没有办理结果。", status=409)
    doc = result.get("document")
    federation = request.app[CTX].configs.federation
    # The sealed document prints as the hub's print view does (protocol.http.web.result).
    sealed_doc = isinstance(doc, dict)
    return await page(
        request,
        session,
        "result.html",
        active="cases",
        c=detail["case"],
        result=result,
        doc=doc if sealed_doc else {},
        r=sealed.document_view(doc) if sealed_doc else None,
        v=sealed.verdict(verify_result(doc, federation), doc, federation)
        if sealed_doc and federation is not None
        else None,
        result_label=RESULT_CODES.get(result["result_code"], ""),
        seal_text=_seal_text(result),
    )


def _when(text: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ServiceError("bad_when", "出件时间格式有误。", status=422, field="when") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=CHINA_TIME)


@clerk_page
async def deliver(request: web.Request, session: SessionRow) -> web.StreamResponse:
    number = request.match_info["number"]
    form = await read_form(request)
    values = {name: _text(form, name) for name in ("collector", "method", "when", "note")}
    try:
        await cases.deliver(
            request.app[CTX],
            number,
            collector=values["collector"],
            method=values["method"],
            when=_when(values["when"]),
            collector_id_number=_text(form, "collector_id_number") or None,
            note=values["note"],
            clerk=session.clerk,
        )
    except ServiceError as exc:
        if exc.status == 404:
            raise
        errors = {exc.field or "deliver": exc.message}
        return await _case_page(
            request,
            session,
            number,
            errors=errors,
            deliver_values=values,
            status_code=exc.status,
        )
    return shared.see_other(f"/cases/{quote(number)}?done=delivered")


# -- 一件事一次办 -------------------------------------------------------------------------------


@clerk_page
async def bundle_form(request: web.Request, session: SessionRow) -> web.StreamResponse:
    checklist = bundles.bundle_checklist(request.app[CTX], request.match_info["code"])
    return await page(
        request,
        session,
        "bundle_form.html",
        active="new",
        b=checklist,
        id_types=list(ID_TYPES.items()),
        error="",
    )


@clerk_page
async def bundle_submit(request: web.Request, session: SessionRow) -> web.StreamResponse:
    code = request.match_info["code"]
    ctx = request.app[CTX]
    try:
        application = await read_application(request, form_csrf=True)
        detail = await bundles.accept_bundle(ctx, code, application, session.clerk)
    except ServiceError as exc:
        if exc.reason in ("csrf_failed", "no_such_bundle"):
            raise
        return await page(
            request,
            session,
            "bundle_form.html",
            active="new",
            status_code=exc.status,
            b=bundles.bundle_checklist(ctx, code),
            id_types=list(ID_TYPES.items()),
            error=exc.message,
        )
    return await _bundle_page(request, session, detail["number"], query_code=detail["query_code"])


async def _bundle_page(
    request: web.Request,
    session: SessionRow,
    number: str,
    *,
    query_code: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> web.Response:
    detail = await bundles.bundle_detail(request.app[CTX], number)
    return await page(
        request,
        session,
        "bundle.html",
        active="cases",
        status_code=status_code,
        b=detail,
        query_code=query_code,
        done=request.query.get("done", ""),
        errors=errors or {},
        methods=[(m, m) for m in cases.DELIVERY_METHODS],
    )


@clerk_page
async def bundle_page(request: web.Request, session: SessionRow) -> web.StreamResponse:
    return await _bundle_page(request, session, request.match_info["number"])


@clerk_page
async def bundle_deliver(request: web.Request, session: SessionRow) -> web.StreamResponse:
    number = request.match_info["number"]
    form = await read_form(request)
    try:
        await bundles.deliver_bundle(
            request.app[CTX],
            number,
            collector=_text(form, "collector"),
            method=_text(form, "method"),
            clerk=session.clerk,
        )
    except ServiceError as exc:
        if exc.status == 404:
            raise
        return await _bundle_page(
            request, session, number, errors={"deliver": exc.message}, status_code=exc.status
        )
    return shared.see_other(f"/bundles/{quote(number)}?done=1")


# -- 补齐补正, and the window's acts on a case ------------------------------------------------


@clerk_page
async def supplement_form(request: web.Request, session: SessionRow) -> web.StreamResponse:
    values = {"number": request.query.get("number", "")[:40]}
    return await page(
        request,
        session,
        "supplement.html",
        active="supplement",
        values=values,
        errors={},
        found=None,
        error="",
    )


@clerk_page
async def supplement_lookup(request: web.Request, session: SessionRow) -> web.StreamResponse:
    form = await read_form(request)
    values = {"number": _text(form, "number")}
    try:
        found = await window.find_waiting(
            request.app[CTX], values["number"], _raw(form, "id_number"), session.token_hash
        )
    except ServiceError as exc:
        return await page(
            request,
            session,
            "supplement.html",
            active="supplement",
            status_code=exc.status,
            values=values,
            errors={},
            found=None,
            error=exc.message,
        )
    return await page(
        request,
        session,
        "supplement.html",
        active="supplement",
        values=values,
        errors={},
        found=found,
        error="",
    )


@clerk_page
async def supplement_submit(request: web.Request, session: SessionRow) -> web.StreamResponse:
    number = request.match_info["number"]
    if request.content_type != "multipart/form-data":
        raise ServiceError("unsupported_media_type", "请以 multipart/form-data 提交。", status=415)
    fields, files = await read_multipart(request)
    check_form_csrf(request, fields.get("csrf_token"))
    await window.supplement(
        request.app[CTX],
        number,
        tuple(MaterialInput(mid, "provided", tuple(f)) for mid, f in files.items()),
        session.token_hash,
        note=fields.get("note", ""),
        clerk=session.clerk,
    )
    return shared.see_other(f"/cases/{quote(number)}?done=supplemented")


@clerk_page
async def case_act(request: web.Request, session: SessionRow) -> web.StreamResponse:
    """撤回, 好差评 and 即办 from the case page."""
    number, action = request.match_info["number"], request.match_info["action"]
    form = await read_form(request)
    ctx = request.app[CTX]
    try:
        if action == "withdraw":
            await window.withdraw(ctx, number, _text(form, "reason"), session.clerk)
        elif action == "rate":
            score = _text(form, "score")
            await window.rate(
                ctx,
                number,
                int(score) if score.isdigit() else 0,
                _text(form, "comment"),
                session.clerk,
            )
        elif action == "decide":
            code = _text(form, "result_code") or "0"
            await window.decide_on_the_spot(
                ctx,
                number,
                result_code=int(code) if code.isdigit() else -1,
                reason=_text(form, "reason"),
                licence_no=_text(form, "licence_no"),
                clerk=session.clerk,
            )
        else:
            raise ServiceError("not_found", "没有该操作。", status=404)
    except ServiceError as exc:
        if exc.status == 404:
            raise
        return await _case_page(
            request, session, number, errors={action: exc.message}, status_code=exc.status
        )
    if action == "decide":  # 立等可取: straight to the printable result
        return shared.see_other(f"/cases/{quote(number)}/result")
    return shared.see_other(f"/cases/{quote(number)}?done={action}")


# -- 隔离区 and the sync bar --------------------------------------------------------------------


@clerk_page
async def quarantine(request: web.Request, session: SessionRow) -> web.StreamResponse:
    items = await status.quarantine_list(request.app[CTX])
    return await page(
        request,
        session,
        "quarantine.html",
        active="quarantine",
        items=items,
        error="",
        done=request.query.get("done", ""),
        is_admin=session.clerk.role == "admin",
    )


@clerk_page
async def release(request: web.Request, session: SessionRow) -> web.StreamResponse:
    await read_form(request)
    ctx = request.app[CTX]
    try:
        item_id = int(request.match_info["id"])
        await status.release(ctx, item_id, session.clerk)
    except (ServiceError, ValueError) as exc:
        message = exc.message if isinstance(exc, ServiceError) else "没有找到该隔离记录。"
        return await page(
            request,
            session,
            "quarantine.html",
            active="quarantine",
            status_code=exc.status if isinstance(exc, ServiceError) else 404,
            items=await status.quarantine_list(ctx),
            error=message,
            done="",
            is_admin=session.clerk.role == "admin",
        )
    return shared.see_other("/quarantine?done=released")


async def sync_bar(request: web.Request) -> web.StreamResponse:
    """The sync bar alone (the pages' script refreshes it in place)."""
    if current_session(request) is None:
        return web.Response(status=401, text="")
    ctx = request.app[CTX]
    template = request.app[TEMPLATES].get_template("sync_bar.html")
    html = template.render(sync=await status.sync_status(ctx))
    return shared.html_response(html)


def add_routes(app: web.Application) -> None:
    """Register the window pages and the shared static files on the station app."""
    r = app.router
    shared.add_static(r)
    r.add_get("/", home)
    r.add_get("/login", LOGIN.form)
    r.add_post("/login", LOGIN.post)
    r.add_post("/logout", logout)
    r.add_get("/password", password_form)
    r.add_post("/password", change_password)
    r.add_get("/new", pick_matter)
    r.add_get("/new/{code}", application_form)
    r.add_post("/new/{code}", submit_application)
    r.add_post("/new/{code}/reusable", find_reusable)
    r.add_get("/cases", case_list)
    r.add_get("/cases/{number}", case_page)
    r.add_get("/cases/{number}/stamp", case_stamp)
    r.add_get("/cases/{number}/receipt", receipt_page)
    r.add_get("/cases/{number}/result", result_page)
    r.add_post("/cases/{number}/deliver", deliver)
    r.add_post("/cases/{number}/act/{action}", case_act)
    r.add_get("/supplement", supplement_form)
    r.add_get("/bundles/{code}/new", bundle_form)
    r.add_post("/bundles/{code}/new", bundle_submit)
    r.add_get("/bundles/{number}", bundle_page)
    r.add_post("/bundles/{number}/deliver", bundle_deliver)
    r.add_post("/supplement", supplement_lookup)
    r.add_post("/supplement/{number}", supplement_submit)
    r.add_get("/quarantine", quarantine)
    r.add_post("/quarantine/{id}/release", release)
    r.add_get("/sync-bar", sync_bar)
