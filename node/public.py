"""The station's public pages (no login, readable on a phone, offline from the cached
config): ``/guide`` 办事指南, ``/guide/{code}`` one matter's 五统一, ``/track`` 进度查询 by
case number and query code, ``/large`` the 长辈模式 switch. And, for logged-in clerks,
``/notifications`` the outbox (print view) and ``/notifications.csv`` (export).
"""

from __future__ import annotations

import csv
import io
from typing import Final

from aiohttp import web

from protocol.http.web import guide
from protocol.http.web.public import large_mode, render_public, toggle_large

from .appkeys import CTX, TEMPLATES
from .pages import clerk_page, page
from .privacy import mask_phone
from .services import query
from .services.errors import ServiceError
from .services.notify import KINDS
from .storage import SessionRow
from .storage.outbox import OutboxStore

ATTEMPTS: Final = web.AppKey("tongban_track_attempts", query.Attempts)


def _place(request: web.Request) -> str:
    station = request.app[CTX].station
    return station.name or station.id


def _unavailable(request: web.Request) -> web.Response:
    return render_public(
        request.app[TEMPLATES],
        request,
        "public_error.html",
        place=_place(request),
        active="guide",
        status=503,
        message="本站尚未取得事项目录，请稍后再试。",
    )


async def guide_list(request: web.Request) -> web.StreamResponse:
    federation = request.app[CTX].configs.federation
    if federation is None:
        return _unavailable(request)
    data = guide.catalog(federation, request.query.get("q", ""), request.query.get("level", ""))
    return render_public(
        request.app[TEMPLATES],
        request,
        "public_guide.html",
        place=_place(request),
        active="guide",
        g=data,
    )


async def guide_matter(request: web.Request) -> web.StreamResponse:
    federation = request.app[CTX].configs.federation
    if federation is None:
        return _unavailable(request)
    data = guide.matter_guide(federation, request.match_info["code"])
    if data is None:
        raise web.HTTPNotFound(text="没有这个事项。")
    return render_public(
        request.app[TEMPLATES],
        request,
        "public_matter.html",
        place=_place(request),
        active="guide",
        m=data,
    )


def _track_page(request: web.Request, status: int = 200, **values: object) -> web.Response:
    values.setdefault("number", "")
    values.setdefault("error", "")
    values.setdefault("c", None)
    return render_public(
        request.app[TEMPLATES],
        request,
        "public_track.html",
        place=_place(request),
        active="track",
        status=status,
        **values,
    )


async def track_form(request: web.Request) -> web.StreamResponse:
    return _track_page(request)


async def track(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    number, code, qr = (str(form.get(k) or "").strip() for k in ("number", "code", "qr"))
    if qr:
        parsed = query.parse_qr(qr)
        if parsed is not None:
            number, code = parsed
    try:
        view = await query.track(
            request.app[CTX], request.app[ATTEMPTS], request.remote or "unknown", number, code
        )
    except ServiceError as exc:
        return _track_page(request, status=exc.status, number=number[:40], error=exc.message)
    return _track_page(request, number=number, c=view)


@clerk_page
async def notifications(request: web.Request, session: SessionRow) -> web.StreamResponse:
    rows = await OutboxStore(request.app[CTX].store.db).rows()
    shown = [
        {
            "case": r.case_no,
            "kind": KINDS.get(r.kind, r.kind),
            "to": mask_phone(r.destination) if r.destination else "（未留电话）",
            "text": r.text,
            "at": r.at,
        }
        for r in rows
    ]
    return await page(
        request,
        session,
        "public_notifications.html",
        active="",
        rows=shown,
        large=large_mode(request),
    )


@clerk_page
async def notifications_csv(request: web.Request, session: SessionRow) -> web.StreamResponse:
    rows = await OutboxStore(request.app[CTX].store.db).rows(limit=10_000)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["时间", "办件编号", "类型", "手机号（脱敏）", "内容"])
    for r in rows:
        to = mask_phone(r.destination) if r.destination else ""
        text = r.text if not r.text.startswith(("=", "+", "-", "@")) else "'" + r.text
        writer.writerow([r.at, r.case_no, KINDS.get(r.kind, r.kind), to, text])
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="notifications.csv"',
            "Cache-Control": "no-store",
        },
    )


def add_routes(app: web.Application) -> None:
    """Register the public pages and the outbox pages."""
    app[ATTEMPTS] = query.Attempts()
    r = app.router
    r.add_get("/guide", guide_list)
    r.add_get("/guide/{code}", guide_matter)
    r.add_get("/track", track_form)
    r.add_post("/track", track)
    r.add_get("/large", toggle_large)
    r.add_get("/notifications", notifications)
    r.add_get("/notifications.csv", notifications_csv)
