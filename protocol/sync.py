"""Push and feed messages and the client side of pushing (DESIGN.md §4), sans-I/O.

Wire messages
-------------
:class:`PushBatch` (``POST /v1/push`` body), :class:`Ack` (its answer), :class:`Reject` (one
refused event inside an ack) and :class:`FeedPage` (``GET /v1/feed`` body) are frozen
dataclasses validated in their constructors, so an invalid one cannot exist. ``to_dict()``
gives the JSON object; ``from_dict()`` reads one received from a peer and raises
:class:`~protocol.errors.RemoteProtocolError` with a machine-readable reason. A batch or page
with one malformed event does not fail as a whole: :meth:`PushBatch.decode` and
:meth:`FeedPage.decode` return the good events plus one :class:`Reject` per bad one, so the
receiver quarantines that event and keeps the rest.

Theory of operation of :class:`PushSession`
-------------------------------------------
The session is the sender's half of pushing. It owns no socket and no clock: the caller
asks :meth:`PushSession.next_batch` for a batch, sends it however it likes, and reports
back with :meth:`PushSession.on_ack` or :meth:`PushSession.on_failure`. One batch is in
flight at a time; the transitions are the table ``_TRANSITIONS``.

* **Custody** (保管). The receiver acknowledges, per author, the highest contiguous seq it
  holds *durably*. Everything of that author up to that seq may be forgotten by the
  sender, whether or not it was in the batch just sent. Custody only grows: a lower head
  than one already known is ignored.
* **Idempotent resend.** Event ids make a resend harmless, so when an ack is lost (network
  error, 5xx, timeout) the whole batch simply goes back to the queue. Nothing leaves the
  session except through custody or an operator's :meth:`PushSession.drop`.
* **Chain order.** The receiver accepts seq n of an author only after n-1, so per author
  the session sends only the contiguous run that starts just after the known custody head
  (or at the lowest queued seq of an author whose head it has never been told). Events
  beyond a local gap wait in the backlog until the gap is filled. Batches are ordered by
  (author, seq); when an author's next event does not fit the byte budget, that author
  stops and smaller events of later authors still fill the batch, so a big record never
  holds back small ones beyond the batch bounds. An event bigger than the byte budget on
  its own travels alone.
* **Quarantine** (隔离). A rejected event is set aside with its reason and stays visible
  until an operator calls :meth:`PushSession.release` (retry, e.g. after a config update)
  or :meth:`PushSession.drop`. It blocks only the *later* seqs of its own author, which
  the receiver could not accept anyway; every other author keeps flowing. A reject with
  reason ``gap`` for an event behind a missing seq is not the event's fault: it goes back
  to the queue and waits. A reject for one exact event wins over a custody head that
  covers its seq (the receiver holds a *different* event there: an equivocation).

Relayed traffic (``PushSession(relay=True)``)
---------------------------------------------
The chain rule above holds only on the author's own link (a village node pushing its own
chain to its district hub). A hub forwards upward only the events addressed outside its
subtree, and a city hub forwards to a metro peer only the events addressed there, so the
next hop sees sparse seqs of each author (3, 7, 12). There the receiver verifies each event
on its own, detects equivocation by (author, seq) uniqueness, and acknowledges custody per
event id in :attr:`Ack.held`. A relay session therefore:

* sends an author's queued events in (author, seq) order with no gap blocking, and lets a
  smaller later event of the same author pass one that does not fit the byte budget;
* takes an event into custody when its id is in ``ack.held``, or when its seq is at or
  below a custody head the receiver chose to send (it need not send any);
* quarantines every rejected event, ``gap`` included (a relay receiver has no reason to
  send one), and a quarantined event blocks nothing: later seqs are independent;
* requires the ack to say something of every author in the batch, through custody, held or
  a reject (in chain mode: custody).

A relay session starts with no custody heads and forgets an event once the peer holds it,
so it cannot tell a later :meth:`PushSession.add` of that same event from a new one: the
caller's outbox must not offer it again (if it does, the resend is harmless, the receiver
deduplicates by id). ``ack.held`` is honoured in chain mode too, as extra custody.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from .encoding import MAX_SAFE_INT
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .event import ID_RE, Event
from .ids import MEMBER_RE

MAX_BATCH_EVENTS = 200
MAX_BATCH_BYTES = 2 * 1024 * 1024
MAX_CUSTODY_AUTHORS = 10_000
MAX_DETAIL_CHARS = 500
MAX_CURSOR_CHARS = 200
REASON_GAP = "gap"
REASON_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
CURSOR_RE = re.compile(rf"[A-Za-z0-9._~-]{{1,{MAX_CURSOR_CHARS}}}")
REJECT_FIELDS = frozenset({"id", "author", "seq", "reason", "detail", "index"})
ACK_FIELDS = frozenset({"custody", "rejects"})
ACK_OPTIONAL_FIELDS = frozenset({"held"})
MAX_HELD_IDS = MAX_BATCH_EVENTS  # an ack answers one batch: at most one id per event
BATCH_FIELDS = frozenset({"events"})
PAGE_FIELDS = frozenset({"events", "cursor", "more"})


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def _remote(exc: ProtocolError, where: str = "") -> RemoteProtocolError:
    return RemoteProtocolError(exc.reason, _clip(f"{where}{exc.detail}"))


def _is_member(value: object) -> bool:
    return isinstance(value, str) and MEMBER_RE.fullmatch(value) is not None


def _is_seq(value: object, low: int = 1) -> bool:
    return type(value) is int and low <= value <= MAX_SAFE_INT


def _check_events(events: object, bad: str, too_large: str) -> None:
    if not isinstance(events, tuple) or not all(isinstance(e, Event) for e in events):
        raise LocalProtocolError(bad, "events must be a tuple of Event")
    if len(events) > MAX_BATCH_EVENTS:
        raise LocalProtocolError(too_large, f"{len(events)} events exceed {MAX_BATCH_EVENTS}")
    size = sum(len(e.wire_bytes) for e in events)
    if size > MAX_BATCH_BYTES:
        raise LocalProtocolError(too_large, f"{size} bytes of events exceed {MAX_BATCH_BYTES}")


def _check_custody(custody: object, reason: str, limit: int | None) -> dict[str, int]:
    if not isinstance(custody, Mapping):
        raise LocalProtocolError(reason, "custody must map author to seq")
    if limit is not None and len(custody) > limit:
        raise LocalProtocolError(reason, f"custody lists more than {limit} authors")
    for author, head in custody.items():
        if not _is_member(author):
            raise LocalProtocolError(reason, f"custody: {str(author)[:40]!r} is not a member id")
        if not _is_seq(head, low=0):
            raise LocalProtocolError(
                reason, f"custody of {author}: {str(head)[:20]!r} is not a seq"
            )
    return dict(custody)


@dataclass(frozen=True)
class Reject:
    """One event the receiver refused, with a machine-readable reason.

    ``id``/``author``/``seq`` identify the event as far as the receiver could read it;
    ``index`` is its position in the batch (null when unknown).
    """

    id: str | None
    author: str | None
    seq: int | None
    reason: str
    detail: str
    index: int | None

    def __post_init__(self) -> None:
        if self.id is not None and not (isinstance(self.id, str) and ID_RE.fullmatch(self.id)):
            raise LocalProtocolError("bad_reject", "id must be an event id or null")
        if self.author is not None and not _is_member(self.author):
            raise LocalProtocolError("bad_reject", "author must be a member id or null")
        if self.seq is not None and not _is_seq(self.seq):
            raise LocalProtocolError("bad_reject", "seq must be a positive integer or null")
        if not isinstance(self.reason, str) or not REASON_RE.fullmatch(self.reason):
            raise LocalProtocolError("bad_reject", "reason must be a snake_case code")
        if not isinstance(self.detail, str) or len(self.detail) > MAX_DETAIL_CHARS:
            raise LocalProtocolError("bad_reject", f"detail must be text of <= {MAX_DETAIL_CHARS}")
        if self.index is not None and not (
            type(self.index) is int and 0 <= self.index < MAX_BATCH_EVENTS
        ):
            raise LocalProtocolError("bad_reject", "index must be a batch position or null")

    @classmethod
    def of(
        cls, error: ProtocolError, *, event: Event | None = None, index: int | None = None
    ) -> Reject:
        """The reject a receiver sends for ``event`` (or batch position ``index``) failing."""
        return cls(
            id=event.id if event else None,
            author=event.author if event else None,
            seq=event.seq if event else None,
            reason=error.reason,
            detail=_clip(error.detail),
            index=index,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "author": self.author,
            "seq": self.seq,
            "reason": self.reason,
            "detail": self.detail,
            "index": self.index,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> Reject:
        """Decode a received reject; raises ``bad_reject``."""
        if not isinstance(obj, dict) or set(obj) != REJECT_FIELDS:
            raise RemoteProtocolError("bad_reject", f"a reject has exactly {sorted(REJECT_FIELDS)}")
        try:
            return cls(**obj)
        except LocalProtocolError as exc:
            raise _remote(exc) from None


def _undecodable(item: object, reason: str, detail: str, index: int) -> Reject:
    """A reject for a raw event that did not decode, naming author/seq when they read well."""
    raw = item if isinstance(item, dict) else {}
    author, seq = raw.get("author"), raw.get("seq")
    return Reject(
        id=None,
        author=author if _is_member(author) else None,
        seq=seq if _is_seq(seq) else None,
        reason=reason,
        detail=_clip(detail),
        index=index,
    )


def _decode_events(raw: list[Any], too_large: str) -> tuple[list[Event], list[Reject]]:
    if len(raw) > MAX_BATCH_EVENTS:
        raise RemoteProtocolError(too_large, f"{len(raw)} events exceed {MAX_BATCH_EVENTS}")
    good: list[Event] = []
    rejects: list[Reject] = []
    size = 0
    for index, item in enumerate(raw):
        try:
            event = Event.from_dict(item)
        except ProtocolError as exc:
            rejects.append(_undecodable(item, exc.reason, exc.detail, index))
            continue
        except (TypeError, ValueError, KeyError) as exc:
            # A decoder bug must cost one event, never the whole batch.
            rejects.append(_undecodable(item, "bad_event", f"{type(exc).__name__}: {exc}", index))
            continue
        size += len(event.wire_bytes)
        if size > MAX_BATCH_BYTES:
            raise RemoteProtocolError(too_large, f"events exceed {MAX_BATCH_BYTES} bytes")
        good.append(event)
    return good, rejects


def _first_reject(rejects: list[Reject]) -> RemoteProtocolError:
    first = rejects[0]
    return RemoteProtocolError(first.reason, _clip(f"events[{first.index}]: {first.detail}"))


@dataclass(frozen=True)
class PushBatch:
    """The body of ``POST /v1/push``: ``{"events": [...]}``, at most 200 events and 2 MiB."""

    events: tuple[Event, ...]

    def __post_init__(self) -> None:
        _check_events(self.events, "bad_batch", "batch_too_large")

    @property
    def size(self) -> int:
        """Sum of the events' wire bytes (what the byte bound counts)."""
        return sum(len(e.wire_bytes) for e in self.events)

    def to_dict(self) -> dict[str, Any]:
        return {"events": [e.to_dict() for e in self.events]}

    @classmethod
    def decode(cls, obj: Any) -> tuple[list[Event], list[Reject]]:
        """Good events and one reject per undecodable event (receiver side).

        Only a non-object, a missing or non-list ``events``, or the size bounds fail the
        whole batch.
        """
        if not isinstance(obj, dict) or set(obj) != BATCH_FIELDS:
            raise RemoteProtocolError("bad_batch", 'a push batch is {"events": [...]}')
        raw = obj["events"]
        if not isinstance(raw, list):
            raise RemoteProtocolError("bad_batch", "events must be a list")
        return _decode_events(raw, "batch_too_large")

    @classmethod
    def from_dict(cls, obj: Any) -> PushBatch:
        """Strict decode: any bad event fails the batch with that event's reason."""
        events, rejects = cls.decode(obj)
        if rejects:
            raise _first_reject(rejects)
        return cls(tuple(events))


@dataclass(frozen=True)
class Ack:
    """The answer to a push: custody heads per author, held event ids, rejected events.

    ``custody[author]`` is the highest contiguous seq the receiver holds durably (0: none);
    the sender may forget everything of that author up to it. ``held`` names events taken
    into custody one by one (relayed traffic, sparse seqs): distinct event ids, at most
    :data:`MAX_HELD_IDS`. On the wire ``held`` may be absent (empty).
    """

    custody: Mapping[str, int] = field(hash=False)
    rejects: tuple[Reject, ...] = ()
    held: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        heads = _check_custody(self.custody, "bad_ack", MAX_CUSTODY_AUTHORS)
        object.__setattr__(self, "custody", MappingProxyType(heads))
        if not isinstance(self.rejects, tuple) or not all(
            isinstance(r, Reject) for r in self.rejects
        ):
            raise LocalProtocolError("bad_ack", "rejects must be a tuple of Reject")
        if len(self.rejects) > MAX_BATCH_EVENTS:
            raise LocalProtocolError("bad_ack", f"more than {MAX_BATCH_EVENTS} rejects")
        if not isinstance(self.held, tuple) or len(self.held) > MAX_HELD_IDS:
            raise LocalProtocolError("bad_ack", f"held must be a tuple of <= {MAX_HELD_IDS} ids")
        for i, event_id in enumerate(self.held):
            if not isinstance(event_id, str) or not ID_RE.fullmatch(event_id):
                raise LocalProtocolError("bad_ack", f"held[{i}] is not an event id")
        if len(set(self.held)) != len(self.held):
            raise LocalProtocolError("bad_ack", "held names an event twice")

    def to_dict(self) -> dict[str, Any]:
        return {
            "custody": dict(self.custody),
            "held": list(self.held),
            "rejects": [r.to_dict() for r in self.rejects],
        }

    @classmethod
    def from_dict(cls, obj: Any) -> Ack:
        """Decode a received ack; raises ``bad_ack`` or ``bad_reject``."""
        if not (
            isinstance(obj, dict) and ACK_FIELDS <= set(obj) <= ACK_FIELDS | ACK_OPTIONAL_FIELDS
        ):
            raise RemoteProtocolError(
                "bad_ack", 'an ack is {"custody": {...}, "held": [...], "rejects": [...]}'
            )
        held = obj.get("held", [])
        if not isinstance(held, list) or len(held) > MAX_HELD_IDS:
            raise RemoteProtocolError("bad_ack", f"held must be a list of <= {MAX_HELD_IDS} ids")
        raw = obj["rejects"]
        if not isinstance(raw, list) or len(raw) > MAX_BATCH_EVENTS:
            raise RemoteProtocolError("bad_ack", f"rejects must be a list of <= {MAX_BATCH_EVENTS}")
        rejects: list[Reject] = []
        for i, item in enumerate(raw):
            try:
                rejects.append(Reject.from_dict(item))
            except RemoteProtocolError as exc:
                raise _remote(exc, f"rejects[{i}]: ") from None
        try:
            return cls(obj["custody"], tuple(rejects), tuple(held))
        except LocalProtocolError as exc:
            raise _remote(exc) from None


@dataclass(frozen=True)
class FeedPage:
    """The body of ``GET /v1/feed``: events after the caller's cursor, a new cursor, ``more``.

    The cursor is opaque to the client: at most 200 characters of ``[A-Za-z0-9._~-]``, safe
    to put in a query string unescaped.
    """

    events: tuple[Event, ...]
    cursor: str
    more: bool

    def __post_init__(self) -> None:
        _check_events(self.events, "bad_feed_page", "page_too_large")
        if not isinstance(self.cursor, str) or not CURSOR_RE.fullmatch(self.cursor):
            raise LocalProtocolError(
                "bad_cursor", f"cursor must be 1-{MAX_CURSOR_CHARS} of [A-Za-z0-9._~-]"
            )
        if type(self.more) is not bool:
            raise LocalProtocolError("bad_feed_page", "more must be true or false")

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": [e.to_dict() for e in self.events],
            "cursor": self.cursor,
            "more": self.more,
        }

    @classmethod
    def decode(cls, obj: Any) -> tuple[FeedPage, list[Reject]]:
        """The page with its good events, and one reject per undecodable event."""
        if not isinstance(obj, dict) or set(obj) != PAGE_FIELDS:
            raise RemoteProtocolError(
                "bad_feed_page", f"a feed page has exactly {sorted(PAGE_FIELDS)}"
            )
        raw = obj["events"]
        if not isinstance(raw, list):
            raise RemoteProtocolError("bad_feed_page", "events must be a list")
        try:
            cls((), obj["cursor"], obj["more"])
        except LocalProtocolError as exc:
            raise _remote(exc) from None
        events, rejects = _decode_events(raw, "page_too_large")
        return cls(tuple(events), obj["cursor"], obj["more"]), rejects

    @classmethod
    def from_dict(cls, obj: Any) -> FeedPage:
        """Strict decode: any bad event fails the page with that event's reason."""
        page, rejects = cls.decode(obj)
        if rejects:
            raise _first_reject(rejects)
        return page


@dataclass(frozen=True)
class AckOutcome:
    """What :meth:`PushSession.on_ack` did.

    ``in_custody``: events forgotten because the receiver holds them; ``quarantined``: events
    set aside with their reject; ``returned``: events of the batch put back in the queue.
    """

    in_custody: list[Event] = field(default_factory=list)
    quarantined: list[tuple[Event, Reject]] = field(default_factory=list)
    returned: list[Event] = field(default_factory=list)


class _State(Enum):
    IDLE = "idle"
    SENDING = "sending"


class _Input(Enum):
    SEND = "send"
    ACK = "ack"
    FAILURE = "failure"


# (state, input) -> next state. Anything else is the caller's mistake.
_TRANSITIONS: dict[tuple[_State, _Input], _State] = {
    (_State.IDLE, _Input.SEND): _State.SENDING,
    (_State.SENDING, _Input.ACK): _State.IDLE,
    (_State.SENDING, _Input.FAILURE): _State.IDLE,
}


def _check_limit(name: str, value: object, top: int) -> None:
    if type(value) is not int or not 1 <= value <= top:
        raise LocalProtocolError("bad_limit", f"{name} must be an integer in 1..{top}")


def _by_slot(event: Event) -> tuple[str, int]:
    return (event.author, event.seq)


class PushSession:
    """The sender's half of ``POST /v1/push`` for one peer (see the module docstring).

    ``custody`` restores persisted heads (author -> highest seq the peer holds). ``relay``
    selects relayed traffic: events are independent, acknowledged per id (``ack.held``).
    """

    def __init__(self, custody: Mapping[str, int] | None = None, *, relay: bool = False) -> None:
        if type(relay) is not bool:
            raise LocalProtocolError("bad_relay", "relay must be true or false")
        self._relay = relay
        self._heads = _check_custody(custody or {}, "bad_custody", None)
        self._state = _State.IDLE
        self._in_flight: PushBatch | None = None
        self._queued: dict[str, dict[int, Event]] = {}
        self._quarantined: dict[str, dict[int, tuple[Event, Reject]]] = {}
        self._slots: dict[tuple[str, int], Event] = {}
        self._held: dict[str, Event] = {}
        self._bytes = 0

    # -- state table -------------------------------------------------------------------

    def _transition(self, what: _Input) -> None:
        try:
            self._state = _TRANSITIONS[(self._state, what)]
        except KeyError:
            raise LocalProtocolError(
                "no_batch_in_flight", f"{what.value} while {self._state.value}"
            ) from None

    # -- bookkeeping -------------------------------------------------------------------

    def _queue(self, event: Event) -> None:
        self._queued.setdefault(event.author, {})[event.seq] = event

    def _forget(self, event: Event) -> None:
        del self._held[event.id]
        del self._slots[_by_slot(event)]
        self._bytes -= len(event.wire_bytes)

    def _unqueue(self, event: Event) -> None:
        queue = self._queued[event.author]
        del queue[event.seq]
        if not queue:
            del self._queued[event.author]

    def _find_quarantined(self, event_id: str) -> Event:
        event = self._held.get(event_id)
        if event is None or event.seq not in self._quarantined.get(event.author, {}):
            raise LocalProtocolError(
                "not_quarantined", f"{str(event_id)[:64]!r} is not quarantined"
            )
        return event

    def _lift(self, event: Event) -> None:
        box = self._quarantined[event.author]
        del box[event.seq]
        if not box:
            del self._quarantined[event.author]

    def _blocked(self, event: Event) -> bool:
        return any(seq < event.seq for seq in self._quarantined.get(event.author, ()))

    def _is_queued(self, event: Event) -> bool:
        return self._queued.get(event.author, {}).get(event.seq) is event

    def _runnable(self, author: str) -> Iterator[Event]:
        """The events of ``author`` that the peer can accept now, in seq order.

        Relay: all of them. Chain: the contiguous run after the head, up to a quarantine.
        """
        queue = self._queued[author]
        if self._relay:
            yield from (queue[seq] for seq in sorted(queue))
            return
        head = self._heads.get(author)
        seq = min(queue) if head is None else head + 1
        box = self._quarantined.get(author)
        stop = min(box) if box else MAX_SAFE_INT + 1
        while seq < stop and seq in queue:
            yield queue[seq]
            seq += 1

    # -- inputs ------------------------------------------------------------------------

    def add(self, event: Event) -> bool:
        """Queue ``event``; False when it is already held or already in the peer's custody."""
        if not isinstance(event, Event):
            raise LocalProtocolError("bad_event", "add() takes an Event")
        if event.id in self._held or event.seq <= self._heads.get(event.author, 0):
            return False
        other = self._slots.get(_by_slot(event))
        if other is not None:
            raise LocalProtocolError(
                "equivocation",
                f"{event.author} seq {event.seq} is already {other.id}, not {event.id}",
            )
        self._held[event.id] = event
        self._slots[_by_slot(event)] = event
        self._bytes += len(event.wire_bytes)
        self._queue(event)
        return True

    def next_batch(
        self, max_events: int = MAX_BATCH_EVENTS, max_bytes: int = MAX_BATCH_BYTES
    ) -> PushBatch | None:
        """The next batch to send, or None when nothing can go (or a batch is in flight)."""
        _check_limit("max_events", max_events, MAX_BATCH_EVENTS)
        _check_limit("max_bytes", max_bytes, MAX_BATCH_BYTES)
        if self._state is _State.SENDING:
            return None
        chosen: list[Event] = []
        size = 0
        for author in sorted(self._queued):
            for event in self._runnable(author):
                n = len(event.wire_bytes)
                if len(chosen) == max_events:
                    break
                if chosen and size + n > max_bytes:
                    if self._relay:
                        continue  # independent events: a smaller later one may still fit
                    break  # this author stops here; later authors may still fit
                chosen.append(event)
                size += n
        if not chosen:
            return None
        self._transition(_Input.SEND)
        for event in chosen:
            self._unqueue(event)
        self._in_flight = PushBatch(tuple(chosen))
        return self._in_flight

    def on_ack(self, ack: Ack) -> AckOutcome:
        """Apply the peer's answer to the batch in flight."""
        batch = self._in_flight
        matched: dict[str, Reject] = {}
        if batch is not None:
            matched = self._match(batch, ack.rejects)
            self._check_answered(batch, ack, matched)
        self._transition(_Input.ACK)
        assert batch is not None
        self._in_flight = None
        for author, head in ack.custody.items():
            self._heads[author] = max(head, self._heads.get(author, 0))
        held = set(ack.held)
        taken: dict[str, Event] = {}  # queued events (not in the batch) the peer now holds
        for author in sorted(ack.custody.keys() & self._queued.keys()):
            head = self._heads[author]
            for seq in sorted(s for s in self._queued[author] if s <= head):
                event = self._queued[author][seq]
                taken[event.id] = event
        for event_id in ack.held:
            known = self._held.get(event_id)
            if known is not None and self._is_queued(known):
                taken[event_id] = known
        outcome = AckOutcome(in_custody=list(taken.values()))
        for event in outcome.in_custody:
            self._unqueue(event)
            self._forget(event)
        for event in batch.events:  # (author, seq) order: an earlier quarantine blocks later
            head = self._heads.get(event.author, 0)
            reject = matched.get(event.id)
            if reject is None and (event.seq <= head or event.id in held):
                self._forget(event)
                outcome.in_custody.append(event)
            elif reject is None or self._not_its_fault(event, reject, head):
                self._queue(event)
                outcome.returned.append(event)
            else:
                self._quarantined.setdefault(event.author, {})[event.seq] = (event, reject)
                outcome.quarantined.append((event, reject))
        outcome.in_custody.sort(key=_by_slot)
        return outcome

    def _not_its_fault(self, event: Event, reject: Reject, head: int) -> bool:
        """Chain mode: a reject the event waits out in the queue instead of quarantine."""
        if self._relay:
            return False  # independent events: every reject is the event's own
        return self._blocked(event) or (reject.reason == REASON_GAP and event.seq > head + 1)

    def _check_answered(self, batch: PushBatch, ack: Ack, matched: dict[str, Reject]) -> None:
        """The ack must say something of every batch author (chain: custody; relay: any)."""
        answered = set(ack.custody)
        if self._relay:
            named = matched.keys() | set(ack.held)
            answered.update(e.author for e in batch.events if e.id in named)
        missing = sorted({e.author for e in batch.events} - answered)
        if missing:
            where = "custody, held and rejects" if self._relay else "custody"
            raise RemoteProtocolError("bad_ack", f"{where} skip batch authors {missing[:5]}")

    @staticmethod
    def _match(batch: PushBatch, rejects: tuple[Reject, ...]) -> dict[str, Reject]:
        """Rejects keyed by the id of the batch event they name (by id, index, or slot)."""
        by_id = {e.id: e for e in batch.events}
        by_slot = {_by_slot(e): e for e in batch.events}
        matched: dict[str, Reject] = {}
        for reject in rejects:
            if reject.id is not None:
                event = by_id.get(reject.id)
            elif reject.index is not None:
                event = batch.events[reject.index] if reject.index < len(batch.events) else None
            elif reject.author is not None and reject.seq is not None:
                event = by_slot.get((reject.author, reject.seq))
            else:
                event = None
            if event is not None:
                matched.setdefault(event.id, reject)
        return matched

    def on_failure(self) -> None:
        """The batch in flight was not acknowledged: all of it goes back to the queue."""
        self._transition(_Input.FAILURE)
        assert self._in_flight is not None
        for event in self._in_flight.events:
            self._queue(event)
        self._in_flight = None

    def release(self, event_id: str) -> Event:
        """Operator action: put a quarantined event back in the queue to be retried."""
        event = self._find_quarantined(event_id)
        if event.seq <= self._heads.get(event.author, 0):
            raise LocalProtocolError(
                "in_custody", f"the peer already holds {event.author} seq {event.seq}; drop it"
            )
        self._lift(event)
        self._queue(event)
        return event

    def drop(self, event_id: str) -> Event:
        """Operator action: forget a quarantined event.

        In chain mode later seqs of its author then wait for the missing one.
        """
        event = self._find_quarantined(event_id)
        self._lift(event)
        self._forget(event)
        return event

    # -- what the operator sees ----------------------------------------------------------

    @property
    def backlog_count(self) -> int:
        """Events held that the peer has not taken custody of (queued, in flight, quarantined)."""
        return len(self._held)

    @property
    def backlog_bytes(self) -> int:
        """Wire bytes of :attr:`backlog_count`'s events."""
        return self._bytes

    @property
    def relay(self) -> bool:
        """True when events are relayed (independent, custody per id), not the author's chain."""
        return self._relay

    @property
    def in_flight(self) -> PushBatch | None:
        """The batch sent and not yet answered."""
        return self._in_flight

    @property
    def quarantined(self) -> list[tuple[Event, Reject]]:
        """Quarantined events with the reject that put them there, in (author, seq) order."""
        entries = (entry for box in self._quarantined.values() for entry in box.values())
        return sorted(entries, key=lambda entry: _by_slot(entry[0]))

    @property
    def custody(self) -> dict[str, int]:
        """A copy of the known custody heads (persist it to restore the session)."""
        return dict(self._heads)
