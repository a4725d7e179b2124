"""The hub's ``web.Application``: routes, middlewares, the relay jobs' lifetime.

Run it with ``protocol.http.RUNNER_KWARGS`` (``auto_decompress=False``): request digests
cover the gzip bytes as sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from . import dashboard, pages, public
from .core import Hub
from .handlers import api, blobs, sync
from .handlers.common import HUB_KEY, middlewares
from .jobs import RelayJobs
from .review_jobs import ReviewJobs

#: The largest request body: one tus PATCH chunk plus slack (pushes are bounded lower).
CLIENT_MAX_SIZE: Final = blobs.MAX_CHUNK_BYTES + 64 * 1024
JOBS_KEY: Final = web.AppKey("tongban_relay_jobs", RelayJobs)
REVIEW_JOBS_KEY: Final = web.AppKey("tongban_review_jobs", ReviewJobs)


def build_app(hub: Hub, *, jobs: bool = True) -> web.Application:
    """The hub app; ``jobs=False`` leaves the relay jobs to the caller (tests drive them)."""
    app = web.Application(middlewares=middlewares(), client_max_size=CLIENT_MAX_SIZE)
    app[HUB_KEY] = hub
    relay = RelayJobs(hub)
    app[JOBS_KEY] = relay
    checks = ReviewJobs(hub)  # 容缺 deadlines
    app[REVIEW_JOBS_KEY] = checks
    r = app.router
    r.add_post("/v1/push", sync.push)
    r.add_get("/v1/feed", sync.feed)
    r.add_get("/v1/history/{member}", sync.history)
    r.add_get("/v1/config", sync.get_config)
    r.add_post("/v1/cases/lookup", sync.case_lookup)
    r.add_post("/v1/config", sync.post_config)
    r.add_route("OPTIONS", "/v1/blobs", blobs.options)
    r.add_post("/v1/blobs", blobs.create)
    r.add_route("HEAD", "/v1/blobs/uploads/{upload}", blobs.head)
    r.add_route("PATCH", "/v1/blobs/uploads/{upload}", blobs.patch)
    r.add_get("/v1/blobs/{blob}", blobs.download, allow_head=False)
    r.add_post("/api/login", api.login)
    r.add_post("/api/logout", api.logout)
    r.add_get("/api/me", api.me)
    r.add_get("/api/queue", api.queue)
    r.add_get("/api/tasks", api.tasks)
    r.add_get("/api/cases/{number}", api.case_file)
    r.add_post("/api/cases/{number}/{action}", api.act)
    r.add_get("/api/status", api.status)
    pages.add_routes(app)
    dashboard.add_routes(app)  # 运维监控 (operators)
    public.add_routes(app)  # 办事指南, 进度查询 (no login)
    r.add_get("/healthz", sync.healthz)
    r.add_get("/metrics", sync.metrics)

    async def relay_jobs(_app: web.Application) -> AsyncIterator[None]:
        if jobs:
            relay.start()
            checks.start()
        yield
        await checks.stop()
        await relay.stop()  # also closes the HTTP session of jobs driven by hand

    app.cleanup_ctx.append(relay_jobs)
    app.on_response_prepare.append(_no_server_header)
    return app


async def _no_server_header(_request: web.Request, response: web.StreamResponse) -> None:
    # "Python/3.11 aiohttp/3.x" tells a scanner what to try and costs every answer ~35 bytes
    # on a 2G link.
    response.headers.popall("Server", None)
