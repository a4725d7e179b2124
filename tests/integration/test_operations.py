"""A federation from nothing with the operator's commands only, and each change reaching the
members through sync (issue 6): the 和平区 hub and two village stations as ``tongban … run``
processes (SQLite), everything set up with ``tongban ops …``, ``hub init`` and ``node init``
(:class:`ops.launch.LocalFederation`). Village codes are illustrative.

1. publish the catalog: both stations get the config and can accept a 诊所备案;
2. rotate station 1's key: its new key (made with ``member request``) is installed, its next
   case reaches the hub's custody, and the case it signed with the old key still verifies;
3. revoke station 2: its next push is refused and the station says why (``key_revoked``);
   the case it signed before ``revoked_at`` still verifies against the newest config.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp

from ops.launch import DISTRICT_DEPTS, LocalFederation, eventually, free_port, run_cli
from protocol.config import parse_signed
from protocol.encoding import loads_strict
from protocol.event import Event
from tests.integration.harness import Clerk
from tests.integration.test_village_district import application

OPERATOR, OPERATOR_PASSWORD = "hp-yunwei", "运维口令-2026-ok"


def hub_events(hub_data: Path, author: str) -> list[Event]:
    """The events of ``author`` the hub holds in custody (its SQLite file, read only)."""
    with sqlite3.connect(f"file:{hub_data / 'hub.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT wire FROM events WHERE author = ? ORDER BY seq", (author,))
        return [Event.from_json(bytes(r[0])) for r in rows]


def current_config(fed: LocalFederation) -> Any:
    signed = parse_signed(loads_strict((fed.fed_dir / "current.json").read_bytes()))
    return signed.config


async def test_operations_reach_the_members_through_sync(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path)
    try:
        await fed.create()
        city = await fed.add_hub("2101", "沈阳市政务服务中心", None, {"sfj": "沈阳市司法局",
            "jtj": "沈阳市交通运输局", "gaj": "沈阳市公安局", "scjgj": "沈阳市市场监督管理局",
            "swj": "国家税务总局沈阳市税务局", "rsj": "沈阳市人力资源和社会保障局"},
            port=free_port())  # fmt: skip
        hub = await fed.add_hub(
            "210102", "和平区政务服务中心", city.url, DISTRICT_DEPTS, port=free_port()
        )
        one, pw_one = await fed.add_station(
            "210102001001", "示例社区便民服务站", hub, port=free_port()
        )
        two, pw_two = await fed.add_station(
            "210102001002", "示例村便民服务站", hub, port=free_port()
        )
        await fed.ops("staff", "add", "--id", OPERATOR, "--name", "运维值班", "--member", "210102",
                      "--role", "operator")  # fmt: skip
        await hub.proc.start()
        await fed.publish()  # catalog publish, config sign, config push to the running hub
        await fed.set_password(hub, OPERATOR, OPERATOR_PASSWORD)
        await one.proc.start()
        await two.proc.start()
        # One cookie jar per station: cookies do not tell ports apart.
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http_one,
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http_two,
        ):
            clerks = [Clerk(one, pw_one, http_one), Clerk(two, pw_two, http_two)]
            for clerk in clerks:
                await clerk.login()

            async def configured(clerk: Clerk, serial: int) -> bool:
                return (await clerk.get("api/sync"))["config"]["serial"] == serial

            async def accept(clerk: Clerk, serial: int) -> str:
                answer = await clerk.post("api/cases", application("张三", {}, serial), expect=201)
                return str(answer["number"])

            async def in_custody(clerk: Clerk) -> bool:
                return (await clerk.get("api/sync"))["waiting"]["events"] == 0

            # 1. The catalog reached both stations with config serial 1.
            for clerk in clerks:
                await eventually(lambda c=clerk: configured(c, 1))
                assert "诊所备案" in str(await clerk.get("api/matters?q=诊所"))
            first = [await accept(clerks[0], 1), await accept(clerks[1], 2)]
            for clerk in clerks:
                await eventually(lambda c=clerk: in_custody(c))

            # 2. Rotate station 1's key (a new key made on its machine, then installed).
            request = tmp_path / "rotate-210102001001.txt"
            await fed.ops("member", "request", "--id", "210102001001", "--parent", "210102",
                          "--name", "示例社区便民服务站", "--data", str(tmp_path / "new-key"),
                          "--out", str(request))  # fmt: skip
            await fed.ops("member", "rotate-key", "210102001001", "--request", str(request))
            await fed.sign_and_push()
            await one.proc.stop()
            shutil.copy(tmp_path / "new-key" / "member.key", one.data / "member.key")
            await one.proc.start()
            await clerks[0].login()
            await eventually(lambda: configured(clerks[0], 2))
            await accept(clerks[0], 3)
            await eventually(lambda: in_custody(clerks[0]))
            events = hub_events(hub.data, "210102001001")
            assert len({e.sig.kid for e in events}) == 2  # old key, then the new one
            config = current_config(fed)
            for event in events:  # both keys' events verify, each at its own time
                event.verify(config.member_key(event.author, event.sig.kid, event.at))

            # 3. Revoke station 2; its next push is refused with the reason.
            await fed.ops("member", "revoke", "210102001002", "--reason", "设备丢失")
            await fed.sign_and_push()
            await accept(clerks[1], 4)

            async def refused() -> str | None:
                sync = await clerks[1].get("api/sync")
                error = sync["last_error"] or ""
                return error if "key_revoked" in error and sync["waiting"]["events"] else None

            error = await eventually(refused, within=60)
            assert "210102001002" in error
            config = current_config(fed)
            [before] = hub_events(hub.data, "210102001002")  # only the case signed before
            assert before.case == first[1]
            before.verify(config.member_key(before.author, before.sig.kid, before.at))
            # The operator's member list with what the hub saw of each member.
            listed = await run_cli(
                "ops", "member", "list", "--hub", hub.url, "--staff", OPERATOR,
                env={**fed.env(), "TONGBAN_OPERATOR_PASSWORD": OPERATOR_PASSWORD},
            )  # fmt: skip
            rows = {line.split()[0]: line for line in listed.splitlines() if line[:1].isdigit()}
            assert "吊销" in rows["210102001002"] and "秒前" in rows["210102001001"]
            assert "从未" in rows["2101"]  # the city hub never ran
            async with http_one.get(one.url + "metrics") as resp:
                metrics = await resp.text()
            assert 'tongban_node_overdue_cases{colour="red"} 0.0' in metrics
    finally:
        await fed.stop_all()
