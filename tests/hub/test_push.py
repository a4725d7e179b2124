"""POST /v1/push: custody, idempotence, and each kind of refusal changing nothing."""

from __future__ import annotations

import gzip
import time

import aiohttp
import pytest

from protocol.encoding import canonical
from protocol.http import PeerError, sign_request
from protocol.sync import Ack
from tests.hub.conftest import RunningHub, StartHub, custody_tables, table_counts
from tests.hub.fed import (
    HP_MZJ,
    OTHER_VILLAGE,
    STRANGER,
    VILLAGE_A,
    VILLAGE_B,
    Chain,
    key,
    submit,
    wire,
)


@pytest.fixture
async def district(start_hub: StartHub, db_url: str | None) -> RunningHub:
    return await start_hub(db=db_url)


async def push(
    hub: RunningHub, session: aiohttp.ClientSession, member: str, *events: object
) -> Ack:
    client = hub.client(member, session)
    return Ack.from_dict(
        await client.push([e if isinstance(e, dict) else e.to_dict() for e in events])
    )  # type: ignore[union-attr]


async def test_push_takes_custody_and_folds_the_case(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    chain = Chain(VILLAGE_A)
    submitted = submit(chain)
    note = chain.next(to=(VILLAGE_B,))
    ack = await push(district, session, VILLAGE_A, submitted, note)
    assert ack.custody == {VILLAGE_A: 2}
    assert ack.rejects == ()
    assert await district.hub.store.chain_head(VILLAGE_A) == (2, note.id)
    case = await district.hub.store.case(submitted.case or "")
    assert case is not None and case.state == "submitted" and case.authority == HP_MZJ
    assert await district.hub.store.feed_positions(VILLAGE_B) == [(1, note.id)]
    assert await district.hub.store.feed_positions(VILLAGE_A) == []
    sample = district.hub.metrics.registry.get_sample_value
    assert sample("tongban_hub_events_received_total", {"mode": "chain"}) == 2
    assert sample("tongban_hub_push_seconds_count") == 1


async def test_resending_is_idempotent(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    chain = Chain(VILLAGE_A)
    events = [submit(chain), chain.next(to=(VILLAGE_B,)), chain.next()]
    first = await push(district, session, VILLAGE_A, *events)
    before = await table_counts(district.hub)
    again = await push(district, session, VILLAGE_A, *events)
    partial = await push(district, session, VILLAGE_A, events[1])
    assert first == again == partial
    assert again.custody == {VILLAGE_A: 3}
    assert await table_counts(district.hub) == before


async def test_gap_is_refused_and_changes_nothing(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    chain = Chain(VILLAGE_A)
    await push(district, session, VILLAGE_A, chain.next())
    chain.next()  # seq 2 never sent
    third = chain.next()
    before = await table_counts(district.hub)
    ack = await push(district, session, VILLAGE_A, third)
    assert ack.custody == {VILLAGE_A: 1}
    [reject] = ack.rejects
    assert (reject.reason, reject.id, reject.seq) == ("gap", third.id, 3)
    assert await table_counts(district.hub) == before  # a gap is not quarantined either


async def test_equivocation_is_refused_kept_as_evidence_and_alerted(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    chain = Chain(VILLAGE_A)
    first = chain.next()
    await push(district, session, VILLAGE_A, first)
    other = chain.make(1, None, body={"另一个": "版本"})
    before = await table_counts(district.hub)
    ack = await push(district, session, VILLAGE_A, other)
    assert ack.custody == {VILLAGE_A: 1}
    assert [r.reason for r in ack.rejects] == ["equivocation"]
    after = await table_counts(district.hub)
    assert custody_tables(after) == custody_tables(before)
    [evidence] = await district.hub.store.equivocations()
    assert (evidence["held_id"], evidence["other_id"]) == (first.id, other.id)
    assert evidence["other_wire"] == other.wire_bytes
    alerts = await district.hub.store.alerts()
    assert [(a.kind, a.subject) for a in alerts] == [("equivocation", f"{VILLAGE_A}/1")]


async def test_wrong_prev_is_refused_and_quarantined(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    chain = Chain(VILLAGE_A)
    await push(district, session, VILLAGE_A, chain.next())
    forged = chain.make(2, "ab" * 32)
    before = await table_counts(district.hub)
    ack = await push(district, session, VILLAGE_A, forged)
    assert [r.reason for r in ack.rejects] == ["wrong_prev"]
    assert custody_tables(await table_counts(district.hub)) == custody_tables(before)
    [row] = await district.hub.store.quarantined()
    assert (row["reason"], row["event_id"], row["pusher"]) == ("wrong_prev", forged.id, VILLAGE_A)


async def test_unknown_author_is_refused(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    stranger = Chain(STRANGER).next()
    before = await table_counts(district.hub)
    ack = await push(district, session, VILLAGE_A, stranger)
    assert [r.reason for r in ack.rejects] == ["unknown_author"]
    assert ack.custody == {}
    assert custody_tables(await table_counts(district.hub)) == custody_tables(before)
    # And a request signed by a key no member holds never gets in at all.
    client = district.client(STRANGER, session)
    with pytest.raises(PeerError) as caught:
        await client.push(wire(stranger))
    assert (caught.value.status, caught.value.reason) == (401, "unknown_key")


async def test_anothers_event_is_not_yours_to_push(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    theirs = Chain(VILLAGE_B).next()
    before = await table_counts(district.hub)
    ack = await push(district, session, VILLAGE_A, theirs)
    assert [r.reason for r in ack.rejects] == ["not_your_event"]
    assert custody_tables(await table_counts(district.hub)) == custody_tables(before)


async def test_tampered_event_is_refused(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    chain = Chain(VILLAGE_A)
    good = chain.next(body={"fee_fen": 100})
    tampered = good.to_dict()
    tampered["body"] = {"fee_fen": 1}
    before = await table_counts(district.hub)
    ack = await push(district, session, VILLAGE_A, tampered)
    assert [r.reason for r in ack.rejects] == ["bad_signature"]
    assert ack.custody == {VILLAGE_A: 0}
    assert custody_tables(await table_counts(district.hub)) == custody_tables(before)


async def test_tampered_request_body_is_refused(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    url = district.url.rstrip("/") + "/v1/push"
    signed_body = gzip.compress(canonical({"events": wire(Chain(VILLAGE_A).next())}), mtime=0)
    other = Chain(VILLAGE_A).next(body={"改过": True})
    sent_body = gzip.compress(canonical({"events": wire(other)}), mtime=0)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    headers.update(
        sign_request(
            "POST", url, headers, signed_body, key(VILLAGE_A), created=int(time.time()), nonce="n1"
        )
    )
    before = await table_counts(district.hub)
    async with session.post(url, data=sent_body, headers=headers) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "digest_mismatch"
    assert await table_counts(district.hub) == before


async def test_replayed_request_is_refused(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    client = district.client(VILLAGE_A, session, nonce_factory=lambda: "always-the-same")
    chain = Chain(VILLAGE_A)
    await client.push(wire(chain.next()))
    before = await table_counts(district.hub)
    with pytest.raises(PeerError) as caught:
        await client.push(wire(chain.next()))
    assert (caught.value.status, caught.value.reason) == (401, "replayed_nonce")
    assert custody_tables(await table_counts(district.hub)) == custody_tables(before)


async def test_a_stranger_to_this_hub_may_not_push(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    client = district.client(OTHER_VILLAGE, session)
    with pytest.raises(PeerError) as caught:
        await client.push(wire(Chain(OTHER_VILLAGE).next()))
    assert (caught.value.status, caught.value.reason) == (403, "not_a_child")


async def test_one_bad_event_does_not_block_others(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    a, b = Chain(VILLAGE_A), Chain(VILLAGE_A)
    good = a.next()
    junk = {"author": VILLAGE_A, "seq": 2, "oops": True}
    stranger = Chain(STRANGER).next()
    ack = await push(district, session, VILLAGE_A, stranger, good, junk, a.next())
    assert ack.custody == {VILLAGE_A: 2}
    assert sorted((r.index, r.reason) for r in ack.rejects) == [
        (0, "unknown_author"),
        (2, "bad_fields"),
    ]
    del b


async def test_a_case_the_fold_refuses_still_takes_custody(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    chain = Chain(VILLAGE_A)
    submitted = submit(chain)
    # The window cannot accept for the authority (受审分离): the fold refuses the move…
    overreach = chain.next("case.accepted", case=submitted.case, to=(HP_MZJ,), body={"by": "x"})
    ack = await push(district, session, VILLAGE_A, submitted, overreach)
    # …but the event is authentic and in the window's chain: custody is not refused.
    assert (ack.custody, ack.rejects) == ({VILLAGE_A: 2}, ())
    case = await district.hub.store.case(submitted.case or "")
    assert case is not None and case.state == "submitted"
    [refusal] = case.rejected
    assert (refusal["event"], refusal["reason"]) == (overreach.id, "not_delegated")
    assert case.last_error is not None
    assert [a.kind for a in await district.hub.store.alerts()] == ["case_rejected"]


async def raw_push(
    hub: RunningHub, session: aiohttp.ClientSession, member: str, events: list[object]
) -> tuple[int, dict[str, object]]:
    """POST /v1/push as ``member`` and return the HTTP status and body as they are."""
    url = hub.url.rstrip("/") + "/v1/push"
    body = gzip.compress(canonical({"events": events}), mtime=0)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    headers.update(
        sign_request(
            "POST", url, headers, body, key(member), created=int(time.time()),
            nonce=f"raw-{time.monotonic_ns()}",
        )
    )  # fmt: skip
    async with session.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


def _tampered() -> dict[str, object]:
    event = Chain(VILLAGE_A).next(body={"fee_fen": 100}).to_dict()
    event["body"] = {"fee_fen": 1}
    return event


def _gap() -> dict[str, object]:
    chain = Chain(VILLAGE_A)
    chain.next()
    return chain.next().to_dict()  # seq 2 before seq 1


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_tampered, "bad_signature"),
        (_gap, "gap"),
        (lambda: Chain(STRANGER).next().to_dict(), "unknown_author"),
    ],
    ids=["tampered", "wrong chain (gap)", "unknown author"],
)
async def test_a_batch_with_nothing_acceptable_is_a_422_with_the_reason(
    district: RunningHub, session: aiohttp.ClientSession, make: object, reason: str
) -> None:
    before = await table_counts(district.hub)
    status, body = await raw_push(district, session, VILLAGE_A, [make()])  # type: ignore[operator]
    assert (status, body["error"]) == (422, reason)
    assert [r["reason"] for r in body["rejects"]] == [reason]  # type: ignore[union-attr]
    assert custody_tables(await table_counts(district.hub)) == custody_tables(before)


async def test_a_wrong_prev_alone_is_a_422(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    chain = Chain(VILLAGE_A)
    await push(district, session, VILLAGE_A, chain.next())
    before = await table_counts(district.hub)
    status, body = await raw_push(
        district, session, VILLAGE_A, [chain.make(2, "ab" * 32).to_dict()]
    )
    assert (status, body["error"], body["custody"]) == (422, "wrong_prev", {VILLAGE_A: 1})
    assert custody_tables(await table_counts(district.hub)) == custody_tables(before)


async def test_a_mixed_batch_is_accepted_with_rejects(
    district: RunningHub, session: aiohttp.ClientSession
) -> None:
    good = Chain(VILLAGE_A).next().to_dict()
    status, body = await raw_push(district, session, VILLAGE_A, [good, _tampered()])
    assert status == 200
    assert body["custody"] == {VILLAGE_A: 1}
    assert [r["reason"] for r in body["rejects"]] == ["bad_signature"]  # type: ignore[union-attr]
