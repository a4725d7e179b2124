"""aiohttp server-side helpers: authenticate a signed request, read its body, render errors.

Handlers stay thin::

    verified = await authenticate(request, resolve_key=config.key, nonces=nonces)
    batch = await read_json_body(request, MAX_PUSH_BYTES)

and ``protocol_errors_middleware()`` turns any :class:`ProtocolError` into a JSON 4xx
``{"error": reason, "detail": detail}``.

**Run the server with** ``auto_decompress=False`` (``web.AppRunner(app, **RUNNER_KWARGS)`` or
``web.run_app(app, **RUNNER_KWARGS)``). aiohttp (3.14 included) otherwise gunzips request
bodies inside its parser, before a handler can see them, and the Content-Digest is over the
bytes *as sent*. With it off we gunzip ourselves, bounded, in :func:`decode_body`. A server
that forgot the setting answers gzip requests with ``bad_encoding`` and a hint, rather than
a puzzling ``digest_mismatch``.

**Target URI.** The signature covers the URL the client addressed. Directly exposed, that is
``request.scheme://Host + raw path``. Behind a reverse proxy pass ``public_base`` (e.g.
``"https://hub.example.gov.cn/tongban"``; the request's raw path is appended to it), or
``trust_forwarded=True`` to rebuild it from X-Forwarded-Proto/X-Forwarded-Host. Trust those
headers only when a proxy you run always overwrites them: otherwise a client can choose the
URL the signature is checked against.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..encoding import loads_strict
from ..errors import ProtocolError, RemoteProtocolError
from ..keys import PublicKey
from .signing import DEFAULT_WINDOW, NonceCache, VerifiedRequest, verify_request

#: Keyword arguments for ``web.AppRunner``/``web.run_app``/test servers; see module docstring.
RUNNER_KWARGS: Final[Mapping[str, Any]] = {"auto_decompress": False}

#: The request body exactly as received (still gzip-compressed), cached by the first reader.
RAW_BODY_KEY: Final = web.RequestKey("tongban_raw_body", bytes)
#: The result of :func:`authenticate`, for handlers further down the chain.
VERIFIED_KEY: Final = web.RequestKey("tongban_verified", VerifiedRequest)

#: Reasons that mean "who are you?" rather than "what is this?".
UNAUTHORIZED_REASONS: Final = frozenset(
    {
        "unsigned",
        "unknown_key",
        "bad_request_signature",
        "stale_request",
        "replayed_nonce",
        "digest_mismatch",
        "uncovered_components",
    }
)

_GZIP_MAGIC: Final = b"\x1f\x8b"
_CHUNK: Final = 64 * 1024


def status_for(reason: str) -> int:
    """The HTTP status for a protocol error reason: 401, 413 or 400."""
    if reason in UNAUTHORIZED_REASONS:
        return 401
    if reason == "body_too_large":
        return 413
    return 400


def error_response(exc: ProtocolError, status: int = 400) -> web.Response:
    """JSON ``{"error": reason, "detail": detail}`` with ``status``."""
    return web.json_response({"error": exc.reason, "detail": exc.detail}, status=status)


def protocol_errors_middleware() -> Middleware:
    """Middleware rendering a ProtocolError raised by a handler as a JSON 4xx response."""

    @web.middleware
    async def protocol_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ProtocolError as exc:
            return error_response(exc, status_for(exc.reason))

    return protocol_errors


def _too_large(max_bytes: int, what: str) -> RemoteProtocolError:
    return RemoteProtocolError("body_too_large", f"{what} exceeds {max_bytes} bytes")


async def read_raw_body(request: web.Request, max_bytes: int) -> bytes:
    """The body bytes as sent (not decompressed), at most ``max_bytes``; cached on the request."""
    raw = request.get(RAW_BODY_KEY)
    if raw is None:
        # Refuse early on an honest Content-Length; count anyway for chunked bodies.
        if request.content_length is not None and request.content_length > max_bytes:
            raise _too_large(max_bytes, "body")
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes, "body")
            chunks.append(chunk)
        raw = b"".join(chunks)
        request[RAW_BODY_KEY] = raw
    if len(raw) > max_bytes:
        raise _too_large(max_bytes, "body")
    if (
        _is_gzip(request.headers.get("Content-Encoding"))
        and raw
        and not raw.startswith(_GZIP_MAGIC)
    ):
        raise RemoteProtocolError(
            "bad_encoding",
            "Content-Encoding is gzip but the body is not"
            " (if clients are fine, this server runs with auto_decompress=True)",
        )
    return raw


def _is_gzip(content_encoding: str | None) -> bool:
    return (content_encoding or "").strip().lower() in {"gzip", "x-gzip"}


def decode_body(raw: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding`` (identity or gzip), never producing more than ``max_bytes``."""
    coding = (content_encoding or "identity").strip().lower()
    if coding == "identity":
        return raw
    if not _is_gzip(coding):
        raise RemoteProtocolError("bad_encoding", f"unsupported Content-Encoding {coding[:40]!r}")
    # max_length bounds the output, so a gzip bomb costs at most max_bytes of memory.
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        raise RemoteProtocolError("bad_encoding", f"bad gzip body: {exc}") from None
    if len(data) > max_bytes:
        raise _too_large(max_bytes, "decompressed body")
    if not inflater.eof:
        raise RemoteProtocolError("bad_encoding", "truncated gzip body")
    if inflater.unused_data:
        # Concatenated gzip members are legal but our clients never send them.
        raise RemoteProtocolError("bad_encoding", "trailing data after the gzip member")
    return data


async def read_json_body(request: web.Request, max_bytes: int) -> Any:
    """Read, gunzip (bounded) and strictly parse the JSON body; raw and decoded ≤ ``max_bytes``."""
    raw = await read_raw_body(request, max_bytes)
    data = decode_body(raw, request.headers.get("Content-Encoding"), max_bytes)
    return loads_strict(data)


def target_uri(
    request: web.Request, *, public_base: str | None = None, trust_forwarded: bool = False
) -> str:
    """The URL the client addressed, as covered by ``@target-uri`` (see module docstring)."""
    if public_base is not None:
        return public_base.rstrip("/") + request.raw_path
    scheme, host = request.scheme, request.host
    if trust_forwarded:
        # Proxies append: the first value is the one the client's hop set.
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
        fwd_host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        scheme, host = proto or scheme, fwd_host or host
    return f"{scheme}://{host}{request.raw_path}"


async def authenticate(
    request: web.Request,
    *,
    resolve_key: Callable[[str], PublicKey | None],
    nonces: NonceCache,
    window: int = DEFAULT_WINDOW,
    now: int | None = None,
    public_base: str | None = None,
    trust_forwarded: bool = False,
    max_bytes: int | None = None,
) -> VerifiedRequest:
    """Verify the request's signature over its raw body; raise RemoteProtocolError (→ 401).

    ``now`` defaults to the wall clock; ``max_bytes`` to the app's ``client_max_size``. The raw
    body is cached on the request, so :func:`read_json_body` does not read it twice.
    """
    limit = request.client_max_size if max_bytes is None else max_bytes
    body = await read_raw_body(request, limit)
    verified = verify_request(
        request.method,
        target_uri(request, public_base=public_base, trust_forwarded=trust_forwarded),
        request.headers,
        body,
        resolve_key=resolve_key,
        now=int(time.time()) if now is None else now,
        nonces=nonces,
        window=window,
    )
    request[VERIFIED_KEY] = verified
    return verified
