"""``tongban demo run``: the 沈阳都市圈 federation on localhost (SQLite), to click through.

The first run builds it under ``--dir`` with the operator's commands (see ops/launch.py),
from a topology file (default ``ops/examples/demo.yaml``): two metro peer cities (沈阳 2101
and 抚顺 2104), each with its own root key and config, city and district hubs, stations,
the example catalogs and one reviewer account per department. Later runs start the same
members again: every member keeps its data in its own folder, so cases survive restarts.
Ctrl-C stops every member cleanly.

Each station reaches its parent hub through a switchable :class:`Uplink` run by this
process, so a station can be taken off the network (``<dir>/offline/<station id>``) while
its window keeps accepting: that is how ``tongban demo scenario`` shows a village offline.

Township and village codes in the topology are illustrative (DOMAIN.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import click
import yaml

from .launch import EXAMPLES, LaunchError, LocalFederation, Member, eventually, port_is_free

TOPOLOGY = EXAMPLES / "demo.yaml"
ROLES = ("acceptor", "reviewer", "signer")
FORMAT = 2  # of logins.json; the single-city demo before it had none


# -- the topology file ---------------------------------------------------------------------


@dataclass(frozen=True)
class HubPlan:
    id: str
    name: str
    port: int
    parent: str | None
    departments: dict[str, str]
    staff_prefix: str
    staff: tuple[str, ...]  # departments that get a reviewer account


@dataclass(frozen=True)
class StationPlan:
    id: str
    name: str
    parent: str
    port: int
    uplink: int


@dataclass(frozen=True)
class CityPlan:
    city: str
    name: str
    catalog: Path
    hubs: tuple[HubPlan, ...]
    stations: tuple[StationPlan, ...]


@dataclass(frozen=True)
class Topology:
    """Who is in the demo federation and on which port offsets (ops/examples/demo.yaml)."""

    cities: tuple[CityPlan, ...]

    @classmethod
    def load(cls, path: Path) -> Topology:
        try:
            raw = yaml.safe_load(path.read_text("utf-8"))
            cities = []
            for c in raw["cities"]:
                hubs = tuple(
                    HubPlan(
                        id=str(h["id"]),
                        name=h["name"],
                        port=int(h["port"]),
                        parent=None if h.get("parent") is None else str(h["parent"]),
                        departments=dict(h.get("departments") or {}),
                        staff_prefix=h.get("staff_prefix", ""),
                        staff=tuple(h.get("staff", list(h.get("departments") or {}))),
                    )
                    for h in c["hubs"]
                )
                stations = tuple(
                    StationPlan(
                        str(s["id"]), s["name"], str(s["parent"]), int(s["port"]), int(s["uplink"])
                    )
                    for s in c["stations"]
                )
                catalog = (path.parent / c["catalog"]).resolve()
                cities.append(CityPlan(str(c["city"]), c["name"], catalog, hubs, stations))
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise LaunchError(f"演示拓扑文件 {path} 无法读取：{exc!r}") from None
        return cls(tuple(cities))

    def ports(self, base: int) -> list[int]:
        out = [base + h.port for c in self.cities for h in c.hubs]
        out += [base + p for c in self.cities for s in c.stations for p in (s.port, s.uplink)]
        return out


# -- the switchable link between a station and its hub ---------------------------------------


@dataclass
class Uplink:
    """A TCP relay on 127.0.0.1 from a station to its parent hub that can be cut.

    While ``flag`` exists the link is down: open connections are aborted and new ones are
    refused, as when a village's line goes dead. The station notices, keeps accepting
    applications and syncs them once the flag is gone.
    """

    station: str
    port: int
    target: int
    flag: Path
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)
    _watch: asyncio.Task[None] | None = None

    @property
    def down(self) -> bool:
        return self.flag.exists()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self._watch = asyncio.create_task(self._watch_flag())

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _cut(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _watch_flag(self) -> None:
        while True:
            if self.down and self._open:
                self._cut()
            await asyncio.sleep(0.25)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, ConnectionError):
        if writer.can_write_eof():
            writer.write_eof()


# -- the demo on disk --------------------------------------------------------------------------


@dataclass
class Demo:
    """The demo federation in ``root``: one operator directory per city, every member."""

    root: Path
    topology: Topology
    base: int
    feds: dict[str, LocalFederation] = field(default_factory=dict)
    uplinks: list[Uplink] = field(default_factory=list)

    def __post_init__(self) -> None:
        for plan in self.topology.cities:
            fed = LocalFederation(self.root / f"city-{plan.city}", plan.city, plan.name)
            self.feds[plan.city] = fed
            for hub in plan.hubs:
                data = fed.root / f"hub-{hub.id}"
                fed.member(hub.id, "hub", hub.name, data, self.base + hub.port)
            for station in plan.stations:
                data = fed.root / f"node-{station.id}"
                fed.member(station.id, "node", station.name, data, self.base + station.port)
                self.uplinks.append(
                    Uplink(
                        station.id,
                        self.base + station.uplink,
                        self.base + self._hub(station.parent).port,
                        self.offline_dir / station.id,
                    )
                )

    @property
    def offline_dir(self) -> Path:
        return self.root / "offline"

    def _hub(self, member_id: str) -> HubPlan:
        for plan in self.topology.cities:
            for hub in plan.hubs:
                if hub.id == member_id:
                    return hub
        raise LaunchError(f"演示拓扑中没有枢纽 {member_id}")

    def uplink_url(self, station: str) -> str:
        link = next(u for u in self.uplinks if u.station == station)
        return f"http://127.0.0.1:{link.port}/"

    def members(self) -> list[Member]:
        """Hubs (parents first) then stations, in topology order."""
        out = [m for f in self.feds.values() for m in f.members.values() if m.kind == "hub"]
        return out + [m for f in self.feds.values() for m in f.members.values() if m.kind == "node"]

    def city_of(self, member: Member) -> LocalFederation:
        return next(f for f in self.feds.values() if member.id in f.members)

    # -- first run: build -------------------------------------------------------------

    async def build(self) -> dict[str, Any]:
        """Create both cities with the operator's commands; returns the logins (also saved)."""
        click.echo("创建两市联邦配置与根密钥（沈阳、抚顺互为都市圈伙伴）…")
        await asyncio.gather(*(fed.create() for fed in self.feds.values()))
        click.echo("各成员生成自己的密钥并提交入网申请 …")
        requests: dict[str, tuple[Member, str]] = {}
        clerks: dict[str, str] = {}

        async def init_hub(fed: LocalFederation, hub: HubPlan) -> None:
            parent = None if hub.parent is None else fed.members[hub.parent].url
            member, request = await fed.init_hub(
                hub.id, hub.name, parent, hub.departments, port=self.base + hub.port
            )
            requests[hub.id] = (member, request)

        async def init_station(fed: LocalFederation, station: StationPlan) -> None:
            member, password, request = await fed.init_station(
                station.id, station.name, self.uplink_url(station.id), port=self.base + station.port
            )
            requests[station.id] = (member, request)
            clerks[station.id] = password

        await _bounded(
            [init_hub(self.feds[c.city], h) for c in self.topology.cities for h in c.hubs]
            + [init_station(self.feds[c.city], s) for c in self.topology.cities for s in c.stations]
        )
        staff: dict[str, dict[str, str]] = {}
        await asyncio.gather(
            *(self._approve_city(c, requests, staff) for c in self.topology.cities)
        )
        logins = {
            "format": FORMAT,
            "base_port": self.base,
            "clerks": clerks,
            "staff": staff,
            "passwords_set": False,
        }
        self.save(logins)
        return logins

    async def _approve_city(
        self, plan: CityPlan, requests: dict[str, tuple[Member, str]], staff: dict[str, Any]
    ) -> None:
        fed = self.feds[plan.city]
        for hub in plan.hubs:
            await fed.approve(*requests[hub.id], hub.departments)
        for station in plan.stations:
            await fed.approve(*requests[station.id])
        for hub in plan.hubs:
            for dept in hub.staff:
                staff_id = f"{hub.staff_prefix}-{dept}"
                name = hub.departments[dept]
                await fed.add_staff(staff_id, f"{name}审核员", hub.id, dept, *ROLES)
                staff[staff_id] = {"hub": hub.id, "department": name, "password": _password()}
        entrusted: dict[str, list[StationPlan]] = {}
        for station, authority in delegated(plan):
            entrusted.setdefault(authority, []).append(station)
        for station in {s.id: s for group in entrusted.values() for s in group}.values():
            await fed.ops(
                "staff", "add", "--id", window_clerk(station.id), "--role", "clerk",
                "--name", f"{station.name}即办窗口", "--member", station.id,
            )  # fmt: skip
        for authority, stations in entrusted.items():
            data = [a for s in stations for a in ("--data", str(fed.members[s.id].data))]
            await fed.ops("authority", "entrust", authority, *data)
        for other in self.topology.cities:
            if other.city != plan.city:
                await self._add_peer(fed, other)
        await fed.ops("catalog", "publish", str(plan.catalog))
        await fed.ops("config", "sign")

    async def _add_peer(self, fed: LocalFederation, other: CityPlan) -> None:
        peer = self.feds[other.city]
        await fed.ops(
            "peer", "add", "--city", other.city, "--name", other.name,
            "--endpoint", peer.members[other.city].url, "--root-key", peer.root_key,
        )  # fmt: skip

    def save(self, logins: dict[str, Any]) -> None:
        text = json.dumps(logins, ensure_ascii=False, indent=2)
        (self.root / "logins.json").write_text(text, "utf-8")

    # -- every run: start --------------------------------------------------------------

    async def start(self, logins: dict[str, Any]) -> list[Member]:
        """Start links, hubs (each handed its city's config), staff passwords, stations."""
        self.offline_dir.mkdir(exist_ok=True)
        for link in self.uplinks:
            await link.start()
        hubs = [m for m in self.members() if m.kind == "hub"]
        stations = [m for m in self.members() if m.kind == "node"]
        click.echo(f"启动 {len(hubs)} 个政务服务中心（枢纽）…")

        async def start_hub(member: Member) -> None:
            await member.proc.start()
            # An operator may push to any hub; waiting for the config to trickle down
            # would cost a backoff round.
            await self.city_of(member).ops("config", "push", member.url)

        await _bounded([start_hub(m) for m in hubs])
        work: list[Awaitable[None]] = [m.proc.start() for m in stations]
        if not logins.get("passwords_set"):
            click.echo("设置审批人员口令 …")
            by_hub: dict[str, dict[str, str]] = {}
            for staff_id, login in logins["staff"].items():
                by_hub.setdefault(login["hub"], {})[staff_id] = login["password"]
            work += [self._set_passwords(hub, passwords) for hub, passwords in by_hub.items()]
        click.echo(f"启动 {len(stations)} 个便民服务站 …")
        await _bounded(work)
        if "window_clerks" not in logins:
            logins["window_clerks"] = {
                station.id: await _add_window_clerk(
                    self.feds[plan.city].members[station.id], logins["clerks"][station.id]
                )
                for plan in self.topology.cities
                for station in {s.id: s for s, _ in delegated(plan)}.values()
            }
            self.save(logins)
        if not logins.get("passwords_set"):
            logins["passwords_set"] = True
            self.save(logins)
        return hubs + stations

    async def _set_passwords(self, hub_id: str, passwords: dict[str, str]) -> None:
        """The hub's reviewers' passwords, in one ``hub passwd`` run, once the hub holds the
        config that lists them."""
        hub = next(m for m in self.members() if m.id == hub_id)

        async def attempt() -> bool:
            try:
                await self.city_of(hub).set_passwords(hub, passwords)
            except LaunchError:
                return False
            return True

        await eventually(attempt, within=60, every=1.0)

    async def stop(self, started: Iterable[Member]) -> None:
        await asyncio.gather(*(m.proc.stop() for m in started))
        for link in self.uplinks:
            await link.close()


async def _add_window_clerk(member: Member, admin_password: str) -> dict[str, str]:
    """The station's admin opens the 即办 clerk's account at the window (``POST /api/clerks``)."""
    username = window_clerk(member.id)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        login = {"username": "admin", "password": admin_password}
        async with http.post(member.url + "api/login", json=login) as resp:
            if resp.status != 200:
                raise LaunchError(f"{member.name} 管理员登录失败（HTTP {resp.status}）")
            csrf = (await resp.json())["csrf_token"]
        body = {"username": username, "display_name": "即办窗口", "role": "clerk"}
        headers = {"X-CSRF-Token": csrf}
        async with http.post(member.url + "api/clerks", json=body, headers=headers) as resp:
            if resp.status != 201:
                raise LaunchError(f"{member.name} 未能开设即办窗口账号（HTTP {resp.status}）")
            return {"username": username, "password": (await resp.json())["initial_password"]}


def window_clerk(station: str) -> str:
    """The clerk at a station who decides delegated 即办 matters (listed as staff)."""
    return f"jb-{station}"


def delegated(plan: CityPlan) -> list[tuple[StationPlan, str]]:
    """(station, authority) for each catalog matter delegated to a station's window whose
    authority is in the demo: the authority entrusts that window a seal key."""
    try:
        matters = yaml.safe_load(plan.catalog.read_text("utf-8"))["matters"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise LaunchError(f"事项目录 {plan.catalog} 无法读取：{exc!r}") from None
    levels = {4: "city", 6: "district", 9: "township", 12: "village"}
    depts = {h.id: h.departments for h in plan.hubs}
    out: list[tuple[StationPlan, str]] = []
    for station in plan.stations:
        for m in matters:
            targets = {str(t) for t in m.get("delegated_to") or ()}
            if not targets & {levels.get(len(station.id), ""), station.id}:
                continue
            size = next((n for n, lvl in levels.items() if lvl == m.get("level")), 0)
            hub = station.id[:size]
            authority = f"{hub}:{m.get('authority')}"
            if m.get("authority") in depts.get(hub, {}) and (station, authority) not in out:
                out.append((station, authority))
    return out


async def _bounded(work: Sequence[Awaitable[None]], limit: int = 3) -> None:
    """Run CPU-heavy launches a few at a time (each is a Python process starting up)."""
    gate = asyncio.Semaphore(limit)

    async def one(item: Awaitable[None]) -> None:
        async with gate:
            await item

    await asyncio.gather(*(one(w) for w in work))


def _password() -> str:
    return "demo-" + secrets.token_hex(3)


def table(demo: Demo, started: list[Member], logins: dict[str, Any]) -> str:
    """What to open and how to log in, in Chinese for the people who click."""
    lines = ["", "tongban 演示联邦已启动（SQLite，仅本机可访问）：", ""]
    lines.append(f"  {'成员':<24}{'地址':<26}角色与登录")
    for member in started:
        if member.kind == "node":
            lines.append(f"  {member.name}（{member.id}）")
            lines.append(
                f"      {member.url:<26}窗口人员  用户名 admin  密码 {logins['clerks'][member.id]}"
            )
            jiban = logins.get("window_clerks", {}).get(member.id)
            if jiban:
                lines.append(
                    f"      {'':<26}即办窗口  用户名 {jiban['username']}  密码 {jiban['password']}"
                )
        else:
            lines.append(f"  {member.name}（{member.id}）审批工作台")
            first = True
            for staff_id, login in logins["staff"].items():
                if login["hub"] == member.id:
                    url = member.url if first else ""
                    lines.append(
                        f"      {url:<26}{login['department']}  工号 {staff_id}"
                        f"  密码 {login['password']}"
                    )
                    first = False
            if first:
                lines.append(f"      {member.url:<26}（转发枢纽，无审批部门）")
    lines += [
        "",
        "试一试：在村便民服务站受理「诊所备案」（和平区卫生健康局审批，hp-wjj），",
        "市级事项（如 律师执业年度考核结果备案）由沈阳市政务服务中心以 sy-sfj 审批（市区联办）；",
        "在新抚区村站受理「网络预约出租汽车驾驶员从业资格证核发」，",
        "由沈阳 sy-jtj 审批（都市圈通办）。",
        "在和平区村（社区）站以「即办窗口」账号受理「独生子女证补办」，可当场办结并签章（即办）。",
        "演示一天的业务：另开终端运行  .venv/bin/tongban demo scenario",
        f"让某站断网：touch {demo.offline_dir}/<站点编码>（删除该文件即恢复）。",
        "",
        f"按 Ctrl-C 停止全部成员；数据保存在 {demo.root}，再次运行即可继续。",
    ]
    return "\n".join(lines)


def load(root: Path, base_port: int, topology: Path | None) -> tuple[Demo, dict[str, Any] | None]:
    """The demo in ``root``: as built before (its saved topology and ports), or a new plan."""
    root = root.resolve()
    logins_file = root / "logins.json"
    saved_topology = root / "topology.yaml"
    if logins_file.exists():
        logins = json.loads(logins_file.read_text("utf-8"))
        if logins.get("format") != FORMAT or not saved_topology.exists():
            raise LaunchError(
                f"{root} 中是旧版本演示的数据（单市演示）。请删除该目录后重新运行 make demo。"
            )
        demo = Demo(root, Topology.load(saved_topology), int(logins["base_port"]))
        return demo, logins
    if root.exists() and any(root.iterdir()):
        raise LaunchError(
            f"{root} 不是空目录，也没有完整的演示数据（logins.json）：上次创建中断了吗？"
            "请删除该目录后重试，或换一个 --dir。"
        )
    source = topology or TOPOLOGY
    plan = Topology.load(source)
    root.mkdir(parents=True, exist_ok=True)
    # Kept with the data, catalogs as absolute paths, so later runs need no --topology.
    raw = yaml.safe_load(source.read_text("utf-8"))
    for city in raw["cities"]:
        city["catalog"] = str((source.parent / city["catalog"]).resolve())
    saved_topology.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), "utf-8")
    return Demo(root, plan, base_port), None


async def run(root: Path, base_port: int, topology: Path | None = None) -> None:
    """Build on first use, start every member, print where to click, wait for Ctrl-C."""
    demo, logins = load(root, base_port, topology)
    busy = [p for p in demo.topology.ports(demo.base) if not port_is_free(p)]
    if busy:
        raise LaunchError(
            f"端口 {', '.join(map(str, busy))} 已被占用：另一个演示还在运行吗？"
            "（或用 --port 指定另一组端口）"
        )
    if logins is None:
        logins = await demo.build()
    else:
        click.echo(f"使用已有的演示数据：{demo.root}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    started: list[Member] = []
    try:
        started = await demo.start(logins)
        click.echo(table(demo, started, logins))
        await _until_stopped_or_a_member_exits(stop, started)
    finally:
        click.echo("\n正在停止 …")
        await demo.stop(demo.members())
        click.echo("已全部停止。")


async def _until_stopped_or_a_member_exits(stop: asyncio.Event, started: list[Member]) -> None:
    """Wait for Ctrl-C; if a member dies meanwhile, say which and stop the rest."""
    waits: set[asyncio.Future[object]] = {asyncio.ensure_future(stop.wait())}
    waits |= {asyncio.ensure_future(m.proc.proc.wait()) for m in started if m.proc.proc}
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for member in started:
        if member.proc.proc is not None and member.proc.proc.returncode is not None:
            click.echo(
                f"{member.name} 意外退出（退出码 {member.proc.proc.returncode}），"
                f"日志：{member.proc.log}\n{member.proc.tail(15)}",
                err=True,
            )
