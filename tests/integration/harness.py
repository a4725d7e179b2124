"""Real processes on 127.0.0.1 for integration tests: a federation built with the operator's
commands, hubs and stations started with ``tongban hub run`` / ``tongban node run``.

Nothing here reaches into a member's tables: setup goes through the ``tongban`` command, and
tests talk to the running members over HTTP, as an operator, a clerk or a reviewer would.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
from yarl import URL

from tests.conftest import need_service

ROOT = Path(__file__).resolve().parents[2]
TONGBAN = str(Path(sys.executable).with_name("tongban"))
CATALOG = ROOT / "ops" / "examples" / "catalog.yaml"
PG_URL = os.environ.get("TONGBAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
T = TypeVar("T")

# Seal departments of the example catalog, by hub level.
CITY_DEPTS = {
    "sfj": "沈阳市司法局",
    "jtj": "沈阳市交通运输局",
    "gaj": "沈阳市公安局",
    "scjgj": "沈阳市市场监督管理局",
    "swj": "国家税务总局沈阳市税务局",
    "rsj": "沈阳市人力资源和社会保障局",
}
DISTRICT_DEPTS = {"mzj": "和平区民政局", "wjj": "和平区卫生健康局", "scjgj": "和平区市场监督管理局"}


def id_number(serial: int, birth: str = "19900101", region: str = "210102") -> str:
    """A well-formed 18-character 居民身份证 number (GB 11643 check character) for test data."""
    body = f"{region}{birth}{serial % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(c) * w for c, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    """Run ``tongban ARGS`` to completion; return its stdout (raise with its output if it fails)."""
    proc = await asyncio.create_subprocess_exec(
        TONGBAN,
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        raise AssertionError(
            f"tongban {' '.join(args)} exited {proc.returncode}:\n{out.decode()}\n{err.decode()}"
        )
    return out.decode()


def enrolment_line(output: str) -> str:
    """The ``TBENROL1.`` line an ``init`` command printed."""
    match = re.search(r"^(TBENROL1\.\S+)$", output, re.MULTILINE)
    assert match, f"no enrolment request in:\n{output}"
    return match.group(1)


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, within: float = 30.0, every: float = 0.2
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met in {within}s (last: {last!r})")


@dataclass
class Proc:
    """One ``tongban … run`` process with its log file."""

    name: str
    args: list[str]
    url: str
    log: Path
    proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        handle = self.log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            TONGBAN, *self.args, stdout=handle, stderr=asyncio.subprocess.STDOUT
        )
        handle.close()
        await eventually(self._healthy, within=30)

    async def _healthy(self) -> bool:
        if self.proc is not None and self.proc.returncode is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
        try:
            async with aiohttp.ClientSession() as http, http.get(self.url + "healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(sig)
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Station:
    """A station's data dir, port and admin login."""

    id: str
    data: Path
    port: int
    password: str
    proc: Proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@dataclass
class HubInfo:
    id: str
    data: Path
    port: int
    db: str
    proc: Proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@dataclass
class Federation:
    """A federation built in ``root`` with the operator's commands."""

    root: Path
    fed_dir: Path
    root_key: str = ""
    hubs: dict[str, HubInfo] = field(default_factory=dict)
    stations: dict[str, Station] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {"TONGBAN_FED_DIR": str(self.fed_dir)}

    async def ops(self, *args: str) -> str:
        return await run_cli("ops", *args, env=self.env())

    async def create(self, city_port: int) -> None:
        """The city root, the city hub's membership (its process is optional) and the catalog."""
        requests = self.root / "requests"
        requests.mkdir(parents=True)
        seals = [a for d in CITY_DEPTS for a in ("--seal", d)]
        await self.ops(
            "member", "request", "--id", "2101", "--role", "hub", "--name", "沈阳市政务服务中心",
            "--endpoint", f"http://127.0.0.1:{city_port}/", *seals,
            "--data", str(self.root / "hub-2101"), "--out", str(requests / "2101.txt"),
        )  # fmt: skip
        names = [a for d, n in CITY_DEPTS.items() for a in ("--authority-name", f"{d}={n}")]
        await self.ops(
            "federation", "init", "--city", "2101", "--name", "沈阳市",
            "--hub-enrolment", str(requests / "2101.txt"), "--insecure-no-passphrase", *names,
        )  # fmt: skip
        self.root_key = (await self.ops("federation", "root-key")).strip()

    async def add_hub(
        self, member_id: str, parent_url: str, departments: dict[str, str], db: str
    ) -> HubInfo:
        port = free_port()
        data = self.root / f"hub-{member_id}"
        depts = [a for d in departments for a in ("--authority", d)]
        out = await run_cli(
            "hub", "init", "--id", member_id, "--data", str(data), "--parent", parent_url,
            "--db", db, "--port", str(port), "--root", self.root_key, *depts,
        )  # fmt: skip
        names = [a for d, n in departments.items() for a in ("--authority-name", f"{d}={n}")]
        await self.ops(
            "member", "approve", enrolment_line(out),
            "--endpoint", f"http://127.0.0.1:{port}/", *names,
        )  # fmt: skip
        proc = Proc(
            f"hub {member_id}",
            ["hub", "run", "--data", str(data)],
            f"http://127.0.0.1:{port}/",
            self.root / f"hub-{member_id}.log",
        )
        info = HubInfo(member_id, data, port, db, proc)
        self.hubs[member_id] = info
        return info

    async def add_station(self, member_id: str, parent: HubInfo, name: str) -> Station:
        port = free_port()
        data = self.root / f"node-{member_id}"
        out = await run_cli(
            "node", "init", "--id", member_id, "--parent", parent.url, "--data", str(data),
            "--port", str(port), "--root", self.root_key, "--name", name,
        )  # fmt: skip
        password = re.search(r"密码\s+(\S+)", out)
        assert password, out
        await self.ops("member", "approve", enrolment_line(out))
        proc = Proc(
            f"node {member_id}",
            ["node", "run", "--data", str(data)],
            f"http://127.0.0.1:{port}/",
            self.root / f"node-{member_id}.log",
        )
        station = Station(member_id, data, port, password.group(1), proc)
        self.stations[member_id] = station
        return station

    async def add_staff(
        self, staff_id: str, name: str, member: str, dept: str, *roles: str
    ) -> None:
        await self.ops(
            "staff", "add", "--id", staff_id, "--name", name, "--member", member,
            "--department", dept, *[a for r in roles for a in ("--role", r)],
        )  # fmt: skip

    async def publish(self) -> None:
        """Stage the example catalog, sign the config and hand it to every hub."""
        await self.ops("catalog", "publish", str(CATALOG))
        await self.ops("config", "sign")
        for hub in self.hubs.values():
            await self.ops("config", "push", hub.url)

    async def set_password(self, hub: HubInfo, staff_id: str, password: str) -> None:
        await run_cli("hub", "passwd", "--data", str(hub.data), staff_id, stdin=password + "\n")


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

    def __init__(self, station: Station, http: aiohttp.ClientSession) -> None:
        self.station = station
        self.http = http
        self.csrf = ""

    async def login(self) -> None:
        async with self.http.post(
            self.station.url + "api/login",
            json={"username": "admin", "password": self.station.password},
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

    def __init__(self, hub: HubInfo, http: aiohttp.ClientSession) -> None:
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


def sigkill(proc: Proc) -> None:
    """Kill a member process abruptly (a power cut, as far as the process can tell)."""
    assert proc.proc is not None
    os.kill(proc.proc.pid, signal.SIGKILL)
