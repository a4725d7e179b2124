"""The look and feel both web apps share: one stylesheet, one script, the base layout and
form macros, and the small helpers every HTML page handler needs.

The window node (``node/pages.py``) and the hub workbench (``hub/pages.py``) never import each
other; what their pages have in common lives here once:

* :func:`environment` builds an autoescaping Jinja2 environment over the app's own
  ``<package>/templates`` with ``layout.html`` and ``macros.html`` of this package behind it;
* :func:`add_static` serves ``/static/tongban.css`` and ``/static/tongban.js`` from memory
  (no external assets: the station may have no internet);
* :func:`html_response` adds the security headers of a page (a strict CSP: no inline
  script, nothing from another origin);
* the login form's CSRF token before there is a session (:func:`login_token`,
  :func:`check_login_token`: a double-submit cookie) and the session cookie
  (:func:`set_session_cookie`: HttpOnly, SameSite=Strict).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from importlib import resources
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

import jinja2
from aiohttp import web

__all__ = [
    "CSP",
    "LOGIN_COOKIE",
    "LoginPages",
    "LoginRefused",
    "add_static",
    "check_login_token",
    "environment",
    "guard",
    "html_response",
    "login_token",
    "page_headers",
    "safe_next",
    "see_other",
    "set_session_cookie",
    "show_time",
]

CHINA: Final = timezone(timedelta(hours=8))
LOGIN_COOKIE: Final = "tb_login_csrf"
#: Pages load only their own stylesheet, script, images and frames (material PDFs).
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self'"
)
S = TypeVar("S")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_STATIC: Final = {"tongban.css": "text/css", "tongban.js": "text/javascript"}


@cache
def _asset(name: str) -> tuple[bytes, str]:
    """The bytes of a shipped static file and a short hash of them (the cache buster)."""
    data = resources.files(__name__).joinpath("static", name).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:10]


def static_url(name: str) -> str:
    """The versioned URL of a static file: cached for good, replaced on upgrade."""
    return f"/static/{name}?v={_asset(name)[1]}"


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _STATIC:
        raise web.HTTPNotFound()
    data, version = _asset(name)
    cache_control = (
        "public, max-age=31536000, immutable" if request.query.get("v") == version else "no-cache"
    )
    return web.Response(
        body=data,
        content_type=_STATIC[name],
        charset="utf-8",
        headers={"Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"},
    )


def add_static(router: web.UrlDispatcher) -> None:
    """Serve the shared stylesheet and script under ``/static/``."""
    router.add_get("/static/{name}", _static)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def show_time(value: Any, *, seconds: bool = False) -> str:
    """An instant (ISO text or datetime, any offset) as China time ``2026-11-23 09:30``."""
    instant = _instant(value)
    if instant is None:
        return "" if value is None else str(value)
    return instant.astimezone(CHINA).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))


def show_date(value: Any) -> str:
    """A date (ISO text or date) as ``2026-11-30``; anything else as it is."""
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)[:10]


def show_bytes(value: Any) -> str:
    """A byte count for people: ``1.2 MB``."""
    if not isinstance(value, int):
        return ""
    size = float(value)
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover - the loop returns at MB


def environment(package: str) -> jinja2.Environment:
    """Jinja2 over ``<package>/templates`` then the shared layout; autoescape always on."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.PackageLoader(package, "templates"), jinja2.PackageLoader(__name__)]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    env.filters["time"] = show_time
    env.filters["day"] = show_date
    env.filters["size"] = show_bytes
    return env


PAGE_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show personal data: never kept by the browser
}


def page_headers(response: web.StreamResponse) -> web.StreamResponse:
    """Give a rendered page the headers every page gets (replacing any set before)."""
    response.headers.update(PAGE_HEADERS)
    return response


def html_response(text: str, status: int = 200) -> web.Response:
    """A page with the headers every page gets."""
    response = web.Response(text=text, content_type="text/html", charset="utf-8", status=status)
    page_headers(response)
    return response


def see_other(location: str) -> web.Response:
    """The answer to a successful form post: 303 to ``location`` (a reload does not post
    again). Only same-site paths: never a redirect to another site."""
    if not location.startswith("/") or location.startswith("//") or "\\" in location:
        location = "/"
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def safe_next(target: str) -> str:
    """Where to go after the login: a path on this site, never another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def guard(
    session_of: Callable[[web.Request], Awaitable[S | None]],
    refusal: Callable[[web.Request, S, Exception], Awaitable[web.StreamResponse]],
    errors: tuple[type[Exception], ...],
) -> Callable[[Callable[[web.Request, S], Awaitable[web.StreamResponse]]], Handler]:
    """A decorator for page handlers that need a session: without one, to the login page
    (a GET comes back here afterwards); an error of ``errors`` becomes ``refusal``'s page
    (the apps' services raise errors; a page must never answer with JSON)."""

    def decorate(handler: Callable[[web.Request, S], Awaitable[web.StreamResponse]]) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            session = await session_of(request)
            if session is None:
                back = request.path_qs if request.method == "GET" else "/"
                return see_other("/login?" + urlencode({"next": back}))
            try:
                return await handler(request, session)
            except errors as exc:
                return await refusal(request, session, exc)

        return wrapped

    return decorate


class LoginRefused(Exception):
    """A login the app's authentication refused: the Chinese message and the status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


#: Renders ``login.html`` with the values ``token``, ``error``, ``user``, ``next``.
ShowLogin = Callable[[web.Request, dict[str, str], int], Awaitable[web.Response]]


@dataclass(frozen=True)
class LoginPages:
    """``GET /login`` and ``POST /login`` of either app.

    The form has no session to take a CSRF token from, so its token is the value of a
    short-lived cookie echoed in a hidden field (double submit). ``authenticate(request,
    user, password)`` answers the new session's cookie token and lifetime in seconds, or
    raises :class:`LoginRefused`.
    """

    user_field: str
    cookie: str
    session_of: Callable[[web.Request], Awaitable[object | None]]
    authenticate: Callable[[web.Request, str, str], Awaitable[tuple[str, int]]]
    show: ShowLogin

    async def _page(
        self, request: web.Request, error: str, user: str, target: str, status: int
    ) -> web.Response:
        token = login_token(request)
        values = {"token": token, "error": error, "user": user, "next": target}
        response = await self.show(request, values, status)
        remember_login_token(response, request, token)
        return response

    async def form(self, request: web.Request) -> web.StreamResponse:
        target = safe_next(request.query.get("next", "/"))
        if await self.session_of(request) is not None:
            return see_other(target)
        return await self._page(request, "", "", target, 200)

    async def post(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()

        def text(name: str) -> str:
            value = form.get(name)
            return value if isinstance(value, str) else ""

        user, target = text(self.user_field).strip(), safe_next(text("next").strip() or "/")
        if not check_login_token(request, form.get("csrf_token")):
            return await self._page(request, "页面已过期，请重新登录。", user, target, 403)
        try:
            token, max_age = await self.authenticate(request, user, text("password"))
        except LoginRefused as exc:
            return await self._page(request, exc.message, user, target, exc.status)
        response = see_other(target)
        set_session_cookie(response, request, self.cookie, token, max_age)
        return response


def login_token(request: web.Request) -> str:
    """The CSRF token of the login form (there is no session yet): the value of a
    short-lived cookie, echoed in the form; reused while the cookie lives."""
    token = request.cookies.get(LOGIN_COOKIE, "")
    return token if 20 <= len(token) <= 100 else secrets.token_urlsafe(24)


def remember_login_token(response: web.StreamResponse, request: web.Request, token: str) -> None:
    """Set the login form's cookie (call when rendering the login page)."""
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )


def check_login_token(request: web.Request, sent: object) -> bool:
    """Does the posted login form carry the token of its cookie?"""
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    return (
        bool(cookie)
        and isinstance(sent, str)
        and hmac.compare_digest(sent.encode(), cookie.encode())
    )


def set_session_cookie(
    response: web.StreamResponse, request: web.Request, name: str, token: str, max_age: int
) -> None:
    """The session cookie of a page login (HttpOnly, SameSite=Strict, Secure over TLS);
    the login form's cookie is no longer needed."""
    response.set_cookie(
        name,
        token,
        max_age=max_age,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )
    response.del_cookie(LOGIN_COOKIE, path="/")
