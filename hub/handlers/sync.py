"""``/v1/push``, ``/v1/feed``, ``/v1/config``, ``/healthz``, ``/metrics``."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from protocol.errors import RemoteProtocolError
from protocol.http.server import read_json_body
from protocol.sync import MAX_BATCH_BYTES

from ..services import feed as feeds
from ..services import history as own_history
from ..services.cases import case_for_window
from ..services.config import config_answer, offer_config
from ..services.push import receive_push
from ..services.status import health
from .common import authenticate_member, hub_of

#: A full batch of wire bytes plus JSON framing; checked raw and decompressed.
MAX_PUSH_BYTES: Final = MAX_BATCH_BYTES + 256 * 1024
MAX_CONFIG_BYTES: Final = 8 * 1024 * 1024
COMPRESS_FROM: Final = 512  # bytes: smaller feed pages (an empty one) go as they are


async def push(request: web.Request) -> web.Response:
    hub = hub_of(request)
    pusher = await authenticate_member(request, MAX_PUSH_BYTES)
    obj = await read_json_body(request, MAX_PUSH_BYTES)
    ack = await receive_push(hub, pusher, obj)
    sent = (
        len(obj["events"]) if isinstance(obj, dict) and isinstance(obj.get("events"), list) else 0
    )
    if sent and len(ack.rejects) == sent:
        # Nothing of the batch was taken: the request as a whole is refused (422), with the
        # first reason up front and every event's reason in the ack, which changed nothing.
        first = ack.rejects[0]
        body = {"error": first.reason, "detail": first.detail, **ack.to_dict()}
        return web.json_response(body, status=422)
    return web.json_response(ack.to_dict())


async def feed(request: web.Request) -> web.Response:
    hub = hub_of(request)
    member = await authenticate_member(request, 0)
    after = feeds.parse_cursor(request.query.get("after"))
    wait = feeds.spread_wait(feeds.parse_wait(request.query.get("wait")))
    federation = hub.view.require()
    child = federation.home.members.get(member)
    if child is None or child.parent != hub.me:
        if member in federation.home.peers:
            # A metro peer gets what is addressed to it pushed; it reads nothing here.
            raise RemoteProtocolError("not_yours", f"peer {member} has no feed at {hub.me}")
        raise RemoteProtocolError("not_a_child", f"{member} has no feed at {hub.me}")
    page = await feeds.read_feed(hub.store, hub.feeds, member, after, wait)
    body = page.body()
    response = web.Response(body=body, content_type="application/json")
    if len(body) >= COMPRESS_FROM:
        # Even one event (a 送达回执, a decision) shrinks by a third: a 2G link pays per byte.
        response.enable_compression()
    return response


MAX_LOOKUP_BYTES: Final = 4 * 1024


async def case_lookup(request: web.Request) -> web.Response:
    """``POST /v1/cases/lookup``: a case waiting for 补正/补办, for the window where the
    applicant came with their ID (see :func:`~hub.services.cases.case_for_window`)."""
    hub = hub_of(request)
    member = await authenticate_member(request, MAX_LOOKUP_BYTES)
    obj = await read_json_body(request, MAX_LOOKUP_BYTES)
    if not isinstance(obj, dict):
        raise RemoteProtocolError("bad_request", "a lookup is a JSON object")
    federation = hub.view.require()
    wires = await case_for_window(
        hub.store, federation, hub.me, member, obj.get("case"), obj.get("id_hash")
    )
    body = b'{"events":[' + b",".join(wires) + b"]}"
    return web.Response(body=body, content_type="application/json")


async def get_config(request: web.Request) -> web.Response:
    hub = hub_of(request)
    answer = await config_answer(hub, request.query.get("have"), request.query.get("city"))
    if answer is None:
        return web.Response(status=304)
    response = web.Response(text=answer, content_type="application/json")
    response.enable_compression()
    return response


async def post_config(request: web.Request) -> web.Response:
    hub = hub_of(request)
    obj = await read_json_body(request, MAX_CONFIG_BYTES)
    adoption = await offer_config(hub, obj)
    return web.json_response({"serial": adoption.signed.serial, "adopted": adoption.adopted})


async def healthz(request: web.Request) -> web.Response:
    report = await health(hub_of(request))
    return web.json_response(report, status=200 if report["ok"] else 503)


async def metrics(request: web.Request) -> web.Response:
    hub = hub_of(request)
    response = web.Response(body=hub.metrics.render())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def history(request: web.Request) -> web.Response:
    """``GET /v1/history/<member>``: the caller's own chain, for a station restore."""
    hub = hub_of(request)
    caller = await authenticate_member(request, 0)
    after = own_history.parse_after(request.query.get("after"))
    body = await own_history.own_history(hub, caller, request.match_info["member"], after)
    response = web.Response(body=body, content_type="application/json")
    response.enable_compression()
    return response
