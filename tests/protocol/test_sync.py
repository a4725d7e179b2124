"""Push/feed wire messages and the sans-I/O PushSession (protocol/sync.py).

Plain synchronous tests. ``ConnectionPair`` wires a real :class:`PushSession` to
``remote_push``, a tiny test double of the *remote* receiver (per-author chains, acks the
highest contiguous seq), through ``to_dict()``/``from_dict()`` and JSON bytes. With
``relay=True`` it wires a relay session to ``relay_push`` instead: a hop receiving relayed
traffic (sparse seqs), which verifies each event on its own and acks per id via ``held``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import sync
from protocol.encoding import MAX_SAFE_INT, loads_strict
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.event import Event
from protocol.keys import KeyPair, PublicKey
from protocol.sync import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    Ack,
    AckOutcome,
    FeedPage,
    PushBatch,
    PushSession,
    Reject,
)

A, B, C = "210102001001", "210102001002", "210102002001"
AUTHORS = (A, B, C)
KEYS = {author: KeyPair.from_seed(bytes([i + 1]) * 32) for i, author in enumerate(AUTHORS)}
WRONG_KEY = KeyPair.from_seed(bytes([99]) * 32)
PUBLIC = {author: key.public for author, key in KEYS.items()}
TS = "2026-11-23T09:30:00+08:00"


def make(
    author: str,
    seq: int,
    prev: str | None,
    *,
    pad: int = 0,
    tag: str = "",
    key: KeyPair | None = None,
) -> Event:
    return Event.create(
        key or KEYS[author],
        author=author,
        seq=seq,
        prev=prev,
        ts=TS,
        type="case.submitted",
        case=None,
        to=["2101:sfj"],
        body={"pad": "x" * pad, "tag": tag},
    )


def chain(author: str, n: int, *, pads: list[int] | None = None, tag: str = "") -> list[Event]:
    """Seqs 1..n of ``author``, correctly linked."""
    out: list[Event] = []
    for i in range(n):
        pad = pads[i] if pads else 0
        out.append(make(author, i + 1, out[-1].id if out else None, pad=pad, tag=tag))
    return out


def poisoned(author: str, seq: int, prev: str | None) -> Event:
    """Well formed, but signed with a key the remote does not know for ``author``."""
    return make(author, seq, prev, key=WRONG_KEY, tag="poison")


POOL = {
    author: chain(author, 8, pads=[(i * 937 + j * 311) % 3000 for j in range(8)])
    for i, author in enumerate(AUTHORS)
}
ALL = [e for author in AUTHORS for e in POOL[author]]
A1, A2, A3, A4 = POOL[A][:4]
# Relayed traffic: 12-long chains of which a hop only ever sees some seqs.
RELAY_POOL = {
    author: chain(author, 12, pads=[(i * 577 + j * 433) % 3000 for j in range(12)], tag="relay")
    for i, author in enumerate(AUTHORS)
}
RELAY_ALL = [e for author in AUTHORS for e in RELAY_POOL[author]]
R3, R7, R12 = (RELAY_POOL[A][seq - 1] for seq in (3, 7, 12))  # A's seqs 3, 7, 12
RB5 = RELAY_POOL[B][4]
B1, B2 = POOL[B][:2]
C1 = POOL[C][0]
BIG_PAD = 65_000  # ~65 KB on the wire: 33 of them pass 2 MiB


@cache
def big_chain(n: int) -> tuple[Event, ...]:
    out: list[Event] = []
    for i in range(n):
        out.append(make(C, i + 1, out[-1].id if out else None, pad=BIG_PAD))
    return tuple(out)


@cache
def long_chain(n: int) -> tuple[Event, ...]:
    return tuple(chain(C, n, tag="long"))


def reject_for(event: Event, reason: str = "bad_signature", **over: Any) -> Reject:
    fields: dict[str, Any] = {
        "id": event.id,
        "author": event.author,
        "seq": event.seq,
        "reason": reason,
        "detail": "",
        "index": None,
    }
    fields.update(over)
    return Reject(**fields)


def wire(obj: dict[str, Any]) -> Any:
    """Through JSON bytes and the strict reader, as over HTTP."""
    return loads_strict(json.dumps(obj, ensure_ascii=False).encode("utf-8"))


# --------------------------------------------------------------------------------------
# The remote (test double) and the ConnectionPair
# --------------------------------------------------------------------------------------


@dataclass
class FakeRemote:
    """Per-author chains of ids; ``stored`` counts how often each id was stored."""

    keys: dict[str, PublicKey]
    chains: dict[str, list[str]] = field(default_factory=dict)
    stored: Counter[str] = field(default_factory=Counter)


def remote_push(remote: FakeRemote, body: bytes) -> bytes:
    """The receiver of ``POST /v1/push``, reduced to what a sender can observe."""
    events, rejects = PushBatch.decode(loads_strict(body))
    out = list(rejects)
    for event in events:
        held = remote.chains.setdefault(event.author, [])
        try:
            if event.seq <= len(held):
                if held[event.seq - 1] != event.id:
                    raise RemoteProtocolError("equivocation", "another event holds this seq")
                continue  # idempotent resend
            if event.seq > len(held) + 1:
                raise RemoteProtocolError("gap", f"seq {len(held) + 1} is missing")
            event.verify(remote.keys[event.author])
            if event.prev != (held[-1] if held else None):
                raise RemoteProtocolError("bad_prev", "prev does not link")
        except RemoteProtocolError as exc:
            out.append(Reject.of(exc, event=event))
            continue
        held.append(event.id)
        remote.stored[event.id] += 1
    custody = {e.author: len(remote.chains[e.author]) for e in events}
    return json.dumps(Ack(custody, tuple(out)).to_dict()).encode("utf-8")


@dataclass
class FakeRelay:
    """A hop receiving relayed traffic: (author, seq) -> id of what it holds, and ``stored``."""

    keys: dict[str, PublicKey]
    slots: dict[tuple[str, int], str] = field(default_factory=dict)
    stored: Counter[str] = field(default_factory=Counter)


def relay_push(remote: FakeRelay, body: bytes) -> bytes:
    """The receiver of relayed pushes: each event verified on its own, acked by id."""
    events, rejects = PushBatch.decode(loads_strict(body))
    out = list(rejects)
    held: list[str] = []
    for event in events:
        slot = (event.author, event.seq)
        try:
            if remote.slots.get(slot, event.id) != event.id:
                raise RemoteProtocolError("equivocation", "another event holds this seq")
            if slot not in remote.slots:
                event.verify(remote.keys[event.author])
                remote.slots[slot] = event.id
                remote.stored[event.id] += 1
        except RemoteProtocolError as exc:
            out.append(Reject.of(exc, event=event))
            continue
        held.append(event.id)  # now or earlier: an idempotent resend is acked again
    return json.dumps(Ack({}, tuple(out), tuple(held)).to_dict()).encode("utf-8")


def assert_bounds(batch: PushBatch, max_events: int, max_bytes: int) -> None:
    assert 1 <= len(batch.events) <= max_events
    assert batch.size <= max_bytes or len(batch.events) == 1
    assert [(e.author, e.seq) for e in batch.events] == sorted(
        (e.author, e.seq) for e in batch.events
    )


class ConnectionPair:
    """A PushSession and a FakeRemote (or, relaying, a FakeRelay) joined by JSON bytes."""

    def __init__(self, client: PushSession | None = None, *, relay: bool = False) -> None:
        self.client = client or PushSession(relay=relay)
        self.remote: FakeRemote | FakeRelay = FakeRelay(PUBLIC) if relay else FakeRemote(PUBLIC)
        self.outcomes: list[AckOutcome] = []

    def push(
        self,
        fate: str = "ack",
        max_events: int = MAX_BATCH_EVENTS,
        max_bytes: int = MAX_BATCH_BYTES,
    ) -> PushBatch | None:
        batch = self.client.next_batch(max_events, max_bytes)
        if batch is None:
            return None
        assert_bounds(batch, max_events, max_bytes)
        body = json.dumps(batch.to_dict(), ensure_ascii=False).encode("utf-8")
        if fate == "lost_request":
            self.client.on_failure()
            return batch
        if isinstance(self.remote, FakeRelay):
            reply = relay_push(self.remote, body)
        else:
            reply = remote_push(self.remote, body)
        if fate == "lost_ack":
            self.client.on_failure()
            return batch
        self.outcomes.append(self.client.on_ack(Ack.from_dict(loads_strict(reply))))
        return batch

    def drain(self, limit: int = 500) -> None:
        for _ in range(limit):
            if self.push() is None:
                return
        raise AssertionError("the session never ran dry")

    def delivered(self) -> Counter[str]:
        return Counter(e.id for o in self.outcomes for e in o.in_custody)


# --------------------------------------------------------------------------------------
# Reject
# --------------------------------------------------------------------------------------


def test_reject_round_trips_and_of_fills_from_event_and_error() -> None:
    reject = Reject.of(RemoteProtocolError("bad_signature", "x" * 900), event=A2, index=3)
    assert (reject.id, reject.author, reject.seq, reject.index) == (A2.id, A, 2, 3)
    assert len(reject.detail) == sync.MAX_DETAIL_CHARS and reject.detail.endswith("…")
    assert Reject.from_dict(wire(reject.to_dict())) == reject
    anonymous = Reject.of(RemoteProtocolError("bad_json"))
    assert anonymous.to_dict() == {
        "id": None,
        "author": None,
        "seq": None,
        "reason": "bad_json",
        "detail": "",
        "index": None,
    }


GOOD_REJECT = {"id": A1.id, "author": A, "seq": 1, "reason": "gap", "detail": "d", "index": 0}


@pytest.mark.parametrize(
    "field_name, value",
    [
        ("id", "A" * 64),
        ("id", "a" * 64 + "\n"),
        ("id", 7),
        ("author", "21010"),
        ("author", A + "\n"),
        ("seq", 0),
        ("seq", True),
        ("seq", MAX_SAFE_INT + 1),
        ("seq", "1"),
        ("reason", "Bad"),
        ("reason", ""),
        ("reason", None),
        ("detail", None),
        ("detail", "x" * (sync.MAX_DETAIL_CHARS + 1)),
        ("index", -1),
        ("index", MAX_BATCH_EVENTS),
        ("index", False),
    ],
)
def test_reject_constructor_refuses(field_name: str, value: Any) -> None:
    with pytest.raises(LocalProtocolError) as err:
        Reject(**{**GOOD_REJECT, field_name: value})
    assert err.value.reason == "bad_reject"
    with pytest.raises(RemoteProtocolError) as remote:
        Reject.from_dict({**GOOD_REJECT, field_name: value})
    assert remote.value.reason == "bad_reject"


@pytest.mark.parametrize(
    "obj",
    [[], "reject", {k: v for k, v in GOOD_REJECT.items() if k != "index"}, {**GOOD_REJECT, "x": 1}],
    ids=["list", "str", "missing", "extra"],
)
def test_reject_from_dict_refuses_shape(obj: Any) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        Reject.from_dict(obj)
    assert err.value.reason == "bad_reject"


# --------------------------------------------------------------------------------------
# Ack
# --------------------------------------------------------------------------------------


def test_ack_round_trips_and_is_immutable() -> None:
    source = {A: 3, B: 0}
    ack = Ack(source, (reject_for(A4, "gap"),))
    source[A] = 99
    assert ack.custody == {A: 3, B: 0}
    with pytest.raises(TypeError):
        ack.custody[A] = 5  # type: ignore[index]
    assert Ack.from_dict(wire(ack.to_dict())) == ack
    assert ack.to_dict() == {
        "custody": {A: 3, B: 0},
        "held": [],
        "rejects": [reject_for(A4, "gap").to_dict()],
    }
    assert hash(ack) == hash(Ack({}, ack.rejects))


def test_ack_held_round_trips_and_is_optional_on_the_wire() -> None:
    ack = Ack({}, (reject_for(R7),), (R3.id, R12.id))
    assert ack.held == (R3.id, R12.id)
    assert ack.to_dict() == {
        "custody": {},
        "held": [R3.id, R12.id],
        "rejects": [ack.rejects[0].to_dict()],
    }
    assert Ack.from_dict(wire(ack.to_dict())) == ack
    assert Ack.from_dict({"custody": {A: 2}, "rejects": []}) == Ack({A: 2})
    assert Ack.from_dict({"custody": {}, "held": [], "rejects": []}).held == ()
    full = tuple(f"{i:064x}" for i in range(sync.MAX_HELD_IDS))
    assert Ack.from_dict(wire(Ack({}, (), full).to_dict())).held == full
    assert hash(ack) != hash(Ack({}, ack.rejects))


@pytest.mark.parametrize(
    "held",
    [
        ("A" * 64,),
        ("a" * 64 + "\n",),
        ("a" * 63,),
        (7,),
        (None,),
        tuple(f"{i:064x}" for i in range(sync.MAX_HELD_IDS + 1)),
        (A1.id, A2.id, A1.id),
    ],
    ids=["upper", "newline", "short", "int", "none", "too-many", "twice"],
)
def test_ack_refuses_bad_held(held: Any) -> None:
    with pytest.raises(LocalProtocolError) as err:
        Ack({}, (), held)
    assert err.value.reason == "bad_ack"
    with pytest.raises(RemoteProtocolError) as remote:
        Ack.from_dict({"custody": {}, "held": list(held), "rejects": []})
    assert remote.value.reason == "bad_ack"


def test_ack_held_must_be_a_tuple() -> None:
    with pytest.raises(LocalProtocolError) as err:
        Ack({}, (), [A1.id])  # type: ignore[arg-type]
    assert err.value.reason == "bad_ack"


@pytest.mark.parametrize(
    "custody, rejects",
    [
        ([(A, 1)], ()),
        ({"x": 1}, ()),
        ({A: -1}, ()),
        ({A: True}, ()),
        ({A: MAX_SAFE_INT + 1}, ()),
        ({f"{2101_00_000_000 + i}": 1 for i in range(sync.MAX_CUSTODY_AUTHORS + 1)}, ()),
        ({}, [reject_for(A1)]),
        ({}, ("reject",)),
        ({}, (reject_for(A1),) * (MAX_BATCH_EVENTS + 1)),
    ],
    ids=[
        "not-mapping",
        "bad-author",
        "negative",
        "bool",
        "huge",
        "too-many",
        "list",
        "junk",
        "many",
    ],
)
def test_ack_constructor_refuses(custody: Any, rejects: Any) -> None:
    with pytest.raises(LocalProtocolError) as err:
        Ack(custody, rejects)
    assert err.value.reason == "bad_ack"


@pytest.mark.parametrize(
    "obj, reason",
    [
        ("ack", "bad_ack"),
        ({"custody": {}}, "bad_ack"),
        ({"custody": {}, "rejects": [], "more": 1}, "bad_ack"),
        ({"custody": {}, "held": [], "rejects": [], "more": 1}, "bad_ack"),
        ({"held": [], "rejects": []}, "bad_ack"),
        ({"custody": {}, "held": {}, "rejects": []}, "bad_ack"),
        ({"custody": {}, "held": None, "rejects": []}, "bad_ack"),
        ({"custody": {}, "held": "a" * 64, "rejects": []}, "bad_ack"),
        ({"custody": {}, "held": ["0" * 64] * (sync.MAX_HELD_IDS + 1), "rejects": []}, "bad_ack"),
        ({"custody": {}, "held": ["0" * 64 + "\n"], "rejects": []}, "bad_ack"),
        ({"custody": [], "rejects": []}, "bad_ack"),
        ({"custody": {A: -1}, "rejects": []}, "bad_ack"),
        ({"custody": {}, "rejects": {}}, "bad_ack"),
        ({"custody": {}, "rejects": [GOOD_REJECT] * (MAX_BATCH_EVENTS + 1)}, "bad_ack"),
        ({"custody": {}, "rejects": [GOOD_REJECT, {**GOOD_REJECT, "seq": 0}]}, "bad_reject"),
    ],
)
def test_ack_from_dict_refuses(obj: Any, reason: str) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        Ack.from_dict(obj)
    assert err.value.reason == reason
    if reason == "bad_reject":
        assert err.value.detail.startswith("rejects[1]: ")


# --------------------------------------------------------------------------------------
# PushBatch
# --------------------------------------------------------------------------------------


def test_push_batch_round_trips_through_json() -> None:
    batch = PushBatch((A1, A2, B1))
    again = PushBatch.from_dict(wire(batch.to_dict()))
    assert again == batch
    assert [e.id for e in again.events] == [A1.id, A2.id, B1.id]
    assert batch.size == sum(len(e.wire_bytes) for e in (A1, A2, B1))
    assert PushBatch.from_dict({"events": []}).events == ()


@pytest.mark.parametrize(
    "events, reason",
    [
        ([A1], "bad_batch"),
        ((A1, "event"), "bad_batch"),
        (lambda: long_chain(MAX_BATCH_EVENTS + 1), "batch_too_large"),
        (lambda: big_chain(33), "batch_too_large"),
    ],
    ids=["list", "junk", "count", "bytes"],
)
def test_push_batch_constructor_refuses(events: Any, reason: str) -> None:
    with pytest.raises(LocalProtocolError) as err:
        PushBatch(events() if callable(events) else events)
    assert err.value.reason == reason


def test_push_batch_at_the_bounds_is_fine() -> None:
    assert len(PushBatch(long_chain(MAX_BATCH_EVENTS)).events) == MAX_BATCH_EVENTS
    assert PushBatch(big_chain(32)).size <= MAX_BATCH_BYTES


@pytest.mark.parametrize(
    "obj, reason",
    [
        (["events"], "bad_batch"),
        ({}, "bad_batch"),
        ({"events": [], "extra": 1}, "bad_batch"),
        ({"events": {}}, "bad_batch"),
        ({"events": [{}] * (MAX_BATCH_EVENTS + 1)}, "batch_too_large"),
        (lambda: {"events": [e.to_dict() for e in big_chain(33)]}, "batch_too_large"),
    ],
    ids=["list", "missing", "extra", "not-list", "count", "bytes"],
)
def test_push_batch_decode_fails_whole_batch_only_for_shape_and_bounds(
    obj: Any, reason: str
) -> None:
    obj = obj() if callable(obj) else obj
    for decoder in (PushBatch.decode, PushBatch.from_dict):
        with pytest.raises(RemoteProtocolError) as err:
            decoder(obj)
        assert err.value.reason == reason


def _bad_events() -> list[tuple[Any, str, str | None, int | None]]:
    """(raw event, reason, readable author, readable seq)."""
    good = A2.to_dict()
    return [
        ("not an event", "bad_event", None, None),
        ({**good, "seq": 0}, "bad_seq", A, None),
        ({**good, "seq": True}, "bad_seq", A, None),
        ({**good, "author": "nope"}, "bad_member_id", None, 2),
        ({**good, "extra": 1}, "bad_fields", A, 2),
        ({**good, "v": 2}, "bad_version", A, 2),
    ]


@pytest.mark.parametrize("raw, reason, author, seq", _bad_events())
def test_one_bad_event_is_rejected_alone(
    raw: Any, reason: str, author: str | None, seq: int | None
) -> None:
    obj = wire({"events": [A1.to_dict(), raw, B1.to_dict()]})
    events, rejects = PushBatch.decode(obj)
    assert events == [A1, B1]
    assert rejects == [
        Reject(id=None, author=author, seq=seq, reason=reason, detail=rejects[0].detail, index=1)
    ]
    with pytest.raises(RemoteProtocolError) as err:
        PushBatch.from_dict(obj)
    assert err.value.reason == reason and err.value.detail.startswith("events[1]: ")


def test_a_decoder_crash_costs_one_event_not_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Event.from_dict

    def flaky(obj: Any) -> Event:
        if obj.get("seq") == 2:
            raise TypeError("unhashable type: 'list'")
        return real(obj)

    monkeypatch.setattr(Event, "from_dict", staticmethod(flaky))
    events, rejects = PushBatch.decode({"events": [A1.to_dict(), A2.to_dict()]})
    assert events == [A1]
    assert [(r.reason, r.author, r.seq, r.index) for r in rejects] == [("bad_event", A, 2, 1)]
    assert rejects[0].detail.startswith("TypeError")


def test_hostile_sig_alg_is_one_reject() -> None:
    raw = A2.to_dict()
    raw["sig"] = {**raw["sig"], "alg": ["ed25519"]}
    events, rejects = PushBatch.decode({"events": [A1.to_dict(), raw]})
    assert events == [A1] and len(rejects) == 1 and rejects[0].index == 1


# --------------------------------------------------------------------------------------
# FeedPage
# --------------------------------------------------------------------------------------


def test_feed_page_round_trips() -> None:
    page = FeedPage((A1, B1), "c.1-2_3~x", True)
    assert FeedPage.from_dict(wire(page.to_dict())) == page
    assert page.to_dict()["cursor"] == "c.1-2_3~x" and page.to_dict()["more"] is True
    assert FeedPage((), "z" * sync.MAX_CURSOR_CHARS, False).more is False


@pytest.mark.parametrize(
    "events, cursor, more, reason",
    [
        ((), "", False, "bad_cursor"),
        ((), "z" * (sync.MAX_CURSOR_CHARS + 1), False, "bad_cursor"),
        ((), "a/b", False, "bad_cursor"),
        ((), "a\n", False, "bad_cursor"),
        ((), 5, False, "bad_cursor"),
        ((), "c", 1, "bad_feed_page"),
        ([A1], "c", False, "bad_feed_page"),
        (lambda: long_chain(MAX_BATCH_EVENTS + 1), "c", False, "page_too_large"),
    ],
)
def test_feed_page_constructor_refuses(events: Any, cursor: Any, more: Any, reason: str) -> None:
    with pytest.raises(LocalProtocolError) as err:
        FeedPage(events() if callable(events) else events, cursor, more)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    "obj, reason",
    [
        ("page", "bad_feed_page"),
        ({"events": [], "cursor": "c"}, "bad_feed_page"),
        ({"events": "x", "cursor": "c", "more": False}, "bad_feed_page"),
        ({"events": [], "cursor": "", "more": False}, "bad_cursor"),
        ({"events": [], "cursor": "c", "more": "no"}, "bad_feed_page"),
        ({"events": [{}] * (MAX_BATCH_EVENTS + 1), "cursor": "c", "more": True}, "page_too_large"),
        ({"events": [{}], "cursor": "c", "more": True}, "bad_fields"),
    ],
)
def test_feed_page_from_dict_refuses(obj: Any, reason: str) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        FeedPage.from_dict(obj)
    assert err.value.reason == reason


def test_feed_page_decode_keeps_the_good_events() -> None:
    obj = wire({"events": [A1.to_dict(), {**A2.to_dict(), "v": 9}], "cursor": "42", "more": False})
    page, rejects = FeedPage.decode(obj)
    assert page == FeedPage((A1,), "42", False)
    assert [(r.reason, r.author, r.seq, r.index) for r in rejects] == [("bad_version", A, 2, 1)]


# --------------------------------------------------------------------------------------
# PushSession: construction, add
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("custody", [[(A, 1)], {"nope": 1}, {A: -1}, {A: 1.0}, {A: None}], ids=str)
def test_session_refuses_bad_persisted_custody(custody: Any) -> None:
    with pytest.raises(LocalProtocolError) as err:
        PushSession(custody)
    assert err.value.reason == "bad_custody"


def test_session_starts_empty_or_from_persisted_heads() -> None:
    empty = PushSession()
    assert (empty.backlog_count, empty.backlog_bytes, empty.in_flight) == (0, 0, None)
    assert empty.quarantined == [] and empty.custody == {}
    restored = PushSession({A: 2})
    copy = restored.custody
    copy[A] = 0
    assert restored.custody == {A: 2}
    assert [restored.add(e) for e in (A1, A2, A3)] == [False, False, True]
    assert restored.backlog_count == 1 and restored.backlog_bytes == len(A3.wire_bytes)


def test_add_is_idempotent_by_id_in_every_place_an_event_can_be() -> None:
    session = PushSession()
    assert session.add(A1) and session.add(A2) and session.add(B1)
    assert not session.add(A1)  # queued
    batch = session.next_batch(max_events=1)
    assert batch is not None and batch.events == (A1,)
    assert not session.add(A1)  # in flight
    session.on_ack(Ack({A: 0}, (reject_for(A1, "unknown_author"),)))
    assert not session.add(A1)  # quarantined
    assert session.backlog_count == 3
    assert session.backlog_bytes == sum(len(e.wire_bytes) for e in (A1, A2, B1))


@pytest.mark.parametrize("where", ["queued", "in_flight", "quarantined"])
def test_add_refuses_an_equivocation(where: str) -> None:
    session = PushSession()
    session.add(A1)
    if where != "queued":
        assert session.next_batch() is not None
    if where == "quarantined":
        session.on_ack(Ack({A: 0}, (reject_for(A1),)))
    twin = make(A, 1, None, tag="twin")
    with pytest.raises(LocalProtocolError) as err:
        session.add(twin)
    assert err.value.reason == "equivocation"
    assert session.backlog_count == 1


def test_add_refuses_what_is_not_an_event() -> None:
    with pytest.raises(LocalProtocolError) as err:
        PushSession().add(A1.to_dict())  # type: ignore[arg-type]
    assert err.value.reason == "bad_event"


# --------------------------------------------------------------------------------------
# PushSession: next_batch
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_events": 0},
        {"max_events": MAX_BATCH_EVENTS + 1},
        {"max_events": True},
        {"max_bytes": 0},
        {"max_bytes": MAX_BATCH_BYTES + 1},
        {"max_bytes": 1.5},
    ],
    ids=str,
)
def test_next_batch_refuses_bad_limits(kwargs: dict[str, Any]) -> None:
    session = PushSession()
    session.add(A1)
    with pytest.raises(LocalProtocolError) as err:
        session.next_batch(**kwargs)
    assert err.value.reason == "bad_limit"
    assert session.in_flight is None


def test_next_batch_orders_by_author_then_seq_and_allows_one_in_flight() -> None:
    session = PushSession()
    assert session.next_batch() is None
    for event in reversed(ALL):
        session.add(event)
    batch = session.next_batch()
    assert batch is not None and list(batch.events) == ALL
    assert session.in_flight is batch
    assert session.next_batch() is None  # one batch in flight at a time
    session.add(make(A, 9, POOL[A][-1].id))
    assert session.next_batch() is None


@pytest.mark.parametrize("max_events", [1, 3, 8, 24])
def test_next_batch_honours_max_events(max_events: int) -> None:
    session = PushSession()
    for event in ALL:
        session.add(event)
    batch = session.next_batch(max_events=max_events)
    assert batch is not None and list(batch.events) == ALL[:max_events]


def test_next_batch_honours_max_bytes_and_small_events_pass_a_big_one() -> None:
    a_small = make(A, 1, None, pad=10)
    a_big = make(A, 2, a_small.id, pad=5000)
    b1 = make(B, 1, None, pad=10)
    b2 = make(B, 2, b1.id, pad=10)
    session = PushSession()
    for event in (a_small, a_big, b1, b2):
        session.add(event)
    budget = len(a_small.wire_bytes) + len(b1.wire_bytes) + len(b2.wire_bytes)
    batch = session.next_batch(max_bytes=budget)
    assert batch is not None and batch.events == (a_small, b1, b2)  # A stops at its big one
    session.on_ack(Ack({A: 1, B: 2}))
    batch = session.next_batch(max_bytes=budget)
    assert batch is not None and batch.events == (a_big,)  # too big for the budget: alone


def test_an_event_bigger_than_max_bytes_travels_alone() -> None:
    session = PushSession()
    for event in (A1, A2, B1):
        session.add(event)
    batch = session.next_batch(max_bytes=1)
    assert batch is not None and batch.events == (A1,)


def test_next_batch_fills_up_to_two_mib_of_big_events() -> None:
    session = PushSession()
    for event in big_chain(33):
        session.add(event)
    batch = session.next_batch()
    assert batch is not None and len(batch.events) == 32 and batch.size <= MAX_BATCH_BYTES


def test_unknown_head_starts_at_lowest_seq_and_a_gap_then_waits() -> None:
    pair = ConnectionPair()
    pair.client.add(A3)
    batch = pair.push()
    assert batch is not None and batch.events == (A3,)
    assert pair.outcomes[-1].returned == [A3] and pair.client.custody == {A: 0}
    assert pair.push() is None  # waits for seq 1 and 2, no resend loop
    assert pair.client.backlog_count == 1
    pair.client.add(A2)
    assert pair.push() is None
    pair.client.add(A1)
    pair.drain()
    assert pair.client.custody == {A: 3} and pair.client.backlog_count == 0


# --------------------------------------------------------------------------------------
# PushSession: on_ack, on_failure, quarantine
# --------------------------------------------------------------------------------------


def test_custody_forgets_everything_up_to_the_head_even_outside_the_batch() -> None:
    session = PushSession()
    for event in (A1, A2, A3, A4, C1):
        session.add(event)
    batch = session.next_batch(max_events=2)
    assert batch is not None and batch.events == (A1, A2)
    outcome = session.on_ack(Ack({A: 4, C: 1, B: 9}))
    assert outcome == AckOutcome(in_custody=[A1, A2, A3, A4, C1])
    assert session.backlog_count == 0 and session.backlog_bytes == 0
    assert session.custody == {A: 4, B: 9, C: 1}
    assert not session.add(POOL[B][3])  # B4 is already held by the peer


def test_custody_never_goes_back() -> None:
    session = PushSession({A: 3})
    session.add(A4)
    assert session.next_batch() is not None
    outcome = session.on_ack(Ack({A: 1}))
    assert outcome.returned == [A4] and session.custody == {A: 3}


def test_an_ack_without_custody_for_a_batch_author_is_the_peers_fault() -> None:
    session = PushSession()
    session.add(A1)
    session.add(B1)
    batch = session.next_batch()
    with pytest.raises(RemoteProtocolError) as err:
        session.on_ack(Ack({A: 1}))
    assert err.value.reason == "bad_ack" and B in err.value.detail
    assert session.in_flight is batch  # nothing changed
    session.on_failure()
    assert session.next_batch() == batch


def test_a_failure_puts_the_whole_batch_back() -> None:
    pair = ConnectionPair()
    for event in (A1, A2, B1):
        pair.client.add(event)
    first = pair.push("lost_request")
    assert pair.client.in_flight is None and pair.client.backlog_count == 3
    second = pair.push("lost_ack")  # the remote stored it, the answer was lost
    assert first == second
    pair.drain()
    assert pair.delivered() == Counter({A1.id: 1, A2.id: 1, B1.id: 1})
    assert pair.remote.stored == pair.delivered()


def test_a_bad_event_blocks_only_its_own_authors_later_seqs() -> None:
    bad = poisoned(A, 2, A1.id)
    a3 = make(A, 3, bad.id)
    pair = ConnectionPair()
    for event in (A1, bad, a3, B1, B2):
        pair.client.add(event)
    pair.push()
    outcome = pair.outcomes[-1]
    assert outcome.in_custody == [A1, B1, B2]
    assert [(e, r.reason) for e, r in outcome.quarantined] == [(bad, "wrong_key")]
    assert outcome.returned == [a3]  # the remote said "gap": not a3's fault
    assert pair.client.quarantined == outcome.quarantined
    pair.client.add(C1)
    batch = pair.push()
    assert batch is not None and batch.events == (C1,)  # other authors keep flowing
    assert pair.push() is None
    assert pair.client.backlog_count == 2  # bad + a3


def test_a_quarantine_does_not_block_earlier_seqs() -> None:
    session = PushSession()
    for event in (A1, A2, A3):
        session.add(event)
    assert session.next_batch() is not None
    outcome = session.on_ack(Ack({A: 0}, (reject_for(A3),)))
    assert outcome.returned == [A1, A2] and [e for e, _ in outcome.quarantined] == [A3]
    batch = session.next_batch()
    assert batch is not None and batch.events == (A1, A2)
    session.on_ack(Ack({A: 1}, (reject_for(A2, "unknown_author"),)))
    assert [e for e, _ in session.quarantined] == [A2, A3]
    assert session.release(A2.id) == A2  # A3 stays quarantined
    assert [e for e, _ in session.quarantined] == [A3]
    batch = session.next_batch()
    assert batch is not None and batch.events == (A2,)


def test_a_gap_reject_for_the_next_expected_seq_is_quarantined() -> None:
    session = PushSession()
    session.add(A1)
    session.next_batch()
    outcome = session.on_ack(Ack({A: 0}, (reject_for(A1, "gap"),)))
    assert [(e, r.reason) for e, r in outcome.quarantined] == [(A1, "gap")]


def test_a_reject_of_this_exact_event_beats_custody() -> None:
    session = PushSession()
    session.add(A1)
    session.next_batch()
    outcome = session.on_ack(Ack({A: 1}, (reject_for(A1, "equivocation"),)))
    assert outcome.in_custody == [] and [e for e, _ in outcome.quarantined] == [A1]
    with pytest.raises(LocalProtocolError) as err:
        session.release(A1.id)
    assert err.value.reason == "in_custody"
    assert session.drop(A1.id) == A1
    assert session.backlog_count == 0 and session.quarantined == []


def _reject_matching(how: str) -> Reject:
    table = {
        "id": reject_for(A2),
        "index": reject_for(A2, id=None, author=None, seq=None, index=1),
        "slot": reject_for(A2, id=None),
        "unknown id": reject_for(A2, id="f" * 64),
        "index past end": reject_for(A2, id=None, index=5),
        "unknown slot": reject_for(A2, id=None, seq=7),
        "author only": reject_for(A2, id=None, seq=None),
        "anonymous": reject_for(A2, id=None, author=None, seq=None),
    }
    return table[how]


@pytest.mark.parametrize(
    "how, quarantined",
    [
        ("id", True),
        ("index", True),
        ("slot", True),
        ("unknown id", False),
        ("index past end", False),
        ("unknown slot", False),
        ("author only", False),
        ("anonymous", False),
    ],
)
def test_rejects_are_matched_by_id_then_index_then_slot(how: str, quarantined: bool) -> None:
    session = PushSession()
    session.add(A1)
    session.add(A2)
    session.next_batch()
    outcome = session.on_ack(Ack({A: 1}, (_reject_matching(how),)))
    assert outcome.in_custody == [A1]
    assert [e for e, _ in outcome.quarantined] == ([A2] if quarantined else [])
    assert outcome.returned == ([] if quarantined else [A2])


def test_the_first_reject_for_an_event_wins() -> None:
    session = PushSession()
    session.add(A1)
    session.next_batch()
    outcome = session.on_ack(Ack({A: 0}, (reject_for(A1, "bad_prev"), reject_for(A1, "other"))))
    assert [r.reason for _, r in outcome.quarantined] == ["bad_prev"]


def test_release_retries_and_unblocks_later_seqs() -> None:
    session = PushSession()
    for event in (A1, A2, A3, A4):
        session.add(event)
    session.next_batch()
    session.on_ack(Ack({A: 1}, (reject_for(A2, "unknown_author"), reject_for(A3, "gap"))))
    assert session.next_batch() is None  # A3, A4 blocked behind A2
    assert session.release(A2.id) == A2
    assert session.quarantined == []
    batch = session.next_batch()
    assert batch is not None and batch.events == (A2, A3, A4)


def test_drop_forgets_and_later_seqs_wait_for_the_missing_one() -> None:
    pair = ConnectionPair()
    bad = poisoned(A, 2, A1.id)
    a3 = make(A, 3, bad.id)
    for event in (A1, bad, a3):
        pair.client.add(event)
    pair.push()
    assert pair.client.drop(bad.id) == bad
    assert pair.push() is None  # seq 2 is gone: a3 waits, visibly
    assert pair.client.backlog_count == 1 and pair.client.quarantined == []


@pytest.mark.parametrize("action", ["release", "drop"])
@pytest.mark.parametrize("target", ["unknown", "queued"])
def test_release_and_drop_only_take_quarantined_events(action: str, target: str) -> None:
    session = PushSession()
    session.add(A1)
    event_id = A1.id if target == "queued" else "0" * 64
    with pytest.raises(LocalProtocolError) as err:
        getattr(session, action)(event_id)
    assert err.value.reason == "not_quarantined"
    assert session.backlog_count == 1


# --------------------------------------------------------------------------------------
# PushSession: relay mode (sparse seqs, custody per event id)
# --------------------------------------------------------------------------------------


def test_relay_is_a_keyword_flag() -> None:
    assert PushSession().relay is False
    assert PushSession(relay=True).relay is True
    assert PushSession({A: 2}, relay=True).custody == {A: 2}
    with pytest.raises(LocalProtocolError) as err:
        PushSession(relay=1)  # type: ignore[arg-type]
    assert err.value.reason == "bad_relay"


@pytest.mark.parametrize("relay, sent", [(False, [R3, RB5]), (True, [R3, R7, R12, RB5])])
def test_sparse_seqs_block_only_in_chain_mode(relay: bool, sent: list[Event]) -> None:
    session = PushSession(relay=relay)
    for event in (R12, RB5, R7, R3):
        session.add(event)
    batch = session.next_batch()
    assert batch is not None and list(batch.events) == sent


def test_relay_sparse_seqs_go_through_once_each() -> None:
    pair = ConnectionPair(relay=True)
    for event in (R12, R3, RB5, R7):
        assert pair.client.add(event)
    batch = pair.push()
    assert batch is not None and batch.events == (R3, R7, R12, RB5)
    assert pair.outcomes[-1] == AckOutcome(in_custody=[R3, R7, R12, RB5])
    assert pair.push() is None
    assert (pair.client.backlog_count, pair.client.backlog_bytes) == (0, 0)
    assert pair.client.custody == {}  # the relay hop sent no heads
    assert pair.remote.stored == Counter(e.id for e in (R3, R7, R12, RB5))


def test_relay_held_takes_only_the_named_events() -> None:
    session = PushSession(relay=True)
    for event in (R3, R7, R12):
        session.add(event)
    session.next_batch()
    outcome = session.on_ack(Ack({}, (), (R7.id,)))
    assert outcome == AckOutcome(in_custody=[R7], returned=[R3, R12])
    assert session.backlog_count == 2 and session.custody == {}
    batch = session.next_batch()
    assert batch is not None and batch.events == (R3, R12)


def test_held_also_takes_queued_events_and_ignores_the_rest() -> None:
    session = PushSession(relay=True)
    for event in (R3, R7, R12):
        session.add(event)
    session.next_batch(max_events=1)
    session.on_ack(Ack({}, (reject_for(R3, "unknown_author"),)))  # R3 quarantined
    session.next_batch(max_events=1)  # R7 in flight, R12 queued
    outcome = session.on_ack(Ack({}, (), (R7.id, R12.id, R3.id, "f" * 64)))
    assert outcome.in_custody == [R7, R12]  # R12 was queued, not in the batch
    assert [e for e, _ in session.quarantined] == [R3]  # a quarantine is the operator's
    assert session.backlog_count == 1 and session.next_batch() is None


def test_relay_custody_head_if_sent_still_counts() -> None:
    session = PushSession(relay=True)
    for event in (R3, R7, R12):
        session.add(event)
    session.next_batch(max_events=1)
    outcome = session.on_ack(Ack({A: 7}))
    assert outcome.in_custody == [R3, R7] and session.custody == {A: 7}
    assert not session.add(R7) and not session.add(RELAY_POOL[A][4])
    batch = session.next_batch()
    assert batch is not None and batch.events == (R12,)


def test_relay_a_quarantine_blocks_nothing_even_for_gap() -> None:
    session = PushSession(relay=True)
    for event in (R3, R7, R12):
        session.add(event)
    session.next_batch()
    outcome = session.on_ack(Ack({}, (reject_for(R3, "gap"), reject_for(R7))))
    assert [(e, r.reason) for e, r in outcome.quarantined] == [(R3, "gap"), (R7, "bad_signature")]
    assert outcome.returned == [R12]
    batch = session.next_batch()
    assert batch is not None and batch.events == (R12,)  # chain mode would wait behind R3
    assert session.on_ack(Ack({}, (), (R12.id,))).in_custody == [R12]
    assert session.release(R7.id) == R7
    batch = session.next_batch()
    assert batch is not None and batch.events == (R7,)  # R3 still quarantined, no matter


def test_relay_a_reject_beats_held() -> None:
    session = PushSession(relay=True)
    session.add(R3)
    session.next_batch()
    outcome = session.on_ack(Ack({}, (reject_for(R3, "equivocation"),), (R3.id,)))
    assert outcome.in_custody == [] and [e for e, _ in outcome.quarantined] == [R3]


def test_relay_receiver_detects_equivocation_by_slot() -> None:
    twin = make(A, 7, R3.id, tag="twin")
    pair = ConnectionPair(relay=True)
    assert isinstance(pair.remote, FakeRelay)
    pair.remote.slots[(A, 7)] = twin.id  # reached the hop by another path
    for event in (R3, R7, R12):
        pair.client.add(event)
    pair.push()
    outcome = pair.outcomes[-1]
    assert outcome.in_custody == [R3, R12]
    assert [(e, r.reason) for e, r in outcome.quarantined] == [(R7, "equivocation")]


@pytest.mark.parametrize(
    "ack, ok",
    [
        (Ack({}), False),
        (Ack({}, (), (R3.id,)), False),  # says nothing of B
        (Ack({}, (), (R3.id, RB5.id)), True),
        (Ack({B: 0}, (), (R3.id,)), True),
        (Ack({}, (reject_for(RB5),), (R3.id,)), True),
        (Ack({}, (reject_for(RB5, id=None, index=1),)), False),  # names B5 but A not at all
        (Ack({}, (reject_for(R3, id=None, index=0), reject_for(RB5))), True),
    ],
)
def test_relay_ack_must_say_something_of_every_batch_author(ack: Ack, ok: bool) -> None:
    session = PushSession(relay=True)
    session.add(R3)
    session.add(RB5)
    batch = session.next_batch()
    if ok:
        session.on_ack(ack)
        assert session.in_flight is None
        return
    with pytest.raises(RemoteProtocolError) as err:
        session.on_ack(ack)
    assert err.value.reason == "bad_ack" and "held" in err.value.detail
    assert session.in_flight is batch


def test_chain_mode_needs_custody_but_honours_held() -> None:
    session = PushSession()
    for event in (A1, A2, A3):
        session.add(event)
    session.next_batch()
    with pytest.raises(RemoteProtocolError) as err:
        session.on_ack(Ack({}, (), (A1.id, A2.id, A3.id)))
    assert err.value.reason == "bad_ack" and "held" not in err.value.detail
    outcome = session.on_ack(Ack({A: 1}, (), (A3.id,)))
    assert outcome == AckOutcome(in_custody=[A1, A3], returned=[A2])


@pytest.mark.parametrize("relay, sent", [(False, [R3, RB5]), (True, [R3, R12, RB5])])
def test_relay_lets_a_smaller_later_seq_pass_a_big_one(relay: bool, sent: list[Event]) -> None:
    big = make(A, 7, R3.id, pad=5000)
    session = PushSession(relay=relay)
    for event in (R3, big, R12, RB5):
        session.add(event)
    budget = sum(len(e.wire_bytes) for e in (R3, R12, RB5))
    batch = session.next_batch(max_bytes=budget)
    assert batch is not None and list(batch.events) == sent


def test_relay_readding_after_custody_is_a_harmless_resend() -> None:
    pair = ConnectionPair(relay=True)
    pair.client.add(R7)
    pair.push()
    assert pair.client.add(R7)  # a relay session keeps no memory of what the peer holds
    pair.push()
    assert pair.delivered() == Counter({R7.id: 2}) and pair.remote.stored == Counter({R7.id: 1})


# --------------------------------------------------------------------------------------
# State table: every (state, input) pair
# --------------------------------------------------------------------------------------


def _session_in(state: str) -> PushSession:
    session = PushSession()
    session.add(A1)
    if state == "sending":
        session.next_batch()
    return session


@pytest.mark.parametrize(
    "state, action, expect",
    [
        ("idle", "next_batch", "sending"),
        ("idle", "on_ack", "no_batch_in_flight"),
        ("idle", "on_failure", "no_batch_in_flight"),
        ("sending", "next_batch", "sending"),
        ("sending", "on_ack", "idle"),
        ("sending", "on_failure", "idle"),
    ],
)
def test_every_state_input_pair(state: str, action: str, expect: str) -> None:
    session = _session_in(state)
    calls = {
        "next_batch": session.next_batch,
        "on_ack": lambda: session.on_ack(Ack({A: 1})),
        "on_failure": session.on_failure,
    }
    if expect == "no_batch_in_flight":
        with pytest.raises(LocalProtocolError) as err:
            calls[action]()
        assert err.value.reason == expect and err.value.fault == "local"
        return
    calls[action]()
    assert (session.in_flight is not None) == (expect == "sending")


# --------------------------------------------------------------------------------------
# Hypothesis: random interleavings
# --------------------------------------------------------------------------------------

FATES = st.sampled_from(["ack", "ack", "lost_request", "lost_ack"])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, len(ALL) - 1)),
        st.tuples(st.just("push"), FATES, st.integers(1, 10), st.integers(1, 12_000)),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, rest=st.permutations(ALL))
def test_any_interleaving_delivers_every_event_exactly_once(
    ops: list[Any], rest: list[Event]
) -> None:
    pair = ConnectionPair()
    added: set[str] = set()
    for op in ops:
        if op[0] == "add":
            event = ALL[op[1]]
            assert pair.client.add(event) == (event.id not in added)
            added.add(event.id)
        else:
            _, fate, max_events, max_bytes = op
            pair.push(fate, max_events, max_bytes)  # asserts the bounds
        waiting = added - set(pair.delivered())
        assert pair.client.backlog_count == len(waiting)
        assert pair.client.backlog_bytes == sum(len(e.wire_bytes) for e in ALL if e.id in waiting)
    for event in rest:
        pair.client.add(event)
    pair.drain()
    everything = Counter(e.id for e in ALL)
    assert pair.delivered() == everything  # each reported in custody exactly once
    assert pair.remote.stored == everything  # and stored exactly once
    assert pair.client.in_flight is None and pair.client.quarantined == []
    assert (pair.client.backlog_count, pair.client.backlog_bytes) == (0, 0)
    assert pair.client.custody == {author: 8 for author in AUTHORS}


BAD = poisoned(B, 3, POOL[B][1].id)
WITH_BAD = [*POOL[A], *POOL[B][:2], BAD, *POOL[C]]


@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(WITH_BAD),
    fates=st.lists(FATES, max_size=20),
    max_events=st.integers(1, 6),
)
def test_a_bad_event_never_holds_back_other_authors(
    order: list[Event], fates: list[str], max_events: int
) -> None:
    pair = ConnectionPair()
    for event in order:
        pair.client.add(event)
    for fate in fates:
        pair.push(fate, max_events)
    pair.drain()
    good = [e for e in WITH_BAD if e is not BAD]
    assert pair.delivered() == Counter(e.id for e in good)
    assert [(e, r.reason) for e, r in pair.client.quarantined] == [(BAD, "wrong_key")]
    assert pair.client.custody == {A: 8, B: 2, C: 8}


@settings(max_examples=100, deadline=None)
@given(
    pads=st.lists(st.integers(0, BIG_PAD), min_size=1, max_size=12),
    max_events=st.integers(1, MAX_BATCH_EVENTS),
    max_bytes=st.integers(1, MAX_BATCH_BYTES),
)
def test_batches_always_hold_their_bounds(pads: list[int], max_events: int, max_bytes: int) -> None:
    pair = ConnectionPair()
    last: dict[str, Event] = {}
    for i, pad in enumerate(pads):
        author = AUTHORS[i % 3]
        before = last.get(author)
        last[author] = make(
            author, before.seq + 1 if before else 1, before.id if before else None, pad=pad
        )
        pair.client.add(last[author])
    for _ in range(len(pads)):
        if pair.push("ack", max_events, max_bytes) is None:  # asserts the bounds
            break
    assert pair.client.backlog_count == 0 and pair.push() is None


# --------------------------------------------------------------------------------------
# Hypothesis: relay mode
# --------------------------------------------------------------------------------------


@st.composite
def relay_runs(draw: st.DrawFn) -> tuple[list[Event], list[Any], list[Event]]:
    """A sparse subset of the relay pool, ops on it, and the order the rest is offered in."""
    pool = draw(st.lists(st.sampled_from(RELAY_ALL), min_size=1, unique_by=lambda e: e.id))
    ops = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("add"), st.sampled_from(pool)),
                st.tuples(st.just("push"), FATES, st.integers(1, 10), st.integers(1, 12_000)),
            ),
            max_size=80,
        )
    )
    return pool, ops, draw(st.permutations(pool))


def run_relay(pair: ConnectionPair, ops: list[Any], rest: list[Event]) -> None:
    """Play ``ops`` then offer ``rest`` and drain; the outbox never re-offers a held event."""
    offered: set[str] = set()
    for op in ops:
        if op[0] == "add":
            event = op[1]
            if event.id in pair.delivered():
                continue  # the caller's outbox no longer offers what the peer holds
            assert pair.client.add(event) == (event.id not in offered)
            offered.add(event.id)
        else:
            _, fate, max_events, max_bytes = op
            pair.push(fate, max_events, max_bytes)  # asserts the bounds
        waiting = offered - set(pair.delivered())
        quarantined = {e.id for e, _ in pair.client.quarantined}
        assert pair.client.backlog_count == len(waiting)
        assert pair.client.backlog_bytes == sum(
            len(e.wire_bytes) for e in RELAY_ALL if e.id in waiting
        )
        assert quarantined <= waiting
    for event in rest:
        if event.id not in pair.delivered():
            pair.client.add(event)
    pair.drain()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run=relay_runs())
def test_relay_any_interleaving_takes_every_event_into_custody_once(
    run: tuple[list[Event], list[Any], list[Event]],
) -> None:
    pool, ops, rest = run
    pair = ConnectionPair(relay=True)
    run_relay(pair, ops, rest)
    everything = Counter(e.id for e in pool)
    assert pair.delivered() == everything  # each reported in custody exactly once
    assert pair.remote.stored == everything  # and stored exactly once
    assert pair.client.in_flight is None and pair.client.quarantined == []
    assert (pair.client.backlog_count, pair.client.backlog_bytes) == (0, 0)
    assert pair.client.custody == {}


RELAY_BAD = poisoned(A, 5, RELAY_POOL[A][3].id)
RELAY_WITH_BAD = [RELAY_POOL[A][2], RELAY_BAD, R7, R12, RB5, RELAY_POOL[C][9]]


@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(RELAY_WITH_BAD),
    fates=st.lists(FATES, max_size=20),
    max_events=st.integers(1, 6),
)
def test_relay_a_bad_event_holds_back_nothing(
    order: list[Event], fates: list[str], max_events: int
) -> None:
    pair = ConnectionPair(relay=True)
    for event in order:
        pair.client.add(event)
    for fate in fates:
        pair.push(fate, max_events)
    pair.drain()
    good = [e for e in RELAY_WITH_BAD if e is not RELAY_BAD]
    assert pair.delivered() == Counter(e.id for e in good)  # A7, A12 despite A5
    assert pair.remote.stored == Counter(e.id for e in good)
    assert [(e, r.reason) for e, r in pair.client.quarantined] == [(RELAY_BAD, "wrong_key")]
