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

from protocol.http.web.public import PublicSite, large_mode

from .appkeys import CTX, TEMPLATES
from .pages import clerk_page, page
from .privacy import mask_phone
from .services import query
from .services.notify import KINDS
from .storage import SessionRow
from .storage.outbox import OutboxStore
from .storage.track import WrongCodeStore


def _place(request: web.Request) -> str:
    station = request.app[CTX].station
    return station.name or station.id


SITE: Final = PublicSite(
    templates=TEMPLATES,
    federation=lambda request: request.app[CTX].configs.federation,
    place=_place,
    lookup=lambda request, number, code: query.find(request.app[CTX], number, code),
    wrong_codes=lambda request: WrongCodeStore(
        request.app[CTX].store.db, lambda: request.app[CTX].clock().timestamp()
    ),
    no_catalog="本站尚未取得事项目录，请稍后再试。",
)


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
    SITE.add_routes(app)
    app.router.add_get("/notifications", notifications)
    app.router.add_get("/notifications.csv", notifications_csv)
