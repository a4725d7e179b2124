"""The fold cache: cases hosted at this hub, folded event by event with ``CaseFolder``.

A hub folds the events of cases it decides (events delivered to one of its departments) and
the events it signs itself. A fold rejection never rejects custody: the event is authentic
and part of its author's chain, so it stays stored and routed; the refusal is recorded on the
case (``rejected``, ``last_error``) and raised as an alert for people to sort out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from protocol.case import Case, CaseFolder, CaseRejected, CaseState
from protocol.config import Federation
from protocol.errors import RemoteProtocolError
from protocol.event import Event
from protocol.ids import CASE_RE

from ..storage import HubStore
from ..storage.store import CaseRecord
from .casecodec import CodecError, decode_case, encode_case

CLOSED = frozenset(
    {
        CaseState.DECIDED,
        CaseState.DELIVERED,
        CaseState.RATED,
        CaseState.WITHDRAWN,
        CaseState.NOT_ACCEPTED,
        CaseState.TERMINATED,
    }
)


@dataclass(frozen=True)
class FoldOutcome:
    """The case after the event, or the refusal."""

    case: Case | None
    rejected: CaseRejected | None = None


#: Work items of an authority besides its queue of open cases, kept on the case row.
DEFERRED, VERIFY, FOLLOW_UP = "deferred", "verify", "follow_up"


def tasks_of(case: Case) -> str | None:
    """容缺 materials outstanding on an open case (checked against their deadline by the
    scheduled job), a 告知承诺 approval to verify (核查), a 差评 to follow up (回访)."""
    tasks = []
    if case.outstanding and case.state not in CLOSED:
        tasks.append(DEFERRED)
    if case.needs_verification:
        tasks.append(VERIFY)
    if case.needs_follow_up:
        tasks.append(FOLLOW_UP)
    return " ".join(tasks) or None


def _record(
    case: Case, previous: CaseRecord | None, at: datetime, *, fold: str | None = None
) -> CaseRecord:
    return CaseRecord(
        number=case.number,
        state=case.state.value,
        authority=case.authority,
        matter=case.matter,
        window=case.window,
        pickup=case.pickup,
        fold=encode_case(case) if fold is None else fold,
        rejected=[] if previous is None else previous.rejected,
        last_error=None if previous is None else previous.last_error,
        received_at=case.received,
        updated_at=at,
        tasks=tasks_of(case),
    )


def load_case_txn(
    store: HubStore, c: Connection, federation: Federation, number: str, *, lock: bool
) -> tuple[CaseRecord | None, Case | None]:
    """The stored record and its decoded fold (re-folded from its events if the shape changed)."""
    record = store.case_txn(c, number, lock=lock)
    if record is None:
        return None, None
    return record, _decoded(store, c, federation, record)


def load_cases_txn(
    store: HubStore, c: Connection, federation: Federation, numbers: Iterable[str], *, lock: bool
) -> dict[str, tuple[CaseRecord, Case]]:
    """:func:`load_case_txn` of many cases: one read (locked in number order with ``lock``)."""
    records = store.cases_by_number_txn(c, numbers, lock=lock)
    return {n: (r, _decoded(store, c, federation, r)) for n, r in records.items()}


def save_folds_txn(
    store: HubStore, c: Connection, folds: Iterable[tuple[Case, CaseRecord | None]], at: datetime
) -> None:
    """Save cases folded in memory (each with its record as loaded), one statement."""
    store.save_cases_txn(c, [_record(case, record, at) for case, record in folds])


def _decoded(store: HubStore, c: Connection, federation: Federation, record: CaseRecord) -> Case:
    try:
        return decode_case(record.fold)
    except CodecError:
        # An upgrade changed Case: rebuild from the events the old fold had taken in.
        history = _history(record.fold)
        wires = store.event_wires_txn(c, history)
        events = [Event.from_json(wires[i]) for i in history if i in wires]
        return CaseFolder(federation).fold(events)


def _history(fold_text: str) -> list[str]:
    raw = json.loads(fold_text).get("history", [])
    return [i for i in raw if isinstance(i, str)]


def authority_time(skew: int | None, received: datetime) -> Callable[[Event], datetime]:
    """When time limits count an event: its ``ts`` corrected by the skew we measured on its
    author's clock (if it talks to us directly), and never later than we received it.

    A station clock days behind would otherwise start the 5-working-day deemed acceptance
    early; one days ahead would put a submission after its own decision.
    """

    def when(event: Event) -> datetime:
        try:
            counted = event.at + timedelta(seconds=skew or 0)
        except OverflowError:
            return received
        return min(counted, received)

    return when


def fold_txn(
    store: HubStore,
    c: Connection,
    federation: Federation,
    event: Event,
    at: datetime,
    *,
    strict: bool = False,
) -> FoldOutcome:
    """Fold ``event`` into its case and save it; with ``strict`` a refusal raises instead."""
    assert event.case is not None
    record, case = load_case_txn(store, c, federation, event.case, lock=True)
    when = authority_time(store.peer_skew_txn(c, event.author), at)
    try:
        new = CaseFolder(federation, when).apply(case, event)
    except CaseRejected as exc:
        if strict:
            raise
        if record is not None:
            store.save_case_txn(c, _refused(record, event, exc, at))
        store.alert_txn(c, "case_rejected", f"{event.case}/{event.id[:16]}", exc.detail, at)
        return FoldOutcome(case, exc)
    store.save_case_txn(c, _record(new, record, at))
    return FoldOutcome(new)


#: Where a window other than the accepting one may fetch a case: waiting for the applicant.
WAITING = frozenset({CaseState.CORRECTION, CaseState.AWAITING_SUPPLEMENT})


async def case_for_window(
    store: HubStore, federation: Federation, me: str, member: str, number: Any, id_hash: Any
) -> list[bytes]:
    """补齐补正 at any window: the events of case ``number`` for station ``member``, when the
    applicant's ID hash (checked at that window) matches and the case waits for 补正/补办.

    Every miss answers the same ``no_such_case``, so a window learns nothing of cases whose
    applicant is not in front of it; only the events of that one case are returned, in an
    order that folds (the ones this hub's fold refuses are left out).
    """
    station = federation.home.members.get(member)
    if station is None or "station" not in station.roles:
        raise RemoteProtocolError("not_a_window", f"{member} is not a window")
    if station.parent != me:
        raise RemoteProtocolError("not_a_child", f"{member} asks its own parent hub, not {me}")
    if not isinstance(number, str) or not CASE_RE.match(number):
        raise RemoteProtocolError("bad_request", "case must be a case number")
    if not isinstance(id_hash, str) or len(id_hash) != 64:
        raise RemoteProtocolError("bad_request", "id_hash must be a hex sha256")
    held = await store.events_of_case(number)
    folder = CaseFolder(federation)
    case: Case | None = None
    wires: list[bytes] = []
    for item in sorted(held, key=lambda e: e.type != "case.submitted"):
        event = Event.from_json(item.wire)
        try:
            case = folder.apply(case, event)
        except CaseRejected:
            continue
        wires.append(item.wire)
    if case is None or case.applicant.id_hash != id_hash:
        raise RemoteProtocolError("no_such_case", "no case waiting for this applicant here")
    if case.state not in WAITING:
        raise RemoteProtocolError("not_waiting", f"the case is {case.state.label}, not 补正/待补办")
    return wires


def _refused(record: CaseRecord, event: Event, exc: CaseRejected, at: datetime) -> CaseRecord:
    """The record noting that the fold refused ``event`` (custody stands; people look)."""
    note = {
        "event": event.id,
        "type": event.type,
        "author": event.author,
        "reason": exc.reason,
        "detail": exc.detail,
    }
    return replace(
        record,
        rejected=[*record.rejected, note],
        last_error=f"{exc.reason}: {exc.detail}",
        updated_at=at,
    )


def fold_many_txn(
    store: HubStore,
    c: Connection,
    federation: Federation,
    events: Sequence[Event],
    at: datetime,
) -> list[FoldOutcome]:
    """:func:`fold_txn` for a batch, in order: one locked read of all its cases (in number
    order, see the store's locking rule), folds in memory, one write of the changed ones."""
    loaded = load_cases_txn(store, c, federation, [e.case for e in events if e.case], lock=True)
    records: dict[str, CaseRecord] = {n: record for n, (record, _) in loaded.items()}
    cases: dict[str, Case | None] = {n: case for n, (_, case) in loaded.items()}
    skews: dict[str, int | None] = {}  # per author, read once per batch

    def when(event: Event) -> datetime:  # as fold_txn: time limits on the authority's clock
        if event.author not in skews:
            skews[event.author] = store.peer_skew_txn(c, event.author)
        return authority_time(skews[event.author], at)(event)

    folder = CaseFolder(federation, when)
    folded: set[str] = set()  # cases whose fold changed (encoded once, at the end)
    dirty: set[str] = set()
    outcomes: list[FoldOutcome] = []
    for event in events:
        number = event.case
        assert number is not None
        record = records.get(number)
        case = cases.get(number)
        try:
            new = folder.apply(case, event)
        except CaseRejected as exc:
            if record is not None:
                records[number] = _refused(record, event, exc, at)
                dirty.add(number)
            store.alert_txn(c, "case_rejected", f"{number}/{event.id[:16]}", exc.detail, at)
            outcomes.append(FoldOutcome(case, exc))
            continue
        cases[number] = new
        if record is None:  # as fold_txn: a new record with no refusals yet
            records[number] = _record(new, None, at, fold="")  # encoded below
        folded.add(number)
        dirty.add(number)
        outcomes.append(FoldOutcome(new))
    changed: list[CaseRecord] = []
    for number in sorted(dirty):
        record = records[number]
        case = cases[number]
        if number in folded and case is not None:
            changed.append(_record(case, record, at))
        else:
            changed.append(replace(record, updated_at=at))
    store.save_cases_txn(c, changed)
    return outcomes
