"""``tongban demo run``: a small 沈阳 federation on localhost (SQLite), to click through.

The first run builds it under ``--dir`` with the operator's commands (see ops/launch.py):
the 沈阳 city hub, the 和平区 district hub and two village stations under 和平区, the example
catalog (ops/examples/catalog.yaml) and one reviewer account per department. Later runs
start the same members again: every member keeps its data in its own folder, so cases
survive restarts. Ctrl-C stops every member cleanly.

Township and village codes below 和平区 are illustrative (DOMAIN.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from .launch import (
    CATALOG,
    CITY_DEPTS,
    DISTRICT_DEPTS,
    LaunchError,
    LocalFederation,
    Member,
    eventually,
    port_is_free,
)


@dataclass(frozen=True)
class Layout:
    """Where each demo member listens, from one base port."""

    base: int

    @property
    def city(self) -> int:
        return self.base

    @property
    def district(self) -> int:
        return self.base + 10

    def station(self, n: int) -> int:
        return self.base + 100 + n


STATIONS = (
    ("210102001001", "和平区示例街道第一社区便民服务站"),
    ("210102001002", "和平区示例街道第二社区便民服务站"),
)
ROLES = ("acceptor", "reviewer", "signer")


def _password() -> str:
    return "demo-" + secrets.token_hex(3)


async def build(root: Path, layout: Layout) -> dict[str, Any]:
    """Create the demo federation under ``root``; returns the logins (also saved)."""
    fed = LocalFederation(root)
    click.echo("创建联邦配置与根密钥 …")
    await fed.create()
    city = await fed.add_hub("2101", "沈阳市政务服务中心", None, CITY_DEPTS, port=layout.city)
    district = await fed.add_hub(
        "210102", "和平区政务服务中心", city.url, DISTRICT_DEPTS, port=layout.district
    )
    click.echo("登记 2 个枢纽、2 个村（社区）便民服务站 …")
    clerks = {}
    for n, (member_id, name) in enumerate(STATIONS, start=1):
        _, password = await fed.add_station(member_id, name, district, port=layout.station(n))
        clerks[member_id] = password
    staff = {}
    for hub, departments, prefix in ((city, CITY_DEPTS, "sy"), (district, DISTRICT_DEPTS, "hp")):
        for dept, dept_name in departments.items():
            staff_id = f"{prefix}-{dept}"
            await fed.add_staff(staff_id, f"{dept_name}审核员", hub.id, dept, *ROLES)
            staff[staff_id] = {"hub": hub.id, "department": dept_name, "password": _password()}
    click.echo("发布事项目录，签发联邦配置 …")
    await fed.ops("catalog", "publish", str(CATALOG))
    await fed.ops("config", "sign")
    logins = {"clerks": clerks, "staff": staff, "base_port": layout.base, "passwords_set": False}
    _save(root, logins)
    return logins


def _save(root: Path, logins: dict[str, Any]) -> None:
    (root / "logins.json").write_text(json.dumps(logins, ensure_ascii=False, indent=2), "utf-8")


async def _set_passwords(root: Path, started: list[Member], logins: dict[str, Any]) -> None:
    """Staff passwords, once each hub holds the config that lists its staff (the district
    hub fetches it from the city hub on its first sync)."""
    fed = LocalFederation(root)
    for hub in (m for m in started if m.kind == "hub"):
        for staff_id, login in logins["staff"].items():
            if login["hub"] != hub.id:
                continue

            async def attempt(
                hub: Member = hub, staff_id: str = staff_id, password: str = login["password"]
            ) -> bool:
                try:
                    await fed.set_password(hub, staff_id, password)
                except LaunchError:
                    return False
                return True

            await eventually(attempt, within=60, every=1.0)
    logins["passwords_set"] = True
    _save(root, logins)


def members(root: Path, layout: Layout) -> list[Member]:
    """The demo's members as they are on disk (hubs first, parents before children)."""
    fed = LocalFederation(root)
    out = [
        fed.member("2101", "hub", "沈阳市政务服务中心", root / "hub-2101", layout.city),
        fed.member("210102", "hub", "和平区政务服务中心", root / "hub-210102", layout.district),
    ]
    for n, (member_id, name) in enumerate(STATIONS, start=1):
        out.append(
            fed.member(member_id, "node", name, root / f"node-{member_id}", layout.station(n))
        )
    return out


def table(members_: list[Member], logins: dict[str, Any]) -> str:
    """What to open and how to log in, in Chinese for the people who click."""
    lines = ["", "tongban 演示联邦已启动（SQLite，仅本机可访问）：", ""]
    for member in members_:
        if member.kind == "node":
            who = f"窗口人员  用户名 admin  密码 {logins['clerks'][member.id]}"
            lines.append(f"  {member.name}（{member.id}）  {member.url}")
            lines.append(f"      {who}")
        else:
            lines.append(f"  {member.name}（{member.id}）审批工作台  {member.url}")
            for staff_id, login in logins["staff"].items():
                if login["hub"] == member.id:
                    lines.append(
                        f"      {login['department']}  工号 {staff_id}  密码 {login['password']}"
                    )
    lines += [
        "",
        "试一试：在村便民服务站受理「诊所备案」（和平区卫生健康局审批），",
        "再到和平区审批工作台以 hp-wjj 登录受理、审核、办结，结果回到村窗口出件。",
        "市级事项（如 律师执业年度考核结果备案）由沈阳市政务服务中心以 sy-sfj 审批（市区联办）。",
        "",
        "按 Ctrl-C 停止全部成员；数据保存在演示目录中，再次运行即可继续。",
    ]
    return "\n".join(lines)


def _prepare(root: Path, base_port: int) -> tuple[Path, Layout, dict[str, Any] | None]:
    root = root.resolve()
    logins_file = root / "logins.json"
    if logins_file.exists():
        logins = json.loads(logins_file.read_text("utf-8"))
        return root, Layout(int(logins["base_port"])), logins
    root.mkdir(parents=True, exist_ok=True)
    return root, Layout(base_port), None


async def run(root: Path, base_port: int) -> None:
    """Build on first use, start every member, print where to click, wait for Ctrl-C."""
    root, layout, logins = _prepare(root, base_port)
    _check_ports(layout)
    if logins is None:
        logins = await build(root, layout)
    else:
        click.echo(f"使用已有的演示数据：{root}")
    started: list[Member] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        # Hubs first, each handed the newest config at once (an operator may push to any
        # hub; waiting for it to trickle down would cost a backoff round), then stations.
        everyone = members(root, layout)
        for member in everyone:
            if member.kind == "node" and not logins.get("passwords_set"):
                click.echo("设置审批人员口令 …")
                await _set_passwords(root, started, logins)
            click.echo(f"启动 {member.name} …")
            await member.proc.start()
            started.append(member)
            if member.kind == "hub":
                await LocalFederation(root).ops("config", "push", member.url)
        click.echo(table(started, logins))
        await _until_stopped_or_a_member_exits(stop, started)
    finally:
        click.echo("\n正在停止 …")
        await asyncio.gather(*(m.proc.stop() for m in started))
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


def _check_ports(layout: Layout) -> None:
    ports = [
        layout.city,
        layout.district,
        *(layout.station(n) for n in range(1, len(STATIONS) + 1)),
    ]
    busy = [p for p in ports if not port_is_free(p)]
    if busy:
        raise LaunchError(
            f"端口 {', '.join(map(str, busy))} 已被占用：另一个演示还在运行吗？"
            "（或用 --port 指定另一组端口）"
        )
