"""Per-author hash chains: classification, buffering, equivocation evidence, convergence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import chain as chain_mod
from protocol.chain import ChainState, Verdict, classify, rejection
from protocol.errors import RemoteProtocolError
from protocol.event import Event
from protocol.keys import KeyPair

KEY = KeyPair.from_seed(bytes(range(32)))
AUTHOR = "210102001001"


def build_chain(n: int, *, author: str = AUTHOR, variant: str = "") -> list[Event]:
    events: list[Event] = []
    prev = None
    for seq in range(1, n + 1):
        event = Event.create(
            KEY,
            author=author,
            seq=seq,
            prev=prev,
            ts="2026-11-23T09:30:00+08:00",
            type="case.note",
            case=None,
            to=["210102"],
            body={"n": seq, "v": variant},
        )
        events.append(event)
        prev = event.id
    return events


CHAIN = build_chain(6)
FORK = build_chain(6, variant="fork")


@pytest.mark.parametrize(
    ("head", "event", "held", "verdict"),
    [
        (0, CHAIN[0], None, Verdict.ACCEPTED),
        (1, CHAIN[1], None, Verdict.ACCEPTED),
        (1, CHAIN[0], CHAIN[0].id, Verdict.DUPLICATE),
        (1, FORK[0], CHAIN[0].id, Verdict.EQUIVOCATION),
        (0, CHAIN[2], None, Verdict.GAP),
        (1, FORK[1], None, Verdict.WRONG_PREV),
    ],
)
def test_classify(head: int, event: Event, held: str | None, verdict: Verdict) -> None:
    head_id = CHAIN[head - 1].id if head else None
    assert classify(head, head_id, event, held) is verdict


@pytest.mark.parametrize("verdict", [Verdict.GAP, Verdict.EQUIVOCATION, Verdict.WRONG_PREV])
def test_rejection_names_the_verdict(verdict: Verdict) -> None:
    err = rejection(verdict, CHAIN[3], 1)
    assert err.reason == verdict.value and AUTHOR in err.detail


def test_in_order_appends_one_by_one() -> None:
    state = ChainState(AUTHOR)
    for event in CHAIN:
        offer = state.offer(event)
        assert offer.verdict is Verdict.ACCEPTED and offer.appended == (event,)
    assert state.head_seq == 6 and state.head_id == CHAIN[-1].id


def test_out_of_order_buffers_then_releases_in_order() -> None:
    state = ChainState(AUTHOR)
    assert state.offer(CHAIN[2]).verdict is Verdict.GAP
    assert state.offer(CHAIN[2]).verdict is Verdict.DUPLICATE  # same pending event again
    assert state.offer(CHAIN[1]).verdict is Verdict.GAP
    offer = state.offer(CHAIN[0])
    assert offer.verdict is Verdict.ACCEPTED
    assert [e.seq for e in offer.appended] == [1, 2, 3]
    assert state.pending == {}


def test_equivocation_keeps_evidence_for_held_and_pending() -> None:
    state = ChainState(AUTHOR)
    state.offer(CHAIN[0])
    assert state.offer(FORK[0]).verdict is Verdict.EQUIVOCATION
    assert state.offer(CHAIN[3]).verdict is Verdict.GAP
    assert state.offer(FORK[3]).verdict is Verdict.EQUIVOCATION
    assert [(e.seq, e.held_id, e.other.id) for e in state.evidence] == [
        (1, CHAIN[0].id, FORK[0].id),
        (4, CHAIN[3].id, FORK[3].id),
    ]
    assert state.head_seq == 1


def test_wrong_prev_is_rejected_directly_and_when_released() -> None:
    state = ChainState(AUTHOR)
    state.offer(CHAIN[0])
    assert state.offer(FORK[1]).verdict is Verdict.WRONG_PREV
    assert state.offer(FORK[2]).verdict is Verdict.GAP  # FORK[2].prev is FORK[1], not CHAIN[1]
    offer = state.offer(CHAIN[1])
    assert offer.appended == (CHAIN[1],)
    assert [(e.id, v) for e, v in state.rejected] == [
        (FORK[1].id, Verdict.WRONG_PREV),
        (FORK[2].id, Verdict.WRONG_PREV),
    ]


def test_other_author_is_refused() -> None:
    with pytest.raises(RemoteProtocolError) as err:
        ChainState("210102001002").offer(CHAIN[0])
    assert err.value.reason == "wrong_author"


def test_pending_is_bounded_keeping_nearest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain_mod, "MAX_PENDING", 2)
    state = ChainState(AUTHOR)
    for event in (CHAIN[3], CHAIN[4]):
        state.offer(event)
    assert state.offer(CHAIN[5]).verdict is Verdict.GAP  # farther than all held: not kept
    assert sorted(state.pending) == [4, 5]
    state.offer(CHAIN[2])  # nearer: evicts seq 5
    assert sorted(state.pending) == [3, 4]


@settings(max_examples=200, deadline=None)
@given(order=st.permutations(range(6)), dupes=st.lists(st.integers(0, 5), max_size=6))
def test_any_order_with_duplicates_converges(order: list[int], dupes: list[int]) -> None:
    state = ChainState(AUTHOR)
    appended: list[Event] = []
    for index in [*order, *dupes]:
        appended.extend(state.offer(CHAIN[index]).appended)
    assert appended == CHAIN  # each once, in chain order
    assert (state.head_seq, state.head_id, state.pending) == (6, CHAIN[-1].id, {})
    assert state.evidence == [] and state.rejected == []
