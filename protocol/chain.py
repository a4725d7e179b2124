"""Per-author hash chains (DESIGN.md §2).

Each author numbers its events ``seq`` = 1, 2, 3, … and links each to the id of the one before
(``prev``). A receiver accepts seq *n* only after *n - 1*. Classification of an offered event
against what is held:

=================  ==================================================================
``accepted``       seq = head + 1 and prev = head id: append
``duplicate``      the same id is already held at that seq: idempotent, nothing to do
``gap``            seq > head + 1: wait for the missing seqs (the sender resends)
``equivocation``   a different event is held at that seq: reject, keep both as evidence
``wrong_prev``     seq = head + 1 but prev is not the head id: reject
=================  ==================================================================

:func:`classify` is the rule as a pure function of (head, the id held at the event's seq), so a
store can apply it with two indexed lookups. :class:`ChainState` is the in-memory form that also
buffers out-of-order arrivals, so any order of the same honest events converges to one state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .errors import RemoteProtocolError
from .event import Event

MAX_PENDING = 1024


class Verdict(enum.Enum):
    """What a receiver does with an offered event."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    GAP = "gap"
    EQUIVOCATION = "equivocation"
    WRONG_PREV = "wrong_prev"


def classify(head_seq: int, head_id: str | None, event: Event, held_id: str | None) -> Verdict:
    """Classify ``event`` given the author's head and the id held at ``event.seq`` (if any)."""
    if event.seq <= head_seq:
        return Verdict.DUPLICATE if held_id == event.id else Verdict.EQUIVOCATION
    if event.seq > head_seq + 1:
        return Verdict.GAP
    return Verdict.ACCEPTED if event.prev == head_id else Verdict.WRONG_PREV


def rejection(verdict: Verdict, event: Event, head_seq: int) -> RemoteProtocolError:
    """The error to report for a verdict that is not accepted or duplicate."""
    detail = {
        Verdict.GAP: f"seq {event.seq} of {event.author} waits for seq {head_seq + 1}",
        Verdict.EQUIVOCATION: f"{event.author} already signed another event with seq {event.seq}",
        Verdict.WRONG_PREV: f"prev of {event.author} seq {event.seq} is not the id of {head_seq}",
    }[verdict]
    return RemoteProtocolError(verdict.value, detail)


@dataclass(frozen=True)
class Equivocation:
    """Evidence: two different events signed by one author with one seq."""

    author: str
    seq: int
    held_id: str
    other: Event


@dataclass(frozen=True)
class Offer:
    """Result of :meth:`ChainState.offer`: the verdict and every event now appended, in order."""

    verdict: Verdict
    appended: tuple[Event, ...] = ()


@dataclass
class ChainState:
    """One author's chain as a receiver holds it."""

    author: str
    head_seq: int = 0
    head_id: str | None = None
    ids: dict[int, str] = field(default_factory=dict)
    pending: dict[int, Event] = field(default_factory=dict)
    evidence: list[Equivocation] = field(default_factory=list)
    rejected: list[tuple[Event, Verdict]] = field(default_factory=list)

    def offer(self, event: Event) -> Offer:
        """Take one event in any order; buffers gaps, appends what now chains."""
        if event.author != self.author:
            raise RemoteProtocolError(
                "wrong_author", f"{event.author} offered to chain of {self.author}"
            )
        verdict = classify(self.head_seq, self.head_id, event, self.ids.get(event.seq))
        if verdict is Verdict.EQUIVOCATION:
            self.evidence.append(Equivocation(self.author, event.seq, self.ids[event.seq], event))
        elif verdict is Verdict.WRONG_PREV:
            self.rejected.append((event, verdict))
        elif verdict is Verdict.GAP:
            return Offer(self._hold(event))
        if verdict is not Verdict.ACCEPTED:
            return Offer(verdict)
        appended = [event]
        self._append(event)
        while (nxt := self.pending.pop(self.head_seq + 1, None)) is not None:
            if nxt.prev != self.head_id:
                self.rejected.append((nxt, Verdict.WRONG_PREV))
                break
            self._append(nxt)
            appended.append(nxt)
        return Offer(Verdict.ACCEPTED, tuple(appended))

    def _hold(self, event: Event) -> Verdict:
        held = self.pending.get(event.seq)
        if held is not None:
            if held.id == event.id:
                return Verdict.DUPLICATE
            self.evidence.append(Equivocation(self.author, event.seq, held.id, event))
            return Verdict.EQUIVOCATION
        if len(self.pending) >= MAX_PENDING:
            # Bounded memory: keep the nearest seqs; the sender resends the rest later.
            farthest = max(self.pending)
            if event.seq > farthest:
                return Verdict.GAP
            del self.pending[farthest]
        self.pending[event.seq] = event
        return Verdict.GAP

    def _append(self, event: Event) -> None:
        self.head_seq = event.seq
        self.head_id = event.id
        self.ids[event.seq] = event.id
