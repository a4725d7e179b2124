"""Test-side helpers around :mod:`ops.launch` (which builds and runs local federations):
a fresh PostgreSQL database per test, and clients for the clerk's and the reviewer's APIs.

Tests talk to the running members over HTTP, as a clerk or a reviewer would; nothing here
reaches into a member's tables except read-only checks a test states explicitly.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from yarl import URL

from ops.launch import CITY_DEPTS, DISTRICT_DEPTS, LocalFederation, Member, free_port
from ops.scenario import id_number as id_number  # re-exported for the tests
from tests.conftest import need_service

PG_URL = os.environ.get("TONGBAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def fresh_database() -> tuple[str, Callable[[], Awaitable[None]]]:
    """A new PostgreSQL database for one test: its SQLAlchemy URL and a coroutine dropping it."""
    name = f"tb_it_{secrets.token_hex(4)}"
    try:
        conn = await asyncpg.connect(PG_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        need_service("PostgreSQL", f"{PG_URL}: {exc}")
        raise
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(PG_URL, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    url = URL(PG_URL).with_scheme("postgresql+asyncpg").with_path(f"/{name}")
    return str(url), drop


class Clerk:
    """A window clerk using the station's JSON API."""

    def __init__(self, station: Member, password: str, http: aiohttp.ClientSession) -> None:
        self.station = station
        self.password = password
        self.http = http
        self.csrf = ""

    async def login(self) -> None:
        async with self.http.post(
            self.station.url + "api/login",
            json={"username": "admin", "password": self.password},
        ) as resp:
            assert resp.status == 200, await resp.text()
            self.csrf = (await resp.json())["csrf_token"]

    async def get(self, path: str) -> Any:
        async with self.http.get(self.station.url + path) as resp:
            assert resp.status == 200, f"{path}: {resp.status} {await resp.text()}"
            return await resp.json()

    async def post(self, path: str, data: Any, *, expect: int = 200) -> Any:
        kwargs: dict[str, Any] = (
            {"data": data} if isinstance(data, aiohttp.FormData) else {"json": data}
        )
        async with self.http.post(
            self.station.url + path, headers={"X-CSRF-Token": self.csrf}, **kwargs
        ) as resp:
            body = await resp.json()
            assert resp.status == expect, f"{path}: {resp.status} {body}"
            return body


class Reviewer:
    """A reviewer using the hub's workbench JSON API."""

    def __init__(self, hub: Member, http: aiohttp.ClientSession) -> None:
        self.hub = hub
        self.http = http
        self.csrf = ""

    async def login(self, staff: str, password: str) -> None:
        async with self.http.post(
            self.hub.url + "api/login", json={"staff": staff, "password": password}
        ) as resp:
            assert resp.status == 200, await resp.text()
            self.csrf = (await resp.json())["csrf"]

    async def get(self, path: str) -> Any:
        async with self.http.get(self.hub.url + path) as resp:
            assert resp.status == 200, f"{path}: {resp.status} {await resp.text()}"
            return await resp.json()

    async def act(self, number: str, action: str, body: dict[str, Any]) -> Any:
        async with self.http.post(
            f"{self.hub.url}api/cases/{number}/{action}",
            json=body,
            headers={"X-CSRF-Token": self.csrf},
        ) as resp:
            answer = await resp.json()
            assert resp.status == 200, f"{action}: {resp.status} {answer}"
            return answer


async def metric(url: str, name: str) -> float:
    """The value of one Prometheus sample (summed over labels) from ``url``/metrics."""
    async with aiohttp.ClientSession() as http, http.get(url + "metrics") as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name:
                total += float(value)
    return total


@contextlib.asynccontextmanager
async def heping(
    root: Path, staff: tuple[str, str, str], *roles: str
) -> AsyncIterator[tuple[LocalFederation, Member]]:
    """沈阳 with the 和平区 hub (its own fresh PostgreSQL database) and one staff member of
    和平区卫生健康局 (wjj) enrolled; nothing running yet. Stops everything and drops the
    database afterwards.

    The city hub is a member (every config has one) but need not run for a district slice.
    """
    db, drop = await fresh_database()
    fed = LocalFederation(root)
    try:
        await fed.create()
        city = await fed.add_hub("2101", "沈阳市政务服务中心", None, CITY_DEPTS, port=free_port())
        hub = await fed.add_hub(
            "210102", "和平区政务服务中心", city.url, DISTRICT_DEPTS, port=free_port(), db=db
        )
        await fed.add_staff(staff[0], staff[1], "210102", "wjj", *roles)
        yield fed, hub
    finally:
        await fed.stop_all()
        await drop()
