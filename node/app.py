"""The station's aiohttp application: JSON API under ``/api/``, ``/healthz``, ``/metrics``,
and the window pages (``/``; HTML templates live in ``node/templates/``).

Security: every ``/api/`` route but ``POST /api/login`` needs a session cookie, and every
state-changing request (POST, PUT, PATCH, DELETE) the session's CSRF token in the
``X-CSRF-Token`` header. HTML form handlers (outside ``/api/``) read their form through
:func:`read_form`, which checks the ``csrf_token`` field instead. Requests whose ``Origin``
names another site are refused outright.

Run it with ``web.AppRunner(app, **protocol.http.server.RUNNER_KWARGS)``.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import MultiDictProxy
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from protocol.errors import ProtocolError
from protocol.http import web as web_pages

from . import api
from .api import check_form_csrf, reply
from .appkeys import AUTH, CSRF_HEADER, CTX, METRICS, SESSION, SESSION_COOKIE, TEMPLATES
from .logs import log
from .metrics import NodeMetrics
from .services.auth import Auth
from .services.context import NodeContext
from .services.errors import ServiceError
from .storage import SessionRow

logger = logging.getLogger("node.app")

MAX_REQUEST_BYTES = 120 * 1024 * 1024  # a case with many scans
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC_API = frozenset({("POST", "/api/login")})


def make_templates() -> jinja2.Environment:
    """The Jinja2 environment of the window pages (autoescaped, from node/templates, with
    the shared layout of protocol.http.web behind them)."""
    return web_pages.environment("node")


def render(request: web.Request, name: str, status: int = 200, **values: Any) -> web.Response:
    """Render template ``name`` with the station and the session (if any) in scope."""
    ctx = request.app[CTX]
    template = request.app[TEMPLATES].get_template(name)
    html = template.render(
        station_id=ctx.station.id,
        station_name=ctx.station.name or ctx.station.id,
        session=request.get(SESSION),
        **values,
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


def json_error(error: ServiceError) -> web.Response:
    return reply(error.as_dict(), status=error.status)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    try:
        url = URL(origin)
    except ValueError:
        return False
    return url.host is not None and url.authority == request.host


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ServiceError/ProtocolError -> JSON 4xx; anything unexpected -> JSON 500, logged."""
    try:
        return await handler(request)
    except ServiceError as exc:
        return json_error(exc)
    except ProtocolError as exc:
        return json_error(ServiceError(exc.reason, "请求数据有误。", detail=exc.detail))
    except web.HTTPException as exc:
        if request.path.startswith("/api/") and exc.status >= 400:
            reason = "not_found" if exc.status == 404 else f"http_{exc.status}"
            message = "没有这个接口。" if exc.status == 404 else "请求有误。"
            return json_error(ServiceError(reason, message, status=exc.status))
        raise
    except Exception:
        log(
            logger, "request.crashed", level=logging.ERROR, path=request.path, method=request.method
        )
        logger.exception("unhandled error")
        return json_error(ServiceError("internal", "系统内部错误，请稍后重试。", status=500))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Session for everything under /api/ (but login); CSRF on state-changing API calls."""
    if request.method in UNSAFE_METHODS and not _same_origin(request):
        raise ServiceError("bad_origin", "请求来源不符，已拒绝。", status=403)
    token = request.cookies.get(SESSION_COOKIE)
    session = await request.app[AUTH].session(token)
    if session is not None:
        request[SESSION] = session
    if request.path.startswith("/api/") and (request.method, request.path) not in PUBLIC_API:
        if session is None:
            raise ServiceError("login_required", "请先登录。", status=401)
        if request.method in UNSAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                raise ServiceError("csrf_failed", "页面已过期，请刷新后重试。", status=403)
    return await handler(request)


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if response.content_type == "text/html":
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'",
        )
    return response


def current_session(request: web.Request) -> SessionRow | None:
    """The logged-in clerk's session, for HTML page handlers."""
    return request.get(SESSION)


async def read_form(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """Read a posted HTML form and check its ``csrf_token`` field against the session.

    (For the 新建办件 form with files use :func:`node.api.read_application` with
    ``form_csrf=True``.)
    """
    form = await request.post()
    check_form_csrf(request, form.get("csrf_token"))
    return form


async def healthz(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    await ctx.store.head()  # the database answers
    return reply({"status": "ok", "member": ctx.station.id})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_app(ctx: NodeContext, auth: Auth, metrics_: NodeMetrics) -> web.Application:
    """The station's web application over a built context."""
    app = web.Application(
        middlewares=[headers_middleware, errors_middleware, auth_middleware],
        client_max_size=MAX_REQUEST_BYTES,
    )
    app[CTX] = ctx
    app[AUTH] = auth
    app[METRICS] = metrics_
    app[TEMPLATES] = make_templates()
    from . import pages  # the pages import this module's helpers

    pages.add_routes(app)
    from . import public  # 办事指南, 进度查询, 通知发件箱

    public.add_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    api.add_routes(app.router)
    return app
