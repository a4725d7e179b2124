"""What every handler shares: the hub of the app, member authentication, error rendering."""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from protocol.errors import ProtocolError, RemoteProtocolError
from protocol.http.server import authenticate, error_response, status_for
from protocol.http.tus import TUS_STATUS
from protocol.keys import PublicKey

from ..core import Hub
from ..logs import log

HUB_KEY: Final = web.AppKey("tongban_hub", Hub)
MEMBER_KEY: Final = web.RequestKey("tongban_member", str)

logger = logging.getLogger("tongban.hub.http")

#: Reasons that are not 400, beyond the protocol's own (401, 413) and tus (409, 412, 460).
STATUS: Final = {
    **TUS_STATUS,
    "not_logged_in": 401,
    "bad_login": 401,
    "not_a_child": 403,
    "not_yours": 403,
    "not_your_history": 403,
    "forbidden": 403,
    "bad_csrf": 403,
    "wrong_department": 403,
    "wrong_role": 403,
    "not_decided": 409,
    "not_staff_here": 403,
    "not_a_window": 403,
    "not_waiting": 409,
    "no_such_case": 404,
    "no_such_blob": 404,
    "not_found": 404,
    "locked_out": 429,
    "no_config": 503,
    "no_seal_key": 409,
}


def hub_of(request: web.Request) -> Hub:
    return request.app[HUB_KEY]


def status_of(reason: str) -> int:
    return STATUS.get(reason) or status_for(reason)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render a ProtocolError as ``{"error", "detail"}`` with the status its reason implies."""
    try:
        return await handler(request)
    except ProtocolError as exc:
        status = status_of(exc.reason)
        if status >= 500 or status in (401, 403):
            log(logger, "http.refused", path=request.path, status=status, reason=exc.reason)
        response = error_response(exc, status)
        if request.path.startswith("/v1/blobs"):
            response.headers["Tus-Resumable"] = "1.0.0"
        return response


def middlewares() -> list[Middleware]:
    return [errors_middleware]


class _NonceClaim:
    """Collects the request nonce during verification; the database decides replays.

    ``verify_request`` consults the cache last, once everything else checked out, and the
    claim is then made in the shared database so a nonce replayed to another hub worker is
    caught as well.
    """

    def __init__(self) -> None:
        self.claimed: tuple[str, str, int] | None = None

    def seen(self, keyid: str, nonce: str, created: int) -> bool:
        self.claimed = (keyid, nonce, created)
        return False


async def authenticate_member(request: web.Request, max_bytes: int) -> str:
    """Verify the request signature (RFC 9421); the caller's member id (401 otherwise)."""
    hub = hub_of(request)
    await hub.view.refresh()
    now = hub.now()
    owners: list[str] = []

    def resolve(kid: str) -> PublicKey | None:
        found = hub.view.resolve_key(kid, now)
        if found is None:
            refusal = hub.view.key_refusal(kid, now)
            if refusal is not None:  # a revoked or retired key: say so (still 401)
                raise RemoteProtocolError("unknown_key", f"{refusal.reason}: {refusal.detail}")
            return None
        owners.append(found[0])
        return found[1]

    claim = _NonceClaim()
    verified = await authenticate(
        request,
        resolve_key=resolve,
        nonces=claim,
        now=int(now.timestamp()),
        public_base=hub.settings.public_base,
        max_bytes=max_bytes,
    )
    member = owners[-1]
    clock = None
    if verified.clock is not None:
        # Authenticated (the header is covered by the signature): how far off it runs.
        clock = (member, int(now.timestamp()) - verified.clock, now)
    if not await hub.store.claim_nonce(verified.keyid, verified.nonce, verified.created, clock):
        raise RemoteProtocolError(
            "replayed_nonce", f"nonce already used by key {verified.keyid[:64]!r}"
        )
    if clock is not None:
        hub.metrics.peer_clock_skew.labels(peer=member).set(clock[1])
    request[MEMBER_KEY] = member
    return member
