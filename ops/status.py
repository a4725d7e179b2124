"""Read the city hub's operator status (``tongban ops member list --hub``).

The operator logs in like any hub staff member (``POST /api/login``, an account with the
role ``operator``) and reads ``GET /dashboard/api/members``: per member, when the hub last
saw it, its relay backlog and errors (hub/dashboard.py). Talks to the hub over HTTP only.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from yarl import URL


class StatusFailed(Exception):
    """The hub could not be reached, refused the login, or answered nonsense."""


def _base(hub: str) -> URL:
    url = URL(hub)
    if not url.absolute or url.scheme not in {"http", "https"}:
        raise StatusFailed(f"枢纽地址应为 http(s)://… , 而不是 {hub!r}")
    return url.with_path("/").with_query(None)


async def _error(resp: aiohttp.ClientResponse) -> str:
    try:
        body = await resp.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return f"HTTP {resp.status}"
    if isinstance(body, dict):
        return f"HTTP {resp.status} {body.get('error', '')}: {body.get('detail', '')}"
    return f"HTTP {resp.status}"


async def members_status(
    hub: str, staff: str, password: str, *, seconds: float = 30.0
) -> list[dict[str, Any]]:
    """Log in as ``staff`` and return the hub's member rows."""
    base = _base(hub)
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=seconds),
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # hubs are often addressed by IP
        ) as session:
            async with session.post(
                base / "api/login", json={"staff": staff, "password": password}
            ) as resp:
                if resp.status != 200:
                    raise StatusFailed(f"登录 {base} 失败 ({staff}): {await _error(resp)}")
            async with session.get(base / "dashboard/api/members") as resp:
                if resp.status != 200:
                    raise StatusFailed(f"读取成员状态失败: {await _error(resp)}")
                body = await resp.json(content_type=None)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise StatusFailed(f"无法连接 {base}: {type(exc).__name__}: {exc}") from None
    rows = body.get("members") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise StatusFailed(f"{base} 的回答不是成员列表")
    return [r for r in rows if isinstance(r, dict) and isinstance(r.get("id"), str)]


def fetch_members(hub: str, staff: str, password: str) -> list[dict[str, Any]]:
    """:func:`members_status` for a command line (runs its own event loop)."""
    return asyncio.run(members_status(hub, staff, password))
