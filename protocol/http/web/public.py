"""Pieces of the public pages (办事指南, 进度查询) both apps serve without a login.

银发服务: a large-text, high-contrast mode, toggled by a link that sets a cookie (no
script needed); :func:`large_mode` tells a page whether to render with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import jinja2
from aiohttp import web

from protocol.config import Federation

from . import guide, html_response, safe_next, see_other
from . import result as sealed
from .track import NOT_FOUND, TOO_MANY, WINDOW, WrongCodes, attempt_keys, blocked, parse_qr

LARGE_COOKIE: Final = "tb_large"
PUBLIC_TITLE: Final = "政务服务"
PUBLIC_NAV: Final = (
    {"key": "guide", "label": "办事指南", "href": "/guide"},
    {"key": "track", "label": "进度查询", "href": "/track"},
    {"key": "verify", "label": "结果核验", "href": "/verify"},
)
MAX_VERIFY_TEXT: Final = 16_000  # a sealed result as QR text is well under this


def large_mode(request: web.Request) -> bool:
    return request.cookies.get(LARGE_COOKIE) == "1"


def render_public(
    env: jinja2.Environment,
    request: web.Request,
    name: str,
    *,
    place: str,
    active: str,
    status: int = 200,
    **values: Any,
) -> web.Response:
    """A public page: the shared frame, the public nav, the 长辈模式 switch."""
    html = env.get_template(name).render(
        app_title=PUBLIC_TITLE,
        place=place,
        nav=PUBLIC_NAV,
        active=active,
        user_name=None,
        csrf="",
        large=large_mode(request),
        here=request.path_qs,
        **values,
    )
    return html_response(html, status=status)


async def toggle_large(request: web.Request) -> web.StreamResponse:
    """``/large?on=1&next=/guide``: switch the 长辈模式 on or off, then back."""
    on = request.query.get("on") == "1"
    response = see_other(safe_next(request.query.get("next", "/guide")))
    if on:
        response.set_cookie(
            LARGE_COOKIE, "1", max_age=365 * 24 * 3600, httponly=True, samesite="Lax", path="/"
        )
    else:
        response.del_cookie(LARGE_COOKIE, path="/")
    return response


Lookup = Callable[[web.Request, str, str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class PublicSite:
    """办事指南 and 进度查询 as one app serves them: the app says where its federation, its
    name and its cases come from; the pages, the form and the wrong-code limit are shared."""

    templates: web.AppKey[jinja2.Environment]
    federation: Callable[[web.Request], Federation | None]
    place: Callable[[web.Request], str]
    lookup: Lookup  # the public view of a case given its number and query code, or None
    wrong_codes: Callable[[web.Request], WrongCodes]  # the app's shared wrong-code counter
    no_catalog: str  # shown while the app has no config yet

    def page(
        self, request: web.Request, name: str, *, active: str, status: int = 200, **values: Any
    ) -> web.Response:
        return render_public(
            request.app[self.templates],
            request,
            name,
            place=self.place(request),
            active=active,
            status=status,
            **values,
        )

    def _guide_data(self, request: web.Request) -> Federation | web.Response:
        federation = self.federation(request)
        if federation is None:
            return self.page(
                request, "public_error.html", active="guide", status=503, message=self.no_catalog
            )
        return federation

    async def guide_list(self, request: web.Request) -> web.StreamResponse:
        federation = self._guide_data(request)
        if isinstance(federation, web.Response):
            return federation
        data = guide.catalog(federation, request.query.get("q", ""), request.query.get("level", ""))
        return self.page(request, "public_guide.html", active="guide", g=data)

    async def guide_matter(self, request: web.Request) -> web.StreamResponse:
        federation = self._guide_data(request)
        if isinstance(federation, web.Response):
            return federation
        data = guide.matter_guide(federation, request.match_info["code"])
        if data is None:
            raise web.HTTPNotFound(text="没有这个事项。")
        return self.page(request, "public_matter.html", active="guide", m=data)

    def track_page(
        self,
        request: web.Request,
        status: int = 200,
        *,
        number: str = "",
        error: str = "",
        c: dict[str, Any] | None = None,
    ) -> web.Response:
        return self.page(
            request, "public_track.html", active="track", status=status,
            number=number, error=error, c=c,
        )  # fmt: skip

    async def track_form(self, request: web.Request) -> web.StreamResponse:
        return self.track_page(request)

    async def track(self, request: web.Request) -> web.StreamResponse:
        """A case by number and query code (or the receipt's QR text); a number alone finds
        nothing, and wrong codes are limited per client and per case."""
        form = await request.post()
        number, code, qr = (str(form.get(k) or "").strip() for k in ("number", "code", "qr"))
        if qr and (parsed := parse_qr(qr)) is not None:
            number, code = parsed
        number = number[:40]
        counter = self.wrong_codes(request)
        client = request.remote or "unknown"
        if await blocked(counter, client, number):
            return self.track_page(request, status=429, number=number, error=TOO_MANY)
        view = await self.lookup(request, number, code) if number and code else None
        if view is None:
            await counter.add(attempt_keys(client, number), WINDOW)
            return self.track_page(request, status=404, number=number, error=NOT_FOUND)
        return self.track_page(request, number=number, c=view)

    def verify_page(self, request: web.Request, text: str) -> web.Response:
        """结果核验: the verdict on a sealed result, checked against this app's config."""
        text = text.strip()
        if not text:
            return self.page(
                request, "public_verify.html", active="verify", text="", max_len=MAX_VERIFY_TEXT
            )
        federation = self.federation(request)
        if federation is None:
            return self.page(
                request, "public_error.html", active="verify", status=503, message=self.no_catalog
            )
        if len(text) > MAX_VERIFY_TEXT:
            return self.page(
                request, "public_verify.html", active="verify", status=413, text="",
                max_len=MAX_VERIFY_TEXT, error="内容过长，不是结果文书。",
            )  # fmt: skip
        verdict = sealed.check_text(text, federation)
        view = None if verdict.document is None else sealed.document_view(verdict.document)
        return self.page(
            request, "public_verify.html", active="verify", status=200 if verdict.genuine else 422,
            text=text, v=verdict, r=view, max_len=MAX_VERIFY_TEXT,
        )  # fmt: skip

    async def verify_form(self, request: web.Request) -> web.StreamResponse:
        """``/verify`` (optionally ``?r=<QR text>``, so a scanned link opens the verdict)."""
        return self.verify_page(request, request.query.get("r", ""))

    async def verify(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        return self.verify_page(request, str(form.get("text") or ""))

    def add_routes(self, app: web.Application) -> None:
        """``/guide``, ``/guide/{code}``, ``/track``, ``/verify`` and the ``/large`` switch."""
        r = app.router
        r.add_get("/guide", self.guide_list)
        r.add_get("/guide/{code}", self.guide_matter)
        r.add_get("/track", self.track_form)
        r.add_post("/track", self.track)
        r.add_get("/verify", self.verify_form)
        r.add_post("/verify", self.verify)
        r.add_get("/large", toggle_large)
