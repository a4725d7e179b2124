"""Publish a signed config to a hub: ``POST /v1/config`` (docs/protocol.md §9.2).

No request signature: the config carries the root signature, which is what makes it true;
the hub adopts it by the trust rules of §6 (higher serial, signed by a root key it trusts)
and answers with JSON. The body is the canonical JSON of ``{"config", "sig"}``, gzip-encoded
like every body on the wire unless ``gzip`` is False (for a proxy that mangles encodings).
"""

from __future__ import annotations

import asyncio
import gzip
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from protocol.encoding import canonical, loads_strict
from protocol.errors import ProtocolError


@dataclass(frozen=True)
class PushAnswer:
    """What the hub said: HTTP status and its JSON body (or text when not JSON)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class PushFailed(Exception):
    """No answer from the hub (connection refused, timeout, bad URL)."""


def config_url(hub: str) -> URL:
    """The ``/v1/config`` URL of a hub given by its base URL (or that URL itself)."""
    url = URL(hub)
    if not url.absolute or url.scheme not in {"http", "https"}:
        raise PushFailed(f"枢纽地址应为 http(s)://… , 而不是 {hub!r}")
    if url.path.rstrip("/").endswith("/v1/config"):
        return url
    return url.with_path(url.path.rstrip("/") + "/v1/config").with_query(None)


async def push_config(
    hub: str, signed: dict[str, Any], *, seconds: float = 30.0, use_gzip: bool = True
) -> PushAnswer:
    """POST a signed config to a hub and return its answer."""
    url = config_url(hub)
    body = canonical(signed)
    headers = {"Content-Type": "application/json"}
    if use_gzip:
        body = gzip.compress(body, mtime=0)
        headers["Content-Encoding"] = "gzip"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as session,
            session.post(url, data=body, headers=headers, allow_redirects=False) as resp,
        ):
            raw = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, OSError) as exc:
        raise PushFailed(f"无法连接 {url}: {type(exc).__name__}: {exc}") from None
    try:
        answer: Any = loads_strict(raw) if raw else None
    except ProtocolError:
        answer = raw[:500].decode("utf-8", "replace")
    return PushAnswer(status, answer)


def push_config_sync(
    hub: str, signed: dict[str, Any], *, seconds: float = 30.0, use_gzip: bool = True
) -> PushAnswer:
    """:func:`push_config` for a command line (runs its own event loop)."""
    return asyncio.run(push_config(hub, signed, seconds=seconds, use_gzip=use_gzip))
