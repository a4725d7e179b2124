"""The sync engine against a protocol-level hub double (tests/node/hubdouble.py).

Not an integration test: the real hub is exercised end to end in tests/integration/.
Everything on the station side is real: store, SQLite file, blob store, tus client,
PeerClient, PushSession, over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import aiohttp
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from node import sync as sync_module
from node.runtime import open_context
from node.services import cases, status
from node.services.accept import (
    Application,
    MaterialInput,
    Person,
    UploadedFile,
    accept_application,
)
from node.services.context import NodeContext
from node.storage import ClerkRow
from node.sync import SyncEngine
from protocol.config import Federation, FederationConfig, sign_config
from protocol.http.blobs import sha256_hex
from tests.protocol.fed import ANNUAL, VILLAGE, key

from .conftest import STATION_ID, Synced
from .helpers import CITY_HUB, MONDAY, Clock, HubSigner, config_dict, resident_id, signed_config

ADMIN = ClerkRow(1, "admin", "管理员", "", "admin", True, None)
BIG = bytes(range(256)) * 800  # 200 KiB: four 64 KiB chunks (the fixture's chunk size)


async def sync(engine: SyncEngine) -> None:
    """One successful cycle (fails the test with the engine's error otherwise)."""
    assert await engine.cycle(), engine.runtime().last_error


def application(data: bytes = b"%PDF form") -> Application:
    return Application(
        matter=ANNUAL,
        applicant=Person("张三", resident_id()),
        materials=(
            MaterialInput("form", "provided", (UploadedFile("f.pdf", "application/pdf", data),)),
        ),
    )


async def test_push_brings_own_events_into_custody(synced: Synced) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    first = await accept_application(ctx, application())
    await accept_application(ctx, application())
    await sync(engine)
    assert [e.seq for e in hub.chains[VILLAGE]] == [1, 2]
    state = await ctx.store.sync_state()
    assert state.custody_seq == 2 and state.last_success is not None
    rows = await ctx.store.uploads()
    assert not rows, rows
    backlog = await ctx.store.backlog(STATION_ID)
    assert backlog.events == 0 and backlog.blobs == 0
    pushes = hub.pushes
    await sync(engine)
    assert hub.pushes == pushes  # nothing left to send
    detail = await cases.case_detail(ctx, first["number"])
    assert detail["timeline"][0]["synced"] is True
    assert engine.metrics.events_pushed._value.get() == 2  # type: ignore[attr-defined]


async def test_blobs_upload_once_and_held_blobs_are_not_sent(synced: Synced) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    await accept_application(ctx, application(BIG))
    await sync(engine)
    digest = sha256_hex(BIG)
    assert hub.blobs.read(digest) == BIG
    assert hub.patch_bytes == len(BIG)
    upload = await ctx.store.upload_state(digest)
    assert upload is not None and upload.done and upload.bytes_sent == len(BIG)

    # The same scan again (只提交一次材料): already held by the hub, nothing sent.
    other = b"another scan" * 50
    hub.blobs.put(other)
    await accept_application(ctx, application(other))
    await sync(engine)
    assert hub.patch_bytes == len(BIG)
    row = await ctx.store.upload_state(sha256_hex(other))
    assert row is not None and row.done and row.bytes_sent == 0


async def test_an_interrupted_upload_resumes_without_resending(synced: Synced) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    await accept_application(ctx, application(BIG))
    hub.fail_patch_after = 2  # the link dies after two chunks
    assert not await engine.cycle()
    digest = sha256_hex(BIG)
    row = await ctx.store.upload_state(digest)
    assert row is not None and row.url is not None and not row.done
    assert hub.patch_bytes == 2 * 64 * 1024

    # A restart: a new engine over a freshly opened database; only the DB remembers.
    await engine.stop()
    await ctx.store.db.close()
    reopened = await open_context(synced.data, clock=ctx.clock)
    reopened.station = replace(reopened.station, parent_url=synced.url)
    hub.fail_patch_after = None
    async with aiohttp.ClientSession() as session:
        again = SyncEngine(reopened, session, feed_wait=0, chunk_size=64 * 1024)
        await sync(again)
        await again.stop()
    assert hub.blobs.read(digest) == BIG
    assert hub.patch_bytes == len(BIG) + 0  # every byte exactly once
    done = await reopened.store.upload_state(digest)
    assert done is not None and done.done
    await reopened.store.db.close()


async def test_a_decision_from_the_feed_is_verified_folded_and_delivered(synced: Synced) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    number = (await accept_application(ctx, application()))["number"]
    await sync(engine)
    acts = HubSigner().accept_and_approve(number, VILLAGE, MONDAY)
    for event in acts:
        hub.serve(event)
    await sync(engine)
    detail = await cases.case_detail(ctx, number)
    assert detail["case"]["state_label"] == "办结"
    assert [t["text"] for t in detail["timeline"]] == [
        "站点 210102001001 收件",
        "部门 2101:sfj 受理",
        "办结（出证办结）",
    ]
    assert detail["result"]["seal"]["genuine"] is True
    assert detail["result"]["text"].startswith("TBRES1.")
    assert detail["actions"]["deliver"] is True

    delivered = await cases.deliver(ctx, number, collector="张三", method="窗口领取", clerk=ADMIN)
    assert delivered["case"]["state_label"] == "已送达"
    await sync(engine)
    pushed = hub.chains[VILLAGE]
    # 送达回执 of 受理 and 办结, signed as they were stored (hidden from the timeline above)
    assert [e.type for e in pushed] == [
        "case.submitted",
        "case.received",
        "case.received",
        "case.delivered",
    ]
    assert [(e.to, e.body) for e in pushed[1:3]] == [(("2101",), {"event": a.id}) for a in acts]
    assert pushed[3].to == ("2101:sfj",)
    assert pushed[3].body["collector"] == "张三" and pushed[3].body["clerk"] == "admin"


async def test_a_later_config_does_not_undo_decisions_made_before_it(synced: Synced) -> None:
    """Refolding under a new config judges staff and keys at each event's time: disabling
    the reviewers and revoking the hub's key afterwards leaves the decided case decided."""
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    number = (await accept_application(ctx, application()))["number"]
    await sync(engine)
    for event in HubSigner().accept_and_approve(number, VILLAGE, MONDAY):
        hub.serve(event)
    await sync(engine)
    later = (MONDAY + timedelta(days=1)).isoformat()
    obj = config_dict(ctx.key.public, serial=2)
    for entry in obj["staff"]:
        if entry["id"] in ("sfj-shouli", "sfj-shenhe"):
            entry.update(active=False, disabled_at=later)
    obj["revocations"] = [{"member": "2101", "revoked_at": later, "reason": "密钥泄露"}]
    hub.config = sign_config(FederationConfig.parse(obj), key("root 2101"))
    await sync(engine)
    assert ctx.configs.home is not None and ctx.configs.home.serial == 2
    detail = await cases.case_detail(ctx, number)
    assert detail["case"]["state_label"] == "办结"
    assert detail["result"]["seal"]["genuine"] is True


async def test_feed_events_that_do_not_verify_are_quarantined(synced: Synced) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    number = (await accept_application(ctx, application()))["number"]
    forger = HubSigner(key=key("stranger"))  # claims to be 2101 with a key not in the config
    hub.serve(forger.sign("case.accepted", number, {"by": "sfj-shouli"}, [VILLAGE], MONDAY))
    good = HubSigner().sign("case.accepted", number, {"by": "sfj-shouli"}, [VILLAGE], MONDAY)
    hub.serve(good)
    await sync(engine)
    items = await status.quarantine_list(ctx)
    assert [(i["direction"], i["reason"]) for i in items] == [("in", "unknown_key")]
    assert "本站拒收" in items[0]["text"]
    assert (await ctx.store.case(number)).state == "accepted"  # type: ignore[union-attr]
    assert (await ctx.store.sync_state()).feed_cursor == "2"


async def test_rejected_own_event_is_quarantined_and_can_be_released(synced: Synced) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    hub.reject_seqs[1] = "unknown_matter"
    await accept_application(ctx, application())
    await accept_application(ctx, application())
    await sync(engine)
    assert VILLAGE not in hub.chains or hub.chains[VILLAGE] == []
    items = await status.quarantine_list(ctx)
    assert [(i["direction"], i["seq"], i["reason"]) for i in items] == [
        ("out", 1, "unknown_matter")
    ]
    bar = await status.sync_status(ctx)
    assert bar["quarantined"] == 1 and bar["waiting"]["events"] == 2

    del hub.reject_seqs[1]
    await status.release(ctx, items[0]["id"], ADMIN)
    await sync(engine)
    assert [e.seq for e in hub.chains[VILLAGE]] == [1, 2]
    assert (await status.sync_status(ctx))["quarantined"] == 0


async def test_newer_config_is_adopted_and_a_forged_one_refused(synced: Synced) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    hub.config = signed_config(ctx.key.public, serial=2)
    await sync(engine)
    assert ctx.configs.home is not None and ctx.configs.home.serial == 2
    assert (await ctx.store.sync_state()).config_serial == 2
    forged = sign_config(
        FederationConfig.parse(
            config_dict(
                ctx.key.public,
                serial=3,
                root_keys=[
                    {"public": CITY_HUB.public.to_text(), "valid_from": "2025-01-01T00:00:00+08:00"}
                ],
            )
        ),
        CITY_HUB,
    )
    hub.config = forged
    await sync(engine)
    assert ctx.configs.home.serial == 2


async def test_offline_backs_off_and_recovers(synced: Synced, clock: Clock) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    await accept_application(ctx, application())
    hub.unavailable = True
    assert not await engine.cycle()
    assert engine.backoff.failures == 1
    assert engine.runtime().online is False
    state = await ctx.store.sync_state()
    assert state.last_error is not None and "503" in state.last_error
    bar = await status.sync_status(ctx)
    assert bar["last_error_text"] == "上级服务器暂时故障"
    assert bar["waiting"]["events"] == 1
    hub.unavailable = False
    await sync(engine)
    assert engine.backoff.failures == 0 and engine.runtime().online is True
    assert (await ctx.store.sync_state()).custody_seq == 1
    clock.advance(seconds=1)
    await sync(engine)
    assert (await status.sync_status(ctx))["last_error_text"] is None


async def test_a_new_event_is_pushed_while_the_long_poll_stays_open(synced: Synced) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    engine.feed_wait = 30.0
    running = asyncio.create_task(engine.cycle())
    await asyncio.wait_for(hub.polling.wait(), 5)
    hub.pushed.clear()
    await accept_application(ctx, application())  # wakes the engine
    await asyncio.wait_for(hub.pushed.wait(), 5)  # long before the 30 s poll would end
    assert [e.seq for e in hub.chains[VILLAGE]] == [1]
    hub.pushed.clear()
    await accept_application(ctx, application())
    await asyncio.wait_for(hub.pushed.wait(), 5)
    assert [e.seq for e in hub.chains[VILLAGE]] == [1, 2]
    await asyncio.sleep(0.3)
    # The long-poll was neither cut nor asked again: one feed request, still waiting.
    assert hub.feed_requests == 1 and hub.polling.is_set() and not running.done()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_a_burst_of_applications_goes_up_as_one_push(
    synced: Synced, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone application goes up at once; those accepted one after another (within BURST)
    wait PUSH_SETTLE and go up together: one signed request, one gzip stream."""
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    monkeypatch.setattr(sync_module, "BURST", 30.0)  # every accept below counts as a burst
    engine.feed_wait, engine.push_settle = 30.0, 3.0
    running = asyncio.create_task(engine.cycle())
    await asyncio.wait_for(hub.polling.wait(), 5)
    hub.pushed.clear()
    await accept_application(ctx, application())  # the first: nothing before it
    await asyncio.wait_for(hub.pushed.wait(), 2)  # sooner than the settle
    assert (hub.pushes, len(hub.chains[VILLAGE])) == (1, 1)
    hub.pushed.clear()
    for _ in range(3):
        await accept_application(ctx, application())
    await asyncio.wait_for(hub.pushed.wait(), 10)
    assert (hub.pushes, [e.seq for e in hub.chains[VILLAGE]]) == (2, [1, 2, 3, 4])
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_a_receipt_goes_up_at_once_and_holds_no_application_back(synced: Synced) -> None:
    """The 送达回执 signed for a decision is pushed at once, and an application the clerk
    accepts right after it is not taken for part of a burst (it would wait the settle)."""
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    number = (await accept_application(ctx, application()))["number"]
    engine.feed_wait = 0.0
    await sync(engine)
    await asyncio.sleep(sync_module.BURST)  # that application's wake-up is long past
    engine.feed_wait, engine.push_settle = 30.0, 60.0  # a settle would outlast the test
    running = asyncio.create_task(engine.cycle())
    await asyncio.wait_for(hub.polling.wait(), 5)
    hub.pushed.clear()
    for event in HubSigner().accept_and_approve(number, VILLAGE, MONDAY):
        hub.serve(event)
    await asyncio.wait_for(hub.pushed.wait(), 5)
    assert [e.type for e in hub.chains[VILLAGE]][1:] == ["case.received"] * 2
    await asyncio.wait_for(hub.polling.wait(), 5)
    hub.pushed.clear()
    await accept_application(ctx, application())
    await asyncio.wait_for(hub.pushed.wait(), 5)
    assert hub.chains[VILLAGE][-1].type == "case.submitted"
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_the_scheduled_job_syncs_after_a_wake_up(synced: Synced) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    engine.feed_wait = 5.0
    scheduler = AsyncIOScheduler()
    engine.start(scheduler)
    scheduler.start()
    try:
        await asyncio.wait_for(hub.polling.wait(), 5)
        assert engine.runtime().running
        hub.pushed.clear()
        await accept_application(ctx, application())
        await asyncio.wait_for(hub.pushed.wait(), 5)
        assert [e.seq for e in hub.chains[VILLAGE]] == [1]
    finally:
        await engine.stop()
        scheduler.shutdown(wait=False)


async def test_the_scheduled_loop_takes_each_feed_event_as_it_comes(synced: Synced) -> None:
    """Results arriving one after another each reach the window within seconds, not at the
    next safety interval (a job rescheduling itself while running was skipped)."""
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    engine.feed_wait = 5.0
    number = (await accept_application(ctx, application()))["number"]
    scheduler = AsyncIOScheduler()
    engine.start(scheduler)
    scheduler.start()
    try:
        await asyncio.wait_for(hub.polling.wait(), 5)
        states = []
        for event in HubSigner().accept_and_approve(number, VILLAGE, MONDAY):
            hub.serve(event)
            await asyncio.wait_for(_until_state_changes(ctx, number, states), 5)
        assert states == ["已受理", "办结"]
    finally:
        await engine.stop()
        scheduler.shutdown(wait=False)


async def _until_state_changes(ctx: NodeContext, number: str, seen: list[str]) -> None:
    before = seen[-1] if seen else "收件"
    while True:
        label = (await cases.case_detail(ctx, number))["case"]["state_label"]
        if label != before:
            seen.append(label)
            return
        await asyncio.sleep(0.05)


async def test_a_station_not_yet_enrolled_is_told_so(synced: Synced) -> None:
    ctx, hub, engine = synced.ctx, synced.hub, synced.engine
    await accept_application(ctx, application())
    hub.config = signed_config(key("some other station").public)  # our key is not listed
    hub.federation = Federation(hub.config.config)
    scheduler = AsyncIOScheduler()
    engine.start(scheduler)  # not started: only makes the engine report as running
    assert not await engine.cycle()
    bar = await status.sync_status(ctx)
    assert bar["online"] is True
    assert bar["label"].startswith("已连接上级，但同步受阻：上级不认识本站密钥")
    assert bar["last_error"].startswith("unknown_key")
