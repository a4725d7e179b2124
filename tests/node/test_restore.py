"""Station disk loss (issue 8): a replacement PC enrols with a new key under the same member
id and ``tongban node restore`` rebuilds the station from its district hub.

Real on both sides, in one process: the old and the new station's SQLite files, blob stores
and sync engines; the hub app (tests/hub/conftest.py) on its own SQLite file over HTTP.
The operator's key change is a new config (serial 2) listing the old key until the rotation
and the new key from then (built with the test config builder: ``ops member rotate-key`` is
not on main yet), handed to the hub as ``ops config push`` would.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from hub.services import review, staff
from hub.services.config import offer_config
from node.cli import node
from node.restore import RestoreError, restore_station
from node.runtime import open_context
from node.services import cases
from node.services.accept import (
    Application,
    MaterialInput,
    Person,
    UploadedFile,
    accept_application,
)
from node.services.context import NodeContext
from node.station import write_atomic
from node.sync import SyncEngine
from protocol.http import PeerError
from protocol.http.blobs import sha256_hex
from tests.hub.conftest import RunningHub, StartHub, start_hub
from tests.hub.fed import RELIEF, REVIEWER, VILLAGE_A, VILLAGE_B, Fed, key

from .conftest import init_station
from .helpers import CST, Clock, resident_id

__all__ = ["start_hub"]

ROTATED = datetime(2026, 11, 23, 10, 0, tzinfo=CST)  # the disk died; the new PC enrols
PASSWORD = "复核口令-2026-restore"


def application(n: int) -> Application:
    scan = bytes([n]) * 50_000 + b"scan %d" % n
    return Application(
        matter=RELIEF,
        applicant=Person(f"申请人{n}", resident_id(f"2101021990010112{n}")),
        materials=(
            MaterialInput(
                "form", "provided", (UploadedFile(f"表{n}.pdf", "application/pdf", scan),)
            ),
            MaterialInput("idcard", "provided"),
        ),
    )


async def timeline(ctx: NodeContext, number: str) -> list[tuple[str, str, str]]:
    detail = await cases.case_detail(ctx, number)
    return [(t["event_id"], t["type"], t["text"]) for t in detail["timeline"]]


def rotated_config(new_public: str) -> Fed:
    old = key(VILLAGE_A).public.to_text()
    return Fed(
        serial=2,
        issued="2026-11-23T10:00:00+08:00",
        keys={
            VILLAGE_A: [
                {
                    "public": old,
                    "valid_from": "2025-01-01T00:00:00+08:00",
                    "valid_until": ROTATED.isoformat(),
                },
                {"public": new_public, "valid_from": ROTATED.isoformat()},
            ]
        },
    )


async def test_a_replacement_pc_restores_and_continues_the_chain(
    start_hub: StartHub, tmp_path: Path, clock: Clock
) -> None:
    hub = await start_hub()
    async with aiohttp.ClientSession() as session:
        # The old PC: two applications with scans, in custody at the hub; one accepted there.
        old_data = (await asyncio.to_thread(init_station, tmp_path / "old", hub.url)).data
        write_atomic(old_data.key_file, key(VILLAGE_A).to_file_bytes(), mode=0o600)
        old = await open_context(old_data, clock=clock)
        old.station = replace(old.station, parent_url=hub.url)
        engine = SyncEngine(old, session, feed_wait=0)
        assert await engine.cycle(), engine.runtime().last_error
        receipts = [await accept_application(old, application(n)) for n in (1, 2)]
        assert await engine.cycle(), engine.runtime().last_error
        await staff.set_password(hub.hub, REVIEWER, PASSWORD)
        _, reviewer = await staff.login(hub.hub, REVIEWER, PASSWORD)
        await review.act(hub.hub, reviewer, receipts[0]["number"], "accept", {"opinion": "受理"})
        assert await engine.cycle(), engine.runtime().last_error
        old_head = await old.store.head()
        old_cases = {r["number"]: await timeline(old, r["number"]) for r in receipts}
        old_state = await old.store.case(receipts[0]["number"])
        assert old_state is not None and old_state.state == "accepted"
        scans = sorted(b.hash for b in await old.store.uploads(pending_only=False))
        await old.store.db.close()

        # The disk is lost. The replacement PC enrols: same member id, a new key.
        clock.at = ROTATED.replace(minute=30)
        new_data = (await asyncio.to_thread(init_station, tmp_path / "new", hub.url)).data
        new = await open_context(new_data, clock=clock)
        new.station = replace(new.station, parent_url=hub.url)
        assert new.key.public != key(VILLAGE_A).public
        # Before the operator lists the new key, the hub does not know it.
        with pytest.raises(RestoreError, match="unknown_key"):
            await restore_station(new, session, say=lambda _: None)
        adoption = await offer_config(
            hub.hub, rotated_config(new.key.public.to_text()).signed_dict()
        )
        assert adoption.adopted

        report = await restore_station(new, session, say=lambda _: None)
        # Two submissions and the 送达回执 of the acceptance; the restore owes it no second
        # time, though the acceptance comes back after it (the feed follows the own chain).
        assert report.head == old_head and report.events == old_head[0] == 3
        assert report.blobs == len(scans) == 2
        assert report.received >= 1  # the acceptance by the district
        # Every case is back with its whole timeline and state.
        assert {r["number"]: await timeline(new, r["number"]) for r in receipts} == old_cases
        new_state = await new.store.case(receipts[0]["number"])
        assert new_state is not None and new_state.state == "accepted"
        for blob in scans:
            assert new.blobs.has(blob) and sha256_hex(new.blobs.read(blob)) == blob
        assert (await new.store.sync_state()).custody_seq == 3

        # The new PC continues the chain: seq 4 on top of the old head, a fresh case number.
        engine = SyncEngine(new, session, feed_wait=0)
        receipt = await accept_application(new, application(3))
        assert receipt["number"] not in {r["number"] for r in receipts}
        assert await engine.cycle(), engine.runtime().last_error
        assert await hub.hub.store.chain_head(VILLAGE_A) == await new.store.head()
        assert (await new.store.head())[0] == 4
        status = await hub.hub.store.alerts()
        assert not [a for a in status if a.kind in ("equivocation", "case_rejected")]
        # The old key's history still verifies under the new config; seq 3 is the new key's.
        federation = rotated_config(new.key.public.to_text()).federation()
        own = await new.store.own_events_after(VILLAGE_A, 0)
        for event in own:
            event.verify(federation.member_key(VILLAGE_A, event.sig.kid, event.at))
        assert [e.sig.kid for e in own] == [key(VILLAGE_A).kid] * 3 + [new.key.kid]
        await new.store.db.close()


async def test_restore_refuses_a_station_that_has_its_own_chain(
    start_hub: StartHub, tmp_path: Path, clock: Clock
) -> None:
    hub = await start_hub()
    data = (await asyncio.to_thread(init_station, tmp_path / "st", hub.url)).data
    write_atomic(data.key_file, key(VILLAGE_A).to_file_bytes(), mode=0o600)
    ctx = await open_context(data, clock=clock)
    ctx.station = replace(ctx.station, parent_url=hub.url)
    async with aiohttp.ClientSession() as session:
        assert await SyncEngine(ctx, session, feed_wait=0).cycle()
        await accept_application(ctx, application(1))
        before = await ctx.store.head()
        with pytest.raises(RestoreError, match="新装的电脑"):
            await restore_station(ctx, session, say=lambda _: None)
    assert await ctx.store.head() == before
    await ctx.store.db.close()


async def test_only_the_member_reads_its_history(start_hub: StartHub) -> None:
    hub = await start_hub()
    async with aiohttp.ClientSession() as session:
        await _history_checks(hub, session)


async def _history_checks(hub: RunningHub, session: aiohttp.ClientSession) -> None:
    mine = hub.client(VILLAGE_A, session)
    page = await mine.history(VILLAGE_A, 0)
    assert page["events"] == [] and page["head"] == {"seq": 0, "id": None}
    other = hub.client(VILLAGE_B, session)
    with pytest.raises(PeerError) as refused:
        await other.history(VILLAGE_A, 0)
    assert (refused.value.status, refused.value.reason) == (403, "not_your_history")
    with pytest.raises(PeerError) as bad:
        await mine.history(VILLAGE_A + "?after=-1", 0)
    assert bad.value.status in (400, 403)


def test_the_restore_command_needs_an_initialised_station(tmp_path: Path) -> None:
    result = CliRunner().invoke(node, ["restore", "--data", str(tmp_path / "nothing")])
    assert result.exit_code != 0 and "node init" in result.output
