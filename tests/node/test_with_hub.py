"""The station's sync engine against the real district hub (hub/), in one process.

Real on both sides: the station's SQLite file, blob store, sync engine and tus client; the
hub app from tests/hub/conftest.py on its own SQLite file, over HTTP on 127.0.0.1. (The
process-level end-to-end test with PostgreSQL lives in tests/integration/.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hub.services import review, staff
from node.app import build_app
from node.metrics import NodeMetrics
from node.runtime import open_context
from node.services import cases
from node.services.accept import (
    Application,
    MaterialInput,
    Person,
    UploadedFile,
    accept_application,
)
from node.services.auth import Auth
from node.services.context import NodeContext
from node.station import write_atomic
from node.sync import SyncEngine
from protocol.http.blobs import sha256_hex
from protocol.http.server import RUNNER_KWARGS
from tests.hub.conftest import RunningHub, StartHub, start_hub
from tests.hub.fed import DISTRICT, PASSWORD, RELIEF, REVIEWER, VILLAGE_A, key

from .conftest import Initialised
from .helpers import Clock, resident_id
from .test_pages import page_login

__all__ = ["start_hub"]

SCAN = bytes(range(256)) * 1200


@pytest.fixture
def enrolled(station: Initialised) -> Initialised:
    """The station holding the key the hub's test config lists for VILLAGE_A (as if the
    operator had approved its enrolment)."""
    write_atomic(station.data.key_file, key(VILLAGE_A).to_file_bytes(), mode=0o600)
    return station


@pytest.fixture
async def with_hub(
    enrolled: Initialised, start_hub: StartHub, clock: Clock
) -> AsyncIterator[tuple[NodeContext, SyncEngine, RunningHub]]:
    hub = await start_hub()
    ctx = await open_context(enrolled.data, clock=clock)
    ctx.station = replace(ctx.station, parent_url=hub.url)
    async with aiohttp.ClientSession() as session:
        engine = SyncEngine(ctx, session, feed_wait=0)
        yield ctx, engine, hub
        await engine.stop()
    await ctx.store.db.close()


async def test_case_and_scan_reach_the_real_hub(
    with_hub: tuple[NodeContext, SyncEngine, RunningHub],
    enrolled: Initialised,
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
) -> None:
    ctx, engine, hub = with_hub
    assert await engine.cycle(), engine.runtime().last_error  # fetches the config first
    assert ctx.configs.home is not None
    receipt = await accept_application(
        ctx,
        Application(
            matter=RELIEF,
            applicant=Person("张三", resident_id()),
            materials=(
                MaterialInput(
                    "form", "provided", (UploadedFile("表.pdf", "application/pdf", SCAN),)
                ),
                MaterialInput("idcard", "provided"),
            ),
        ),
    )
    assert receipt["authority"]["id"] == "210102:mzj"
    assert await engine.cycle(), engine.runtime().last_error
    state = await ctx.store.sync_state()
    assert state.custody_seq == 1
    assert await hub.hub.store.blob_length(sha256_hex(SCAN)) == len(SCAN)
    upload = await ctx.store.upload_state(sha256_hex(SCAN))
    assert upload is not None and upload.done
    detail = await cases.case_detail(ctx, receipt["number"])
    assert detail["timeline"][0]["synced"] is True and detail["arrived"] is None
    assert await engine.cycle(), engine.runtime().last_error  # idempotent: nothing to do

    # 送达回执: the district hosts the authority and holds the scan, so it signs the receipt;
    # the station pulls it and shows 已送达审批部门.
    assert await hub.jobs.sign_receipts() == 1
    assert await engine.cycle(), engine.runtime().last_error
    detail = await cases.case_detail(ctx, receipt["number"])
    assert detail["arrived"] is not None and detail["case"]["state"] == "submitted"
    assert "已送达审批部门" in detail["timeline"][-1]["text"]
    client = await aiohttp_client(
        build_app(ctx, Auth(ctx.store), NodeMetrics()), server_kwargs=dict(RUNNER_KWARGS)
    )
    await page_login(client, enrolled.password)
    html = await (await client.get(f"/cases/{receipt['number']}")).text()
    assert "送达审批部门" in html and "已送达审批部门" in html and "传送中" not in html


async def test_the_window_confirms_the_decision_and_the_reviewer_sees_it(
    with_hub: tuple[NodeContext, SyncEngine, RunningHub],
) -> None:
    """送达回执 the other way: the district's 受理 and 办结 reach the station, which signs a
    receipt for each in the transaction that stored them and pushes them in the same sync
    round; the reviewer's case file then shows both acts confirmed by the window."""
    ctx, engine, hub = with_hub
    assert await engine.cycle(), engine.runtime().last_error
    receipt = await accept_application(
        ctx,
        Application(
            matter=RELIEF,
            applicant=Person("张三", resident_id()),
            materials=(MaterialInput("form", "provided"), MaterialInput("idcard", "provided")),
        ),
    )
    number = receipt["number"]
    assert await engine.cycle(), engine.runtime().last_error
    assert await hub.jobs.sign_receipts() == 1  # 已送达审批部门: the district's receipt
    await staff.set_password(hub.hub, REVIEWER, PASSWORD)
    _, reviewer = await staff.login(hub.hub, REVIEWER, PASSWORD)
    accepted = (await review.act(hub.hub, reviewer, number, "accept", {}))["event"]
    decided = (await review.act(hub.hub, reviewer, number, "decide", {"result_code": 0}))["event"]
    before = await review.case_file(hub.hub, reviewer, number)
    marks = {e["id"]: e.get("sent_to") for e in before["timeline"]}
    assert (
        marks[accepted] == marks[decided] == [{"member": VILLAGE_A, "confirmed": False, "at": None}]
    )

    # One sync round: the feed brings both acts, the store signs both receipts with them,
    # and the engine loops at once to push them.
    assert await engine.cycle(), engine.runtime().last_error
    own = await ctx.store.own_events_after(VILLAGE_A, 0)
    receipts = [e for e in own if e.type == "case.received"]
    assert [(e.to, e.body) for e in receipts] == [
        ((DISTRICT,), {"event": accepted}),
        ((DISTRICT,), {"event": decided}),
    ]
    assert (await ctx.store.sync_state()).custody_seq == own[-1].seq
    detail = await cases.case_detail(ctx, number)
    assert detail["case"]["state"] == "decided"
    assert "case.received" not in [t["type"] for t in detail["timeline"] if t["own"]]

    after = await review.case_file(hub.hub, reviewer, number)
    marks = {e["id"]: e.get("sent_to") for e in after["timeline"]}
    at = {e.body["event"]: e.ts for e in receipts}
    assert marks[accepted] == [{"member": VILLAGE_A, "confirmed": True, "at": at[accepted]}]
    assert marks[decided] == [{"member": VILLAGE_A, "confirmed": True, "at": at[decided]}]
    record = await hub.hub.store.case(number)
    assert record is not None and record.rejected == []
    assert await hub.jobs.sign_receipts() == 0  # receipts are owed no receipts
    assert await engine.cycle(), engine.runtime().last_error
    assert await ctx.store.own_events_after(VILLAGE_A, own[-1].seq) == []  # once each
