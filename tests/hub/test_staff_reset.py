"""An operator's password reset (``tongban ops staff reset``) reaching the hub in a config:
the next login takes the new password, the old one and its sessions stop working."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from argon2 import PasswordHasher

from hub.services.staff import set_password
from tests.hub.conftest import StartHub
from tests.hub.fed import CST, DISTRICT, PASSWORD, REVIEWER, Fed

NEW_PASSWORD = "重置后的口令-2026"


@dataclass
class ResetFed(Fed):
    reset_at: str = ""

    def config_dict(self) -> dict[str, Any]:
        obj = super().config_dict()
        for entry in obj["staff"]:
            if entry["id"] == REVIEWER and self.reset_at:
                entry["password_reset"] = {
                    "at": self.reset_at,
                    "hash": PasswordHasher().hash(NEW_PASSWORD),
                }
        return obj


async def login(http: aiohttp.ClientSession, base: str, password: str) -> int:
    async with http.post(
        f"{base}api/login", json={"staff": REVIEWER, "password": password}
    ) as resp:
        return resp.status


async def test_reset_replaces_the_password_once(start_hub: StartHub) -> None:
    running = await start_hub(DISTRICT, fed=ResetFed())
    await set_password(running.hub, REVIEWER, PASSWORD)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await login(http, running.url, PASSWORD) == 200
        async with http.get(f"{running.url}api/me") as resp:
            assert resp.status == 200

        at = (datetime.now(CST).replace(microsecond=0) + timedelta(seconds=1)).isoformat()
        adoption = await running.hub.view.adopt(
            ResetFed(serial=2, reset_at=at).signed_dict(), running.hub.now()
        )
        assert adoption.adopted
        assert await login(http, running.url, PASSWORD) == 401  # the old one is gone
        async with http.get(f"{running.url}api/me") as resp:
            assert resp.status == 401  # and so is the session it opened
        assert await login(http, running.url, NEW_PASSWORD) == 200
        assert await login(http, running.url, NEW_PASSWORD) == 200  # taken once, kept

        # A password the reviewer sets afterwards is not overwritten by the old reset.
        later = datetime.now(CST) + timedelta(minutes=1)
        running.hub.clock = lambda: later
        await set_password(running.hub, REVIEWER, "以后自己设的口令")
        assert await login(http, running.url, "以后自己设的口令") == 200
        assert await login(http, running.url, NEW_PASSWORD) == 401
