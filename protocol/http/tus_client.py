"""tus 1.0 client for material uploads (docs/protocol.md §9.3): core, creation, checksum.

A blob is named by the hex SHA-256 of its bytes. :meth:`TusClient.upload` drives one blob
to the hub and never sends a byte the hub already holds:

1. with no upload URL yet, ``POST /v1/blobs`` creates one. ``200`` without ``Location``
   means the hub already holds the blob (只提交一次材料): nothing is sent. ``201`` (or
   ``200`` when the hub resumes an upload of this blob it holds open for us) gives the
   ``Location`` and the offset held; the caller's ``on_created`` must persist the URL
   **before** any byte is sent, so a crash after the first PATCH can resume instead of
   restarting;
2. with a persisted URL (after a crash or a cut connection), ``HEAD`` asks the offset the
   hub holds; an upload the hub no longer knows (404/410) starts over with step 1;
3. ``PATCH`` sends the rest in chunks (about 256 KiB), each with ``Upload-Offset`` and
   ``Upload-Checksum: sha256 <base64 digest of the chunk>``. A ``409 offset_mismatch``
   re-reads the offset with HEAD; a ``460 checksum_mismatch`` (the chunk was damaged in
   transit, nothing stored) resends that chunk, a bounded number of times.

Every request carries ``Tus-Resumable: 1.0.0`` and the RFC 9421 signature of §9.1 over the
exact URL and body bytes (chunks are sent uncompressed). Failures are the
:class:`~protocol.http.client.PeerFailure` kinds of the push client, so one backoff policy
covers both. The caller owns persistence (through the two callbacks) and the bytes
(``read_chunk``), which keeps this module free of any storage.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

import aiohttp
from yarl import URL

from ..encoding import loads_strict
from ..errors import ProtocolError
from ..keys import KeyPair
from .blobs import check_hash
from .client import UNSENT_HEADERS, PeerError, PeerUnavailable, StaleRequest, new_nonce
from .clock import CLOCK_HEADER, PeerClock
from .signing import sign_request
from .tus import checksum_header, encode_metadata

TUS_VERSION: Final = "1.0.0"
DEFAULT_CHUNK: Final = 256 * 1024
DEFAULT_TIMEOUT: Final = 60.0
MAX_CHECKSUM_RETRIES: Final = 3
MAX_OFFSET_RESYNCS: Final = 5
_MAX_ERROR_BODY: Final = 64 * 1024

ReadChunk = Callable[[int, int], Awaitable[bytes]]
"""``read_chunk(offset, size)``: the blob's bytes from ``offset``, at most ``size``."""


@dataclass(frozen=True)
class UploadOutcome:
    """How an upload ended: ``already_held`` (nothing sent) or complete after
    ``bytes_sent`` bytes (only what the hub did not hold)."""

    blob: str
    size: int
    already_held: bool
    bytes_sent: int
    url: str | None


def _offset_header(resp: aiohttp.ClientResponse, what: str) -> int:
    value = resp.headers.get("Upload-Offset", "")
    if not value.isdigit():
        raise PeerError(resp.status, "bad_response", f"{what}: no valid Upload-Offset")
    return int(value)


class TusClient:
    """Signed tus requests to one hub."""

    def __init__(
        self,
        base_url: str,
        member_id: str,
        key: KeyPair,
        session: aiohttp.ClientSession,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        nonce_factory: Callable[[], str] = new_nonce,
        peer_clock: PeerClock | None = None,
    ) -> None:
        self.base_url = URL(base_url)
        if not self.base_url.absolute:
            raise ValueError(f"base_url must be absolute: {base_url!r}")
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.member_id = member_id
        self.key = key
        self.session = session
        self.chunk_size = chunk_size
        self.timeout = timeout
        #: The hub's time as learned from its ``Date`` header (shared with the PeerClient).
        self.clock = peer_clock or PeerClock(clock)
        self._nonce = nonce_factory

    def url(self, path: str) -> URL:
        return self.base_url.with_path(self.base_url.path.rstrip("/") + path)

    # -- the three requests -------------------------------------------------------------

    async def create(self, blob: str, size: int) -> tuple[str | None, int]:
        """``POST /v1/blobs``: (upload URL, held offset), or (None, size) if already held.

        ``201`` + ``Location``: a new upload. ``200`` without ``Location``: the hub holds the
        blob. ``200`` + ``Location``: the hub resumes an upload of this blob it already has
        open for us (we lost its URL), at the ``Upload-Offset`` it holds.
        """
        check_hash(blob)
        headers = {"Upload-Length": str(size), "Upload-Metadata": encode_metadata({"sha256": blob})}
        status, resp_headers, offset = await self._send("POST", self.url("/v1/blobs"), headers)
        location = resp_headers.get("Location")
        if status == 200 and not location:
            if offset != size:
                raise PeerError(status, "bad_response", f"held blob has {offset} of {size} bytes")
            return None, size
        if status not in (200, 201):
            raise PeerError(status, "bad_response", f"POST /v1/blobs answered {status}")
        if not location:
            raise PeerError(status, "bad_response", "201 without Location")
        if not 0 <= offset <= size:
            raise PeerError(status, "bad_response", f"offset {offset} outside 0..{size}")
        return str(self.base_url.join(URL(location))), offset

    async def offset(self, url: str) -> int | None:
        """``HEAD``: the offset the hub holds, or None when it no longer knows the upload."""
        try:
            _, _, offset = await self._send("HEAD", URL(url), {})
        except PeerError as exc:
            if exc.status in (404, 410):
                return None
            raise
        return offset

    async def patch(self, url: str, offset: int, chunk: bytes) -> int:
        """``PATCH`` one chunk at ``offset``; returns the hub's new offset."""
        headers = {
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Upload-Checksum": checksum_header(chunk),
        }
        status, _, new_offset = await self._send("PATCH", URL(url), headers, chunk)
        if status not in (200, 204):
            raise PeerError(status, "bad_response", f"PATCH answered {status}")
        return new_offset

    # -- the whole upload ---------------------------------------------------------------

    async def upload(
        self,
        blob: str,
        size: int,
        read_chunk: ReadChunk,
        *,
        url: str | None = None,
        on_created: Callable[[str], Awaitable[None]] | None = None,
        on_progress: Callable[[int, int], Awaitable[None]] | None = None,
    ) -> UploadOutcome:
        """Bring ``blob`` (``size`` bytes) to the hub, resuming at ``url`` if given.

        ``on_created(url)`` runs before any byte is sent; ``on_progress(offset, sent)``
        after each acknowledged chunk (``sent``: bytes of that chunk).
        """
        check_hash(blob)
        offset: int | None = None
        if url is not None:
            offset = await self.offset(url)
        if offset is None:
            created, held = await self.create(blob, size)
            if created is None:
                return UploadOutcome(blob, size, True, 0, None)
            url, offset = created, held
            if on_created is not None:
                await on_created(url)
        assert url is not None  # a held offset comes from HEAD on a URL or from create()
        target: str = url
        sent = 0
        bad_checksums = resyncs = 0
        while offset < size:
            chunk = await read_chunk(offset, min(self.chunk_size, size - offset))
            if not chunk:
                raise PeerError(0, "short_read", f"blob {blob} ended at {offset} of {size}")
            try:
                new_offset = await self.patch(target, offset, chunk)
            except PeerError as exc:
                if exc.status == 460 and bad_checksums < MAX_CHECKSUM_RETRIES:
                    bad_checksums += 1
                    continue
                if exc.status == 409 and resyncs < MAX_OFFSET_RESYNCS:
                    resyncs += 1
                    held_now = await self.offset(target)
                    if held_now is None:
                        raise
                    offset = held_now
                    continue
                raise
            sent += len(chunk)
            offset = new_offset
            if on_progress is not None:
                await on_progress(offset, len(chunk))
        return UploadOutcome(blob, size, False, sent, target)

    # -- transport ----------------------------------------------------------------------

    async def _send(
        self, method: str, url: URL, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], int]:
        """Sign and send; (status, headers, Upload-Offset) of a 2xx, PeerFailure otherwise.

        A ``stale_request`` refusal corrects the clock from the hub's ``Date`` and the
        request is retried once (protocol.http.clock).
        """
        try:
            return await self._send_once(method, url, headers, body)
        except StaleRequest as stale:
            if not self.clock.learn(stale.date):
                raise stale.error from None
        try:
            return await self._send_once(method, url, headers, body)
        except StaleRequest as stale:
            raise stale.error from None

    async def _send_once(
        self, method: str, url: URL, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], int]:
        signed = {"Tus-Resumable": TUS_VERSION, CLOCK_HEADER: str(self.clock.local()), **headers}
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
        try:
            async with self.session.request(
                method,
                url,
                data=body if body else None,
                headers=signed,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
                skip_auto_headers=UNSENT_HEADERS,
            ) as resp:
                if not 200 <= resp.status < 300:
                    raw = await resp.content.read(_MAX_ERROR_BODY)
                    error = self._error(resp.status, raw)
                    if error.reason == "stale_request":
                        raise StaleRequest(error, resp.headers.get("Date"))
                    raise error
                offset = _offset_header(resp, f"{method} {url.path}")
                return resp.status, dict(resp.headers), offset
        except (aiohttp.ClientError, OSError) as exc:
            raise PeerUnavailable(f"{method} {url}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _error(status: int, raw: bytes) -> PeerError:
        try:
            answer = loads_strict(raw) if raw else None
        except ProtocolError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            detail = answer.get("detail")
            return PeerError(status, answer["error"], detail if isinstance(detail, str) else "")
        return PeerError(status, f"http_{status}", raw[:200].decode("utf-8", "replace"))
