"""Taking events into custody: verify, classify, store and route, one transaction per batch.

Theory of operation
-------------------
Events reach a hub three ways: a child pushes its own chain (``chain`` mode: the contiguity
rule of protocol §5, custody acknowledged as the highest contiguous seq), a child hub or a
metro peer relays events of other authors, or the relay job pulls them from the parent's
feed (``relay`` mode: each event stands alone, duplicates and equivocations are found by
``(author, seq)`` uniqueness, custody is acknowledged per id). Whatever the way in, each
event is

1. checked against the federation: a known author, a sender allowed to bring it, a key of
   the author valid at receipt (own chain: the author is online and signing now) or at the
   event's ``ts`` (relayed: history keeps verifying after a key is rotated), a signature;
2. classified against what is held (duplicate, equivocation, gap, wrong prev, accepted);
3. stored with the batch, then routed by its header: delivered to a department here (the
   case fold), into a child's feed, into the relay outbox for the parent or a metro peer.
   It never goes back the way it came.

Everything a batch changes commits in one transaction; only then is the batch acknowledged,
and only then are long-polls and the relay job woken. Refused events get a reject with a
reason; events that are bad in themselves (not a gap, not a duplicate) are also quarantined
for the operator, and equivocations are kept as evidence with an alert.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.engine import Connection

from protocol.case import blobs_named
from protocol.chain import Verdict, classify, rejection
from protocol.config import Federation
from protocol.errors import ProtocolError, RemoteProtocolError
from protocol.event import Event
from protocol.routing import Child, Deliver, Parent, Peer, next_hop
from protocol.sync import Ack, Reject

from ..logs import log
from ..metrics import HubMetrics
from ..storage import HubStore
from ..storage.track import note_receipts_due_txn
from .cases import fold_many_txn
from .receipts import note_txn as note_receipt_txn

Mode = Literal["chain", "relay"]
logger = logging.getLogger("tongban.hub.ingest")


@dataclass
class Effects:
    """What a committed transaction means for the rest of the process."""

    recipients: set[str] = field(default_factory=set)
    relay: bool = False
    received: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    equivocations: int = 0
    feed_entries: int = 0
    # Log lines to write once the transaction committed (a retried transaction logs once).
    notes: list[tuple[str, int, dict[str, object]]] = field(default_factory=list)

    def note(self, event: str, level: int = logging.INFO, **values: object) -> None:
        self.notes.append((event, level, values))


class Router:
    """Stores and routes events inside one transaction.

    The writes are collected and made at :meth:`flush`, a few statements for the whole
    batch (events, their blobs, the case folds, the relay outbox, the feeds), in the
    store's lock order; nothing is acknowledged before the transaction commits.
    """

    def __init__(
        self,
        store: HubStore,
        federation: Federation,
        me: str,
        c: Connection,
        *,
        source: str,
        at: datetime,
    ) -> None:
        self.store = store
        self.federation = federation
        self.me = me
        self.c = c
        self.source = source
        self.at = at
        self.feeds: dict[str, list[str]] = {}
        self.effects = Effects()
        self._events: list[tuple[Event, list[str]]] = []
        self._folds: list[Event] = []
        self._outbox: list[tuple[str, str]] = []
        self._blob_outbox: list[tuple[str, str]] = []
        self._receipts_due: list[tuple[str, str]] = []

    def store_event(self, event: Event, *, mode: str, fold: bool = True) -> None:
        """Insert a new event (at :meth:`flush`) and route it."""
        self._events.append((event, blobs_named(event)))
        self.effects.received[mode] += 1
        self.route(event, fold=fold)

    def route(self, event: Event, *, fold: bool = True) -> None:
        home = self.federation.home
        deliver = False
        for address in event.to:
            try:
                hop = next_hop(home, self.me, address)
            except ProtocolError as exc:
                # Custody stands: the event is authentic. Someone must look at the address.
                self.store.alert_txn(
                    self.c, "no_route", f"{event.id[:16]}/{address}", exc.detail, self.at
                )
                self.effects.note("route.none", logging.WARNING, event_id=event.id[:16], to=address)
                continue
            if isinstance(hop, Deliver):
                deliver = True
            elif isinstance(hop, Child):
                if hop.member != self.source:
                    self.feeds.setdefault(hop.member, []).append(event.id)
            elif isinstance(hop, Parent):
                # This hub's own chain goes up whole, by the chain link (see jobs.py).
                if hop.member != self.source and event.author != self.me:
                    self._enqueue(hop.member, event)
            elif isinstance(hop, Peer) and hop.city != self.source:
                self._enqueue(hop.city, event)
        if fold and event.case is not None and (deliver or event.author == self.me):
            self._folds.append(event)

    def owe_receipt(self, event_id: str, case: str) -> None:
        """Note (at :meth:`flush`) that ``event_id`` is owed a 送达回执."""
        self._receipts_due.append((event_id, case))

    def _enqueue(self, destination: str, event: Event) -> None:
        # Only new events are routed, so the pair is new to the outbox.
        self._outbox.append((destination, event.id))
        self.effects.relay = True
        # The materials follow the event (events first, so a big scan never holds it up).
        for blob in dict.fromkeys(blobs_named(event)):
            self._blob_outbox.append((destination, blob))

    def flush(self) -> Effects:
        """Write what the batch collected; the effects to act on once it commits."""
        self.store.insert_events_txn(self.c, self._events, at=self.at, via=self.source)
        if self._folds:
            outcomes = fold_many_txn(self.store, self.c, self.federation, self._folds, self.at)
            for event, outcome in zip(self._folds, outcomes, strict=True):
                note_receipt_txn(self, event, outcome)  # 送达回执 owed (hub.services.receipts)
                if outcome.rejected is not None:
                    self.effects.note(
                        "case.fold_rejected",
                        logging.WARNING,
                        case=event.case,
                        event_id=event.id[:16],
                        type=event.type,
                        reason=outcome.rejected.reason,
                    )
        note_receipts_due_txn(self.c, self._receipts_due, self.at)
        self.store.enqueue_many_txn(self.c, self._outbox, self._blob_outbox, self.at)
        entries = sum(len(ids) for ids in self.feeds.values())
        self.effects.recipients.update(self.store.append_feed_txn(self.c, self.feeds))
        self.effects.feed_entries += entries
        self._events, self._folds, self._outbox, self._blob_outbox = [], [], [], []
        self._receipts_due = []
        self.feeds = {}
        return self.effects


@dataclass(frozen=True)
class Offered:
    """An event of a batch with its position in the batch."""

    index: int
    event: Event


@dataclass(frozen=True)
class Undecodable:
    """A batch item that is not an event, with its reject and raw bytes."""

    reject: Reject
    raw: bytes


@dataclass(frozen=True)
class Intake:
    """The answer to a batch and what committing it means."""

    ack: Ack
    effects: Effects


ModeOf = Callable[[Event], Mode]


@dataclass(frozen=True)
class Screened:
    """A batch checked against the federation before its transaction: each event's mode
    (or why it is refused) and, for those that passed, a good signature. A refused event
    whose mode was known keeps it: its author's custody is still reported."""

    passed: tuple[tuple[Offered, Mode], ...]
    refused: tuple[tuple[Offered, Mode | None, ProtocolError], ...] = ()


def screen(
    federation: Federation, offered: Sequence[Offered], mode_of: ModeOf, at: datetime
) -> Screened:
    """Step 1 of the module docstring for each event: a known author, a sender allowed to
    bring it, a key valid at receipt (own chain) or at the event's ``ts`` (relayed), a
    signature. Needs no database, so it runs before the transaction: no chain head is locked
    while signatures are checked. (Checking them on worker threads gained nothing: the event
    loop holds the GIL, and a thread waits for it after every verification.)"""
    passed: list[tuple[Offered, Mode]] = []
    refused: list[tuple[Offered, Mode | None, ProtocolError]] = []
    for item in offered:
        event = item.event
        mode: Mode | None = None
        try:
            if federation.member(event.author) is None:
                raise RemoteProtocolError(
                    "unknown_author", f"{event.author} is not a member of the federation"
                )
            mode = mode_of(event)
            # Own chain: the key must be good now. Relayed: good when the event was signed.
            when = at if mode == "chain" else event.at
            event.verify(federation.member_key(event.author, event.sig.kid, when))
        except ProtocolError as exc:
            refused.append((item, mode, exc))
            continue
        passed.append((item, mode))
    return Screened(tuple(passed), tuple(refused))


def ingest_txn(
    store: HubStore,
    federation: Federation,
    me: str,
    c: Connection,
    *,
    source: str,
    screened: Screened,
    undecodable: Sequence[Undecodable] = (),
    at: datetime,
    label: str | None = None,
) -> Intake:
    """Classify, store and route a screened batch (see the module docstring)."""
    router = Router(store, federation, me, c, source=source, at=at)
    rejects: list[Reject] = []

    def quarantine(reject: Reject, raw: bytes) -> None:
        router.effects.quarantined[reject.reason] += 1
        fresh = store.quarantine_txn(
            c,
            reason=reject.reason,
            detail=reject.detail,
            raw=raw,
            pusher=source,
            at=at,
            event_id=reject.id,
            author=reject.author,
            seq=reject.seq,
        )
        if fresh:
            slot = f"{reject.author or '?'}/{reject.seq or '?'}"
            store.alert_txn(c, "quarantine", f"{source}/{slot}/{reject.reason}", reject.detail, at)
            router.effects.note(
                "push.quarantined",
                logging.WARNING,
                pusher=source,
                reason=reject.reason,
                author=reject.author,
                seq=reject.seq,
            )

    def refuse(error: ProtocolError, item: Offered, *, quarantined: bool) -> None:
        reject = Reject.of(error, event=item.event, index=item.index)
        rejects.append(reject)
        if quarantined:
            quarantine(reject, item.event.wire_bytes)

    for bad in undecodable:
        rejects.append(bad.reject)
        quarantine(bad.reject, bad.raw)
    for item, _, error in screened.refused:
        refuse(error, item, quarantined=True)

    modes: dict[int, Mode] = {item.index: mode for item, mode in screened.passed}
    # Chain heads are locked in one sorted pass.
    known = [*screened.passed, *((item, mode) for item, mode, _ in screened.refused)]
    chain_authors = sorted({i.event.author for i, mode in known if mode == "chain"})
    locked = store.chain_heads_txn(c, chain_authors)
    heads: dict[str, tuple[int, str | None]] = {
        author: locked.get(author, (0, None)) for author in chain_authors
    }
    moved: set[str] = set()
    held: list[str] = []

    verified = sorted(
        (item for item, _ in screened.passed),
        key=lambda i: (i.event.author, i.event.seq, i.index),
    )
    # What is held at each slot, read once; events of this batch join it as they are stored.
    held_ids = store.held_ids_txn(c, [(i.event.author, i.event.seq) for i in verified])

    for item in verified:
        event, mode = item.event, modes[item.index]
        held_id = held_ids.get((event.author, event.seq))
        if mode == "chain":
            head_seq, head_id = heads[event.author]
            verdict = classify(head_seq, head_id, event, held_id if event.seq <= head_seq else None)
            if verdict is Verdict.ACCEPTED and held_id is not None and held_id != event.id:
                verdict = Verdict.EQUIVOCATION  # a relayed copy of another event sits there
        elif held_id is None:
            verdict = Verdict.ACCEPTED
        else:
            verdict = Verdict.DUPLICATE if held_id == event.id else Verdict.EQUIVOCATION

        if verdict is Verdict.ACCEPTED:
            if held_id is None:
                router.store_event(event, mode=label or mode)
                held_ids[(event.author, event.seq)] = event.id
            if mode == "chain":
                heads[event.author] = (event.seq, event.id)
                moved.add(event.author)
            else:
                held.append(event.id)
        elif verdict is Verdict.DUPLICATE:
            if mode == "relay":
                held.append(event.id)
        elif verdict is Verdict.EQUIVOCATION:
            assert held_id is not None
            router.effects.equivocations += 1
            if store.equivocation_txn(
                c,
                author=event.author,
                seq=event.seq,
                held_id=held_id,
                other=event,
                pusher=source,
                at=at,
            ):
                store.alert_txn(
                    c,
                    "equivocation",
                    f"{event.author}/{event.seq}",
                    f"{held_id} and {event.id}",
                    at,
                )
                router.effects.note(
                    "push.equivocation",
                    logging.ERROR,
                    author=event.author,
                    seq=event.seq,
                    pusher=source,
                )
            refuse(
                RemoteProtocolError(
                    "equivocation",
                    f"{event.author} already signed another event with seq {event.seq}",
                ),
                item,
                quarantined=False,  # kept as evidence instead
            )
        else:
            error = rejection(verdict, event, heads[event.author][0] if mode == "chain" else 0)
            refuse(error, item, quarantined=verdict is not Verdict.GAP)

    moved_heads: dict[str, tuple[int, str]] = {}
    for author in moved:
        seq, event_id = heads[author]
        assert event_id is not None
        moved_heads[author] = (seq, event_id)
    store.set_chain_heads_txn(c, moved_heads)
    effects = router.flush()
    custody = {author: heads[author][0] for author in chain_authors}
    ack = Ack(
        custody=custody,
        rejects=tuple(sorted(rejects, key=_reject_order)),
        held=tuple(dict.fromkeys(held)),
    )
    return Intake(ack, effects)


def _reject_order(reject: Reject) -> tuple[int, str, int]:
    return (
        -1 if reject.index is None else reject.index,
        reject.author or "",
        reject.seq or 0,
    )


def record_effects(metrics: HubMetrics, effects: Effects) -> None:
    """Count a committed intake in the hub's metrics and write its log lines."""
    for event, level, values in effects.notes:
        log(logger, event, level, **values)
    for mode, n in effects.received.items():
        metrics.events_received.labels(mode=mode).inc(n)
    for reason, n in effects.quarantined.items():
        metrics.events_quarantined.labels(reason=reason).inc(n)
    if effects.equivocations:
        metrics.equivocations.inc(effects.equivocations)
    if effects.feed_entries:
        metrics.feed_entries.inc(effects.feed_entries)
