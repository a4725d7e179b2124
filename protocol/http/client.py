"""aiohttp client for the sync endpoints (DESIGN.md §4), shared by nodes and hubs.

Every request is signed (:func:`protocol.http.signing.sign_request`) over the exact URL and
body bytes that go on the wire. Push bodies are canonical JSON, gzip-compressed by us (so
the digest is over the compressed bytes); responses may be gzip, which aiohttp undoes.

Failures come in two kinds, both :class:`PeerFailure`: :class:`PeerUnavailable` (could not
get an answer: connection refused, reset, timeout) and :class:`PeerError` (the peer answered,
but with a 4xx/5xx ``{"error": reason, "detail": ...}`` or an unusable success body).
The caller decides what to retry and drives :class:`~protocol.http.backoff.Backoff`.
"""

from __future__ import annotations

import contextlib
import gzip
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import aiohttp
from yarl import URL

from ..encoding import canonical, loads_strict
from ..errors import ProtocolError
from ..event import Event
from ..keys import KeyPair
from .blobs import check_hash, sha256_hex
from .clock import CLOCK_HEADER, PeerClock
from .server import decode_body
from .signing import sign_request

DEFAULT_TIMEOUT: Final = 30.0
#: Largest response body we read (after decompression); a feed page is far smaller.
DEFAULT_MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
_CHUNK: Final = 64 * 1024
#: aiohttp's default request headers the hub ignores: ~55 bytes of every request on a 2G link.
UNSENT_HEADERS: Final = ("User-Agent", "Accept")


class PeerFailure(Exception):
    """A request to a peer did not succeed."""


class PeerError(PeerFailure):
    """The peer answered but refused the request (non-2xx) or sent an unusable body."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(
            f"HTTP {status} {reason}: {detail}" if detail else f"HTTP {status} {reason}"
        )
        self.status = status
        self.reason = reason
        self.detail = detail


class PeerUnavailable(PeerFailure):
    """No answer from the peer: network error or timeout."""


class StaleRequest(Exception):
    """A ``stale_request`` refusal and the peer's ``Date``, for one corrected retry
    (internal to the clients: callers see ``error``, a PeerError, if the retry fails too)."""

    def __init__(self, error: PeerError, date: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.date = date


def new_nonce() -> str:
    # 128 bits from the OS CSPRNG: collisions within a replay window are not a concern.
    return secrets.token_urlsafe(16)


class PeerClient:
    """Signed requests to one peer (a parent hub, a child, or a sibling city hub)."""

    def __init__(
        self,
        base_url: str,
        member_id: str,
        key: KeyPair,
        session: aiohttp.ClientSession,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        clock: Callable[[], float] = time.time,
        nonce_factory: Callable[[], str] = new_nonce,
        peer_clock: PeerClock | None = None,
    ) -> None:
        self.base_url = URL(base_url)
        if not self.base_url.absolute:
            raise ValueError(f"base_url must be absolute: {base_url!r}")
        self.member_id = member_id
        self.key = key
        self.session = session
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        #: The peer's time as learned from its ``Date`` header (share it with a TusClient).
        self.clock = peer_clock or PeerClock(clock)
        self._nonce = nonce_factory

    def __repr__(self) -> str:
        return f"PeerClient({str(self.base_url)!r}, member_id={self.member_id!r})"

    def url(self, path: str, query: Mapping[str, str] | None = None) -> URL:
        """The absolute URL of an endpoint path under ``base_url`` (which may have a prefix)."""
        url = self.base_url.with_path(self.base_url.path.rstrip("/") + path)
        return url.with_query(query) if query else url

    async def push(self, events_json: list[dict[str, Any]]) -> dict[str, Any]:
        """POST /v1/push a batch of wire-form events; return the peer's acknowledgement."""
        return await self._push(canonical({"events": events_json}))

    async def push_events(self, events: Sequence[Event]) -> dict[str, Any]:
        """:meth:`push` of signed events: the body is made of their canonical wire bytes as
        they are (the JCS of ``{"events": [...]}`` is exactly that), nothing re-encoded."""
        return await self._push(b'{"events":[' + b",".join(e.wire_bytes for e in events) + b"]}")

    async def _push(self, batch: bytes) -> dict[str, Any]:
        # mtime=0 keeps the bytes (and so the digest) a pure function of the batch.
        body = gzip.compress(batch, mtime=0)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        # 422 means no event of the batch was taken; its body is still the ack, with the
        # reason of every reject, which the caller needs to quarantine them.
        status, answer = await self._request(
            "POST", self.url("/v1/push"), headers, body, ack_statuses=(422,)
        )
        if status == 422 and isinstance(answer, dict) and "custody" in answer:
            return {k: v for k, v in answer.items() if k not in ("error", "detail")}
        return self._expect_object(status, answer)

    async def feed(self, after: str | None, wait: float) -> dict[str, Any]:
        """GET /v1/feed: events after ``after``, long-polling up to ``wait`` seconds."""
        query = {"wait": f"{wait:g}"}
        if after is not None:
            query = {"after": after, **query}
        # The peer may legitimately hold the request for ``wait`` seconds before answering.
        status, answer = await self._request(
            "GET", self.url("/v1/feed", query), {}, b"", seconds=self.timeout + wait
        )
        return self._expect_object(status, answer)

    async def config(self, have: int | None, city: str | None = None) -> dict[str, Any] | None:
        """GET /v1/config: the newest signed config, or None if ours (``have``) is current.

        ``city`` asks for a metro peer city's config as this peer holds it (a hub serves the
        peer configs it verified down to its children).
        """
        query: dict[str, str] = {}
        if have is not None:
            query["have"] = str(have)
        if city is not None:
            query["city"] = city
        status, answer = await self._request("GET", self.url("/v1/config", query or None), {}, b"")
        if status == 304:
            return None
        return self._expect_object(status, answer)

    async def case_for_window(self, number: str, id_hash: str) -> dict[str, Any]:
        """POST /v1/cases/lookup: the events of a case waiting for 补正 or 补办, for a window
        where the applicant came to supplement (``id_hash``: the applicant's ID, checked at
        the window). The hub answers 404 ``no_such_case`` unless the ID matches."""
        body = gzip.compress(canonical({"case": number, "id_hash": id_hash}), mtime=0)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        status, answer = await self._request("POST", self.url("/v1/cases/lookup"), headers, body)
        return self._expect_object(status, answer)

    async def history(self, member: str, after: int) -> dict[str, Any]:
        """GET /v1/history/<member>: a page of our own chain after seq ``after`` (restore)."""
        query = {"after": str(after)} if after else None
        status, answer = await self._request(
            "GET", self.url(f"/v1/history/{member}", query), {}, b""
        )
        return self._expect_object(status, answer)

    async def blob(self, blob: str) -> tuple[bytes, str]:
        """GET /v1/blobs/<hash>: the blob's bytes (checked against the hash) and media type."""
        check_hash(blob)
        status, raw, media = await self._request_raw("GET", self.url(f"/v1/blobs/{blob}"))
        if sha256_hex(raw) != blob:
            raise PeerError(status, "hash_mismatch", f"blob {blob} arrived damaged")
        return raw, media

    def _expect_object(self, status: int, answer: Any) -> dict[str, Any]:
        if not isinstance(answer, dict):
            raise PeerError(status, "bad_response", "expected a JSON object")
        return answer

    async def _request(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes,
        *,
        seconds: float | None = None,
        ack_statuses: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        """Sign and send; return (status, parsed JSON or None) for 2xx/304 and for
        ``ack_statuses`` whose body is an acknowledgement; raise otherwise."""
        status, raw, _ = await self._exchange(method, url, headers, body, seconds, ack_statuses)
        if status == 304:
            return status, None
        if status in ack_statuses:
            with contextlib.suppress(ProtocolError):
                answer = loads_strict(raw)
                if isinstance(answer, dict) and "custody" in answer:
                    return status, answer
            raise self._error(status, raw)
        try:
            return status, loads_strict(raw) if raw else None
        except ProtocolError as exc:
            raise PeerError(status, exc.reason, exc.detail) from None

    async def _request_raw(self, method: str, url: URL) -> tuple[int, bytes, str]:
        """Sign and send a GET-like request; (status, body bytes, media type) of a 2xx."""
        return await self._exchange(method, url, {}, b"", None, ())

    async def _exchange(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes,
        seconds: float | None,
        passing: tuple[int, ...],
    ) -> tuple[int, bytes, str]:
        """(status, body, media type) of a 2xx, 304 or ``passing`` answer; raise otherwise.

        A ``stale_request`` refusal teaches the client the peer's time (its ``Date``
        header) and the request is signed again and retried once (protocol.http.clock).
        """
        try:
            return await self._exchange_once(method, url, headers, body, seconds, passing)
        except StaleRequest as stale:
            if not self.clock.learn(stale.date):
                raise stale.error from None
        try:
            return await self._exchange_once(method, url, headers, body, seconds, passing)
        except StaleRequest as stale:
            raise stale.error from None

    async def _exchange_once(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes,
        seconds: float | None,
        passing: tuple[int, ...],
    ) -> tuple[int, bytes, str]:
        signed = {**headers, CLOCK_HEADER: str(self.clock.local())}
        signed.update(
            sign_request(
                method,
                str(url),
                signed,
                body,
                self.key,
                created=self.clock.created(),
                nonce=self._nonce(),
            )
        )
        client_timeout = aiohttp.ClientTimeout(total=self.timeout if seconds is None else seconds)
        try:
            async with self.session.request(
                method,
                url,
                data=body or None,
                headers=signed,
                timeout=client_timeout,
                # Redirects would re-send to a URL the signature does not cover.
                allow_redirects=False,
                skip_auto_headers=UNSENT_HEADERS,
            ) as resp:
                raw = await self._read(resp)
                date = resp.headers.get("Date")
                media = resp.content_type
        # TimeoutError (total timeout) is an OSError, as are socket errors aiohttp lets through.
        except (aiohttp.ClientError, OSError) as exc:
            raise PeerUnavailable(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        if 200 <= resp.status < 300 or resp.status == 304 or resp.status in passing:
            return resp.status, raw, media
        error = self._error(resp.status, raw)
        if error.reason == "stale_request":
            raise StaleRequest(error, date)
        raise error

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        limit = self.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        while chunk := await resp.content.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise PeerError(resp.status, "response_too_large", f"over {limit} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not self.session.auto_decompress:
            # A session built with auto_decompress=False hands us the bytes as sent.
            try:
                raw = decode_body(raw, resp.headers.get("Content-Encoding"), limit)
            except ProtocolError as exc:
                raise PeerError(resp.status, exc.reason, exc.detail) from None
        return raw

    def _error(self, status: int, raw: bytes) -> PeerError:
        """A PeerError from an error body, tolerating proxies that answer in HTML."""
        try:
            answer = loads_strict(raw)
        except ProtocolError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            detail = answer.get("detail")
            return PeerError(status, answer["error"], detail if isinstance(detail, str) else "")
        text = raw[:200].decode("utf-8", "replace")
        return PeerError(status, f"http_{status}", text)
