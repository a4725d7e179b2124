"""Build and run a federation on this machine: the demo, and the integration tests.

Everything goes through the ``tongban`` command exactly as an operator and the member
machines would use it (``ops …`` for the federation, ``hub init`` / ``node init`` on each
member, ``… run`` to serve), so a local federation exercises the real set-up path. Members
run as separate processes on 127.0.0.1, each with its own data folder.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp

T = TypeVar("T")
TONGBAN = str(Path(sys.executable).with_name("tongban"))
EXAMPLES = Path(__file__).resolve().parent / "examples"
CATALOG = EXAMPLES / "catalog.yaml"

# Seal departments of the example catalog (ops/examples/catalog.yaml), by hub.
CITY_DEPTS = {
    "sfj": "沈阳市司法局",
    "jtj": "沈阳市交通运输局",
    "gaj": "沈阳市公安局",
    "scjgj": "沈阳市市场监督管理局",
    "swj": "国家税务总局沈阳市税务局",
    "rsj": "沈阳市人力资源和社会保障局",
}
DISTRICT_DEPTS = {"mzj": "和平区民政局", "wjj": "和平区卫生健康局", "scjgj": "和平区市场监督管理局"}


class LaunchError(Exception):
    """A member could not be set up or started; the message says why."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now. SO_REUSEADDR as the servers
    set it: connections of a stopped run lingering in TIME_WAIT do not make a port busy."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    """Run ``tongban ARGS`` to completion and return its standard output."""
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
        raise LaunchError(
            f"tongban {' '.join(args[:3])} … exited {proc.returncode}:\n"
            f"{out.decode(errors='replace')}{err.decode(errors='replace')}"
        )
    return out.decode()


def enrolment_line(output: str) -> str:
    """The ``TBENROL1.`` line that ``hub init`` / ``node init`` printed."""
    match = re.search(r"^(TBENROL1\.\S+)$", output, re.MULTILINE)
    if match is None:
        raise LaunchError(f"no enrolment request in the output:\n{output}")
    return match.group(1)


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, within: float = 30.0, every: float = 0.2
) -> T:
    """Poll ``check`` until it returns something truthy; LaunchError after ``within`` s."""
    deadline = time.monotonic() + within
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise LaunchError(f"condition not met in {within}s (last: {last!r})")


@dataclass
class Proc:
    """One ``tongban … run`` process, its URL and its log file."""

    name: str
    args: list[str]
    url: str
    log: Path
    proc: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, *, within: float = 60.0) -> None:
        """Start the process and wait until it answers ``/healthz``."""
        with self.log.open("ab") as handle:
            self.proc = await asyncio.create_subprocess_exec(
                TONGBAN,
                *self.args,
                stdout=handle,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        await eventually(self._healthy, within=within)

    async def _healthy(self) -> bool:
        if self.proc is not None and self.proc.returncode is not None:
            raise LaunchError(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
        try:
            async with aiohttp.ClientSession() as http, http.get(self.url + "healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        """Ask the process to stop; kill it if it has not after 15 s."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(sig)
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def kill(self) -> None:
        """Kill abruptly (a power cut, as far as the process can tell)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Member:
    """A hub or station of a local federation: its data folder, port and process."""

    id: str
    kind: str  # "hub" | "node"
    name: str
    data: Path
    port: int
    proc: Proc
    db: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@dataclass
class LocalFederation:
    """A federation built in ``root`` with the operator's commands, members as processes."""

    root: Path
    city: str = "2101"
    city_name: str = "沈阳市"
    root_key: str = ""
    members: dict[str, Member] = field(default_factory=dict)

    @property
    def fed_dir(self) -> Path:
        return self.root / "federation"

    def env(self) -> dict[str, str]:
        return {"TONGBAN_FED_DIR": str(self.fed_dir)}

    async def ops(self, *args: str) -> str:
        return await run_cli("ops", *args, env=self.env())

    async def create(self) -> None:
        """The root key and an empty draft; approve the city hub next (``add_hub``)."""
        await self.ops(
            "federation", "init", "--city", self.city, "--name", self.city_name,
            "--insecure-no-passphrase",
        )  # fmt: skip
        self.root_key = (await self.ops("federation", "root-key")).strip()

    def member(self, member_id: str, kind: str, name: str, data: Path, port: int) -> Member:
        proc = Proc(
            f"{kind} {member_id}",
            [kind, "run", "--data", str(data)],
            f"http://127.0.0.1:{port}/",
            self.root / "logs" / f"{kind}-{member_id}.log",
        )
        proc.log.parent.mkdir(parents=True, exist_ok=True)
        member = Member(member_id, kind, name, data, port, proc)
        self.members[member_id] = member
        return member

    async def add_hub(
        self,
        member_id: str,
        name: str,
        parent_url: str | None,
        departments: dict[str, str],
        *,
        port: int,
        db: str | None = None,
    ) -> Member:
        """``hub init`` on a new hub, and the operator approves its request."""
        member, request = await self.init_hub(
            member_id, name, parent_url, departments, port=port, db=db
        )
        await self.approve(member, request, departments)
        return member

    async def init_hub(
        self,
        member_id: str,
        name: str,
        parent_url: str | None,
        departments: dict[str, str],
        *,
        port: int,
        db: str | None = None,
    ) -> tuple[Member, str]:
        """``hub init`` on a new hub's machine: the member and its enrolment request.

        Independent of the federation directory, so several may run at once; approve them
        (:meth:`approve`) one at a time, parents first.
        """
        data = self.root / f"hub-{member_id}"
        args = ["hub", "init", "--id", member_id, "--data", str(data), "--name", name]
        args += ["--port", str(port), "--root", self.root_key]
        args += [a for d in departments for a in ("--authority", d)]
        if parent_url:
            args += ["--parent", parent_url]
        if db:
            args += ["--db", db]
        out = await run_cli(*args)
        member = self.member(member_id, "hub", name, data, port)
        member.db = db or ""
        return member, enrolment_line(out)

    async def init_station(
        self, member_id: str, name: str, parent_url: str, *, port: int
    ) -> tuple[Member, str, str]:
        """``node init`` on a new station's PC: the member, its admin password, its request."""
        data = self.root / f"node-{member_id}"
        out = await run_cli(
            "node", "init", "--id", member_id, "--parent", parent_url, "--data", str(data),
            "--port", str(port), "--root", self.root_key, "--name", name,
        )  # fmt: skip
        password = re.search(r"密码\s+(\S+)", out)
        if password is None:
            raise LaunchError(f"node init printed no password:\n{out}")
        member = self.member(member_id, "node", name, data, port)
        return member, password.group(1), enrolment_line(out)

    async def approve(
        self, member: Member, request: str, departments: dict[str, str] | None = None
    ) -> None:
        """The operator approves an enrolment request (a hub's with its endpoint)."""
        args = ["member", "approve", request]
        if member.kind == "hub":
            args += ["--endpoint", member.url]
            args += [
                a for d, n in (departments or {}).items() for a in ("--authority-name", f"{d}={n}")
            ]
        await self.ops(*args)

    async def add_station(
        self, member_id: str, name: str, parent: Member, *, port: int
    ) -> tuple[Member, str]:
        """``node init`` on a new station, approved; returns it and its admin password."""
        member, password, request = await self.init_station(member_id, name, parent.url, port=port)
        await self.approve(member, request)
        return member, password

    async def add_staff(
        self, staff_id: str, name: str, member: str, department: str, *roles: str
    ) -> None:
        await self.ops(
            "staff", "add", "--id", staff_id, "--name", name, "--member", member,
            "--department", department, *[a for r in roles for a in ("--role", r)],
        )  # fmt: skip

    async def publish(self, catalog: Path = CATALOG) -> None:
        """Stage the catalog, sign the config and hand it to every running hub."""
        await self.ops("catalog", "publish", str(catalog))
        await self.sign_and_push()

    async def sign_and_push(self) -> None:
        await self.ops("config", "sign")
        for member in self.members.values():
            if member.kind == "hub" and member.proc.running:
                await self.ops("config", "push", member.url)

    async def set_password(self, hub: Member, staff_id: str, password: str) -> None:
        await self.set_passwords(hub, {staff_id: password})

    async def set_passwords(self, hub: Member, passwords: dict[str, str]) -> None:
        """``hub passwd`` once for several staff at a hub (a password per line on stdin)."""
        stdin = "".join(p + "\n" for p in passwords.values())
        await run_cli("hub", "passwd", "--data", str(hub.data), *passwords, stdin=stdin)

    async def stop_all(self) -> None:
        await asyncio.gather(*(m.proc.stop() for m in self.members.values()))
