"""The hub's public pages (no login, readable on a phone): ``/guide`` 办事指南,
``/guide/{code}`` one matter's 五统一, ``/track`` 进度查询 for cases this hub holds (the
query code's salted hash travels in the signed ``case.submitted`` body), ``/large`` the
长辈模式 switch. Templates are the shared ones of :mod:`protocol.http.web`.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from protocol.case import RESULT_CODES, Case
from protocol.config import Federation
from protocol.event import Event
from protocol.http.web import guide
from protocol.http.web.public import render_public, toggle_large
from protocol.http.web.track import (
    EVENT_TEXT,
    NOT_FOUND,
    STATE_TEXT,
    TOO_MANY,
    Attempts,
    code_matches,
    mask_name,
    parse_qr,
)

from .core import Hub
from .handlers.common import hub_of
from .logs import mask
from .pages import TEMPLATES
from .services.casecodec import decode_case

ATTEMPTS: Final = web.AppKey("tongban_hub_track_attempts", Attempts)


def _name(federation: Federation | None, member_id: str) -> str:
    if federation is not None:
        member = federation.member(member_id)
        if member is not None:
            return member.name
        authority = federation.authority(member_id)
        if authority is not None:
            return authority.name
    return member_id


def _place(hub: Hub) -> str:
    return _name(hub.view.federation, hub.me)


def _unavailable(request: web.Request) -> web.Response:
    return render_public(
        request.app[TEMPLATES],
        request,
        "public_error.html",
        place=_place(hub_of(request)),
        active="guide",
        status=503,
        message="本枢纽尚未取得事项目录，请稍后再试。",
    )


async def guide_list(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    federation = hub.view.federation
    if federation is None:
        return _unavailable(request)
    data = guide.catalog(federation, request.query.get("q", ""), request.query.get("level", ""))
    return render_public(
        request.app[TEMPLATES],
        request,
        "public_guide.html",
        place=_place(hub),
        active="guide",
        g=data,
    )


async def guide_matter(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    federation = hub.view.federation
    if federation is None:
        return _unavailable(request)
    data = guide.matter_guide(federation, request.match_info["code"])
    if data is None:
        raise web.HTTPNotFound(text="没有这个事项。")
    return render_public(
        request.app[TEMPLATES],
        request,
        "public_matter.html",
        place=_place(hub),
        active="guide",
        m=data,
    )


def _view(case: Case, events: list[Event], federation: Federation | None) -> dict[str, Any]:
    names = {m.id: m.name for m in case.terms.materials}
    missing = []
    if case.state.value in ("correction", "awaiting_supplement"):
        missing = [
            {
                "what": names.get(i.material, i.material) if i.material else i.field,
                "problem": i.problem,
            }
            for i in case.items
        ]
    deadline = None
    config = None if federation is None else federation.city(case.authority)
    if config is not None and case.accepted_at is not None:
        found = case.deadline(config.calendar)
        deadline = None if found is None or found.date is None else found.date.isoformat()
    timeline = []
    for event in events:
        text = EVENT_TEXT.get(event.type, event.type)
        code = event.body.get("result_code")
        if event.type == "case.decided" and isinstance(code, int):
            text += f"（{RESULT_CODES.get(code, code)}）"
        timeline.append({"at": event.ts, "text": text})
    return {
        "number": case.number,
        "matter": case.terms.name,
        "state": case.state.value,
        "state_label": case.state.label,
        "state_text": STATE_TEXT.get(case.state.value, ""),
        "applicant": mask_name(case.applicant.name),
        "id_masked": mask(case.applicant.id_masked),
        "received": case.received.isoformat(),
        "deadline": deadline,
        "pickup": _name(federation, case.pickup),
        "place": case.terms.place,
        "missing": missing,
        "timeline": timeline,
    }


async def _lookup(hub: Hub, number: str, code: str) -> dict[str, Any] | None:
    record = await hub.store.case(number) if number else None
    if record is None:
        return None
    events = [Event.from_json(s.wire) for s in await hub.store.events_of_case(number)]
    submitted = next((e for e in events if e.type == "case.submitted"), None)
    if submitted is None or not code or not code_matches(submitted.body, number, code):
        return None
    return _view(decode_case(record.fold), events, hub.view.federation)


def _track_page(request: web.Request, status: int = 200, **values: Any) -> web.Response:
    values.setdefault("number", "")
    values.setdefault("error", "")
    values.setdefault("c", None)
    return render_public(
        request.app[TEMPLATES],
        request,
        "public_track.html",
        place=_place(hub_of(request)),
        active="track",
        status=status,
        **values,
    )


async def track_form(request: web.Request) -> web.StreamResponse:
    return _track_page(request)


async def track(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    number, code, qr = (str(form.get(k) or "").strip() for k in ("number", "code", "qr"))
    if qr and (parsed := parse_qr(qr)) is not None:
        number, code = parsed
    number = number[:40]
    attempts = request.app[ATTEMPTS]
    client = request.remote or "unknown"
    if attempts.blocked(client, number):
        return _track_page(request, status=429, number=number, error=TOO_MANY)
    view = await _lookup(hub_of(request), number, code)
    if view is None:
        attempts.wrong(client, number)
        return _track_page(request, status=404, number=number, error=NOT_FOUND)
    return _track_page(request, number=number, c=view)


def add_routes(app: web.Application) -> None:
    """Register the public pages (after :func:`hub.pages.add_routes`: its templates)."""
    app[ATTEMPTS] = Attempts()
    r = app.router
    r.add_get("/guide", guide_list)
    r.add_get("/guide/{code}", guide_matter)
    r.add_get("/track", track_form)
    r.add_post("/track", track)
    r.add_get("/large", toggle_large)
