"""A real village station (``tongban node run``) under the district hub, its traffic through
a fault proxy whose byte counters measure the wire; the clerk and reviewer APIs as clients."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from node.station import DB_FILE
from ops.launch import Member, eventually, free_port
from tests.integration.faultproxy import FaultProxy, LinkProfile
from tests.integration.harness import Clerk, Reviewer, id_number

from .common import MATTER, REVIEWER, District, district

VILLAGE = "210102001001"


def application(serial: int, files: dict[str, bytes]) -> aiohttp.FormData:
    """A 诊所备案 application as the window sends it (multipart), scans for some materials."""
    form = aiohttp.FormData()
    body = {
        "matter": MATTER,
        "applicant": {"name": f"申请人{serial}", "id_type": "111", "id_number": id_number(serial)},
        "materials": [{"id": m} for m in ("form", "licence", "doctors", "layout", "rules")],
    }
    form.add_field(
        "application", json.dumps(body, ensure_ascii=False), content_type="application/json"
    )
    for material, data in files.items():
        form.add_field(
            f"file.{material}", data, filename=f"{material}.pdf", content_type="application/pdf"
        )
    return form


def scan(size: int) -> bytes:
    """An incompressible 'PDF' of ``size`` bytes (scans are JPEG inside: gzip cannot help)."""
    return b"%PDF-1.4\n" + os.urandom(size - 9)


@dataclass
class Village:
    d: District
    station: Member
    proxy: FaultProxy
    clerk: Clerk
    reviewer: Reviewer
    http: aiohttp.ClientSession

    async def sync(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self.clerk.get("api/sync")
        return answer

    async def drained(self, within: float = 600.0) -> float:
        """Wait until nothing waits at the station; returns the monotonic time it was seen."""

        async def empty() -> float | None:
            waiting = (await self.sync())["waiting"]
            idle = waiting["events"] == 0 and waiting["blobs"] == 0
            return time.monotonic() if idle else None

        return await eventually(empty, within=within, every=0.05)

    def received(self) -> int:
        """How many events of others the station holds (its own database, read-only)."""
        uri = f"file:{self.station.data / DB_FILE}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM events WHERE NOT own").fetchone()[0])

    async def settled(self, received: int, within: float = 120.0) -> float:
        """:meth:`drained`, and the station holds ``received`` events of others (the
        送达回执 that come back down): the link has carried everything both ways."""
        await self.drained(within)

        async def arrived() -> float | None:
            return time.monotonic() if self.received() >= received else None

        return await eventually(arrived, within=within, every=0.05)


@contextlib.asynccontextmanager
async def village(root: Path, link: LinkProfile | None = None) -> AsyncIterator[Village]:
    """The district hub running, one real station whose parent URL is the proxy."""
    async with district(root) as d:
        proxy = FaultProxy(d.hub.port, link or LinkProfile())
        await proxy.start()
        try:
            station, password = await d.fed.add_station(
                VILLAGE, "示例村便民服务站", d.hub, port=free_port()
            )
            await d.fed.sign_and_push()
            path = station.data / "station.json"
            settings = json.loads(path.read_text(encoding="utf-8"))
            settings["parent_url"] = proxy.url
            path.write_text(json.dumps(settings, ensure_ascii=False), encoding="utf-8")
            await station.proc.start()
            jar = aiohttp.CookieJar(unsafe=True)
            async with (
                aiohttp.ClientSession(cookie_jar=jar) as http,
                aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http2,
            ):
                clerk = Clerk(station, password, http)
                await clerk.login()

                async def has_config() -> bool:
                    return bool((await clerk.get("api/sync"))["config"]["serial"])

                await eventually(has_config, within=120)
                reviewer = Reviewer(d.hub, http2)
                await reviewer.login(REVIEWER[0], REVIEWER[2])
                yield Village(d, station, proxy, clerk, reviewer, http)
        finally:
            await proxy.close()
