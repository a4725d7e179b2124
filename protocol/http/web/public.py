"""Pieces of the public pages (办事指南, 进度查询) both apps serve without a login.

银发服务: a large-text, high-contrast mode, toggled by a link that sets a cookie (no
script needed); :func:`large_mode` tells a page whether to render with it.
"""

from __future__ import annotations

from typing import Any, Final

import jinja2
from aiohttp import web

from . import html_response, safe_next, see_other

LARGE_COOKIE: Final = "tb_large"
PUBLIC_TITLE: Final = "政务服务"
PUBLIC_NAV: Final = (
    {"key": "guide", "label": "办事指南", "href": "/guide"},
    {"key": "track", "label": "进度查询", "href": "/track"},
)


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
