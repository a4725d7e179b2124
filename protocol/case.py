"""The case (办件) fold: one transitions table, one pure function.

Theory of operation
-------------------

A case is never stored as mutable state; it is the fold of its signed events (DESIGN.md §2).
:class:`CaseFolder` is built with the :class:`~protocol.config.Federation` view of the member
doing the folding and turns ``(case or None, event)`` into the next :class:`Case`, or raises
:class:`CaseRejected` naming what the author of the event did wrong. It never verifies
signatures (the caller did that against the config) and never reads a clock: every date
comes from an event's ``ts`` read as a day in China time (UTC+8, :func:`day_of`), and time
limits take the calendar as an argument.

Every step of the fold goes through the same gate, after h11:

1. the event type must be a known ``case.*`` type (``unknown_type``), for this case number
   (``wrong_case``), and not already folded in (``duplicate_event``);
2. ``(state, type)`` must be a row of :data:`TRANSITIONS` (``illegal_transition``);
3. the author must be the party the row names (:data:`Who`): the accepting window
   (``not_the_window``), the member hosting the competent authority (``not_the_authority``),
   the pickup window (``not_the_pickup``), any window (``not_a_window``), or, for the
   即办 rows, the window itself when the matter is delegated to it (``not_delegated``);
   a 送达回执 ``case.received`` is signed by an addressee of the event it confirms
   (``addressee``, no staff; see below); acts of an authority name the staff member who
   acted in ``body.by`` (``unknown_staff``, ``wrong_department``, ``inactive_staff``,
   ``wrong_role``);
4. the body must satisfy the rules of DOMAIN.md for that type; then the new case is built.

Each row admits one party, so two members cannot make conflicting moves on one case: there
are no write-write conflicts to merge. The one exception is 即办 (``window_or_authority``):
for a matter delegated to the window, the window (often offline) and the authority both may
accept or decide; whichever event a folder sees first wins and the other is then an
``illegal_transition``, which the hub reports like any rejection.

Lifecycle and terms: 收件 submitted → 补正 correction (一次性告知: every problem in one
notice) → 已受理 accepted → 审查中 in review (审、核、签、发 steps, 退回 returns to an earlier
step; 独任审批 has one step) ⇄ 待补办 awaiting supplement / 特别程序 suspended (the clock is
paused) → 办结 decided → 已送达 delivered → 已评价 rated (好差评; a 差评 needs follow-up).
Exits: 撤回 withdrawn, 不予受理 not accepted, 异常终止 terminated (a false 告知承诺 pledge, a
missed 容缺 deadline). 容缺受理 accepts with a deferrable material missing on a signed pledge
with a deadline; 告知承诺 replaces a proof by a signed pledge. A 即办件 delegated to the
window (即来即办) is accepted and decided by the window itself. If the authority does
nothing for 5 working days after receipt, the case counts as accepted from receipt
(行政许可法 §32, :meth:`Case.deemed_accepted`); accepting it later still counts the time limit
from receipt (``Case.deemed``).

After the decision the authority adds, without changing the state: 核查 (``case.verified``)
of an approval granted on a 告知承诺 pledge (a false pledge is then terminated), and 回访
(``case.followed_up``) of a 差评; ratings themselves are never changed. The one authority act
without a staff member is the hub's scheduled termination of a missed 容缺 deadline
(``body.cause`` = :data:`OVERDUE`): the fold itself checks that the deadline has passed.

送达回执 (end-to-end receipt): custody is per hop, so the author of an event also learns that
it *arrived*. Every event but a receipt is owed one receipt by each member it is addressed to
(``member_of`` each address in ``to``, once each, its author aside): folding it adds one
:class:`Receipt` per addressee to ``Case.awaiting``. An addressee that holds the event signs
``case.received`` (``body.event``: the id held) back to the event's author; folding it moves
the pair from ``Case.awaiting`` to ``Case.receipts``. It is a row for every state that keeps
the state, so it never races a review act; it must name an event of the case
(``unknown_event``), once per member (``duplicate_receipt``), by a member still owed for it
(``not_an_addressee``: the event's own author, a stranger, or a receipt, since receipts get
no receipts and so never ping-pong). The hub hosting the authority signs once the event and
every blob it names are held there (the window shows "已送达审批部门",
``Case.received_by_authority``); a window signs as soon as it stores the event (an act of
the authority, or another window's event sent to it), so the reviewer sees the decision
reached the window.

The catalog entry of the matter is taken into the case at submission (``Case.terms``): a
later config may change the catalog, but not the terms a case was accepted on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from .config import Federation, Matter, Staff
from .errors import ProtocolError, RemoteProtocolError
from .event import Event
from .ids import CASE_RE, case_author, department_of, member_of
from .keys import KeyPair
from .routing import competent_authority, may_accept
from .workdays import Calendar, Deadline, Pause

__all__ = [
    "AFTER_DECISION",
    "CHINA_TIME",
    "DEEMED_ACCEPTANCE_DAYS",
    "EVENT_TYPES",
    "OPEN_STATES",
    "OVERDUE",
    "PAUSED",
    "RECEIPT",
    "RESULT_CODES",
    "TRANSITIONS",
    "VERIFICATION_OUTCOMES",
    "Agent",
    "Applicant",
    "Case",
    "CaseFolder",
    "CaseRejected",
    "CaseState",
    "FollowUp",
    "Item",
    "Pledge",
    "Rating",
    "Receipt",
    "StepRecord",
    "SubmittedMaterial",
    "Transition",
    "Verification",
    "Who",
    "day_of",
    "sign_receipt",
    "submitted_to",
]

DEEMED_ACCEPTANCE_DAYS = 5  # 行政许可法 §32
RESULT_CODES: Mapping[int, str] = MappingProxyType(
    {0: "出证办结", 1: "不予许可", 5: "退件", 6: "不予受理"}
)
MATERIAL_MODES = ("provided", "deferred", "pledged")
VERIFICATION_OUTCOMES = ("confirmed", "false")
OVERDUE = "deferred_overdue"  # body.cause of the scheduled termination of a missed 容缺 deadline
RECEIPT = "case.received"  # 送达回执
CHINA_TIME = timezone(timedelta(hours=8), "CST")
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_BLOB_RE = re.compile(r"^[0-9a-f]{64}\Z")
_DIVISION_RE = re.compile(r"^\d{4}(?:\d{2}(?:\d{3}(?:\d{3})?)?)?$")


class CaseRejected(RemoteProtocolError):
    """The event cannot be folded into the case; ``reason`` says why, the author is at fault."""


class CaseState(StrEnum):
    """Where a case stands; ``label`` is the word the window uses."""

    SUBMITTED = "submitted"
    CORRECTION = "correction"
    ACCEPTED = "accepted"
    IN_REVIEW = "in_review"
    AWAITING_SUPPLEMENT = "awaiting_supplement"
    SUSPENDED = "suspended"
    DECIDED = "decided"
    DELIVERED = "delivered"
    RATED = "rated"
    WITHDRAWN = "withdrawn"
    NOT_ACCEPTED = "not_accepted"
    TERMINATED = "terminated"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: Mapping[CaseState, str] = MappingProxyType(
    {
        CaseState.SUBMITTED: "收件",
        CaseState.CORRECTION: "补正",
        CaseState.ACCEPTED: "已受理",
        CaseState.IN_REVIEW: "审查中",
        CaseState.AWAITING_SUPPLEMENT: "待补办",
        CaseState.SUSPENDED: "特别程序",
        CaseState.DECIDED: "办结",
        CaseState.DELIVERED: "已送达",
        CaseState.RATED: "已评价",
        CaseState.WITHDRAWN: "撤回",
        CaseState.NOT_ACCEPTED: "不予受理",
        CaseState.TERMINATED: "异常终止",
    }
)

Who = Literal["window", "authority", "pickup", "any_window", "window_or_authority", "addressee"]
"""Who may make a transition.

``window``: the accepting window, ``case_author(number)``; ``authority``: the hub member
hosting the competent authority; ``pickup``: the window the applicant chose for the result;
``any_window``: the accepting window or any member with role ``station``;
``window_or_authority``: the authority, or the window itself for a matter delegated to it;
``addressee``: a member the confirmed event was addressed to and whose receipt the case
still awaits (``Case.awaiting``), signing for itself (no staff acts).
"""


@dataclass(frozen=True)
class Transition:
    """One row of the table: the state reached (None: back to the state before the pause)."""

    target: CaseState | None
    who: Who


_S = CaseState
_REVIEWING = (_S.ACCEPTED, _S.IN_REVIEW)
PAUSED_STATES = (_S.AWAITING_SUPPLEMENT, _S.SUSPENDED)
OPEN_STATES = (_S.SUBMITTED, _S.CORRECTION, *_REVIEWING, *PAUSED_STATES)  # undecided, not ended
AFTER_DECISION = (_S.DECIDED, _S.DELIVERED, _S.RATED)
PAUSED = frozenset(PAUSED_STATES)  # the clock stands still

TRANSITIONS: Mapping[tuple[CaseState | None, str], Transition] = MappingProxyType(
    {
        (None, "case.submitted"): Transition(_S.SUBMITTED, "window"),
        (_S.SUBMITTED, "case.correction_requested"): Transition(_S.CORRECTION, "authority"),
        (_S.CORRECTION, "case.corrected"): Transition(_S.SUBMITTED, "any_window"),
        (_S.SUBMITTED, "case.accepted"): Transition(_S.ACCEPTED, "window_or_authority"),
        (_S.SUBMITTED, "case.not_accepted"): Transition(_S.NOT_ACCEPTED, "authority"),
        (_S.CORRECTION, "case.not_accepted"): Transition(_S.NOT_ACCEPTED, "authority"),
        **{(s, "case.step"): Transition(_S.IN_REVIEW, "authority") for s in _REVIEWING},
        **{
            (s, "case.supplement_requested"): Transition(_S.AWAITING_SUPPLEMENT, "authority")
            for s in _REVIEWING
        },
        (_S.AWAITING_SUPPLEMENT, "case.supplemented"): Transition(None, "any_window"),
        **{(s, "case.suspended"): Transition(_S.SUSPENDED, "authority") for s in _REVIEWING},
        (_S.SUSPENDED, "case.resumed"): Transition(None, "authority"),
        **{(s, "case.extended"): Transition(s, "authority") for s in _REVIEWING},
        **{(s, "case.decided"): Transition(_S.DECIDED, "window_or_authority") for s in _REVIEWING},
        (_S.DECIDED, "case.delivered"): Transition(_S.DELIVERED, "pickup"),
        (_S.DELIVERED, "case.rated"): Transition(_S.RATED, "any_window"),
        (_S.RATED, "case.rated"): Transition(_S.RATED, "any_window"),
        **{(s, "case.withdrawn"): Transition(_S.WITHDRAWN, "window") for s in OPEN_STATES},
        **{
            (s, "case.terminated"): Transition(_S.TERMINATED, "authority")
            for s in (*_REVIEWING, *PAUSED_STATES, *AFTER_DECISION)
        },
        # 送达回执: an addressee confirms it holds an event; the state does not move.
        **{(s, RECEIPT): Transition(s, "addressee") for s in CaseState},
        **{(s, "case.verified"): Transition(s, "authority") for s in AFTER_DECISION},
        (_S.RATED, "case.followed_up"): Transition(_S.RATED, "authority"),
    }
)
"""(state before, event type) → (state after, who may make it). Anything else is illegal."""

EVENT_TYPES = frozenset(kind for _, kind in TRANSITIONS)


def day_of(at: datetime) -> date:
    """The calendar day of an instant in China time (working days are counted in Beijing)."""
    return at.astimezone(CHINA_TIME).date()


# -- what a case holds ------------------------------------------------------------------


@dataclass(frozen=True)
class Applicant:
    """申请人: shown masked; ``id_hash`` (sha256 of the normalized full id) finds earlier files."""

    name: str
    id_type: str
    id_masked: str
    id_hash: str


@dataclass(frozen=True)
class Agent:
    """帮办代办员: who applied on the applicant's behalf."""

    name: str
    id_masked: str


@dataclass(frozen=True)
class SubmittedMaterial:
    """One 申请材料 as handed in: provided, deferred (容缺) or pledged (告知承诺)."""

    id: str
    name: str
    mode: str
    blobs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pledge:
    """The applicant's signed pledge; ``deadline`` is when deferred materials are due."""

    text: str
    deadline: date | None = None


@dataclass(frozen=True)
class Item:
    """One problem in a 补正 or 补办 notice: a material or a form field, and what is wrong."""

    problem: str
    material: str | None = None
    field: str | None = None


@dataclass(frozen=True)
class StepRecord:
    """One review step taken: who (staff id), when, the outcome and their opinion."""

    step: int
    name: str
    outcome: str  # pass | return
    to_step: int | None
    by: str
    at: datetime
    opinion: str
    event: str


@dataclass(frozen=True)
class Rating:
    """One 好差评 rating; ratings are only ever added."""

    score: int
    comment: str
    by: str  # the member (window) where the applicant rated
    at: datetime
    event: str


@dataclass(frozen=True)
class Verification:
    """核查: the authority's check of a 告知承诺 pledge after the approval."""

    outcome: str  # confirmed | false
    note: str
    by: str
    at: datetime
    event: str


@dataclass(frozen=True)
class FollowUp:
    """差评回访: how the authority followed up a low rating (the rating itself stays)."""

    note: str
    by: str
    at: datetime
    event: str


@dataclass(frozen=True)
class Receipt:
    """送达回执 owed or given: addressee ``member`` holds event ``event`` of the case."""

    event: str
    member: str


@dataclass(frozen=True)
class Case:
    """A case as its events so far make it. Build with :class:`CaseFolder`."""

    number: str
    matter: str
    terms: Matter  # the catalog entry as it stood at submission
    authority: str
    window: str
    pickup: str
    state: CaseState
    received: datetime
    applicant: Applicant
    location: str
    materials: tuple[SubmittedMaterial, ...]
    # 送达回执 owed and not given yet. No default: a fold cached before receipts were owed
    # must not decode as a case that owes nothing (hub.services.casecodec re-folds it).
    awaiting: tuple[Receipt, ...]
    agent: Agent | None = None
    bundle: str | None = None
    pledge: Pledge | None = None
    previous: CaseState | None = None  # the state a pause returns to
    items: tuple[Item, ...] = ()  # the latest 补正 / 补办 notice
    corrections: int = 0
    accepted_at: datetime | None = None
    decided_at: datetime | None = None
    delivered_at: datetime | None = None
    result_code: int | None = None
    reason: str = ""  # the stated reason of the latest decision, suspension or exit
    pauses: tuple[Pause, ...] = ()
    extension_days: int = 0
    step: int = 0  # index of the next review step to take
    steps: tuple[StepRecord, ...] = ()
    ratings: tuple[Rating, ...] = ()
    needs_follow_up: bool = False
    follow_ups: tuple[FollowUp, ...] = ()
    verification: Verification | None = None
    deemed: bool = False  # accepted after the 5 working days: counted from receipt (rule 1)
    history: tuple[str, ...] = ()
    receipts: tuple[Receipt, ...] = ()  # 送达回执 given, in the order they were folded

    @property
    def received_by_authority(self) -> bool:
        """已送达审批部门: the submission and its materials are held at the authority's hub."""
        return Receipt(self.history[0], member_of(self.authority)) in self.receipts

    def addressees(self, event: str) -> tuple[tuple[str, bool], ...]:
        """The members ``event`` was sent to, each with whether it confirmed it (送达回执)."""
        confirmed = tuple((r.member, True) for r in self.receipts if r.event == event)
        return confirmed + tuple((r.member, False) for r in self.awaiting if r.event == event)

    @property
    def outstanding(self) -> tuple[str, ...]:
        """Ids of materials accepted under 容缺 and not yet supplied."""
        return tuple(m.id for m in self.materials if m.mode == "deferred")

    @property
    def needs_verification(self) -> bool:
        """An approval granted on a 告知承诺 pledge that has not been checked yet (核查)."""
        return (
            self.state in AFTER_DECISION
            and self.result_code == 0
            and any(m.mode == "pledged" for m in self.materials)
            and self.verification is None
        )

    def deadline(self, calendar: Calendar, today: date | None = None) -> Deadline | None:
        """Promised completion: acceptance + promise_days + extension, pauses excluded.

        None before acceptance, unless ``today`` is given and the case already counts as
        accepted from receipt (rule 1); ``Deadline.date`` None while a pause is open.
        """
        start = self.accepted_at
        if start is None and today is not None and self.deemed_accepted(calendar, today):
            start = self.received
        if start is None:
            return None
        days = self.terms.promise_days + self.extension_days
        return calendar.add_workdays(day_of(start), days, self.pauses)

    def deemed_accepted(self, calendar: Calendar, today: date) -> bool:
        """Rule 1: still 收件 with no 补正 notice after 5 working days counts as accepted."""
        return (
            self.state is CaseState.SUBMITTED
            and self.corrections == 0
            and calendar.count_workdays(day_of(self.received), today) > DEEMED_ACCEPTANCE_DAYS
        )


# -- body parsing -------------------------------------------------------------------------


def sign_receipt(
    key: KeyPair,
    *,
    author: str,
    seq: int,
    prev: str | None,
    ts: str,
    case: str,
    held: str,
    held_author: str,
) -> Event:
    """The 送达回执 ``author`` signs as seq ``seq`` of its chain: event ``held`` of ``case`` is
    in its custody; addressed back to that event's author."""
    return Event.create(
        key,
        author=author,
        seq=seq,
        prev=prev,
        ts=ts,
        type=RECEIPT,
        case=case,
        to=(held_author,),
        body={"event": held},
    )


def blobs_named(event: Event) -> list[str]:
    """Blob hashes an event names in ``body.materials[].blobs`` (read generously: custody
    and restores need them even from an event the fold refuses)."""
    found: list[str] = []
    materials = event.body.get("materials")
    if isinstance(materials, list):
        for entry in materials:
            blobs = entry.get("blobs") if isinstance(entry, dict) else None
            if isinstance(blobs, list):
                found.extend(b for b in blobs if isinstance(b, str) and _BLOB_RE.match(b))
    return found


def _owed(event: Event) -> tuple[Receipt, ...]:
    """The 送达回执 an event is owed: one per member it is addressed to, its author aside."""
    members = dict.fromkeys(member_of(address) for address in event.to)
    return tuple(Receipt(event.id, m) for m in members if m != event.author)


def submitted_to(authority: str, window: str, pickup: str) -> tuple[str, ...]:
    """The ``to`` of a ``case.submitted``: the authority, and a pickup window elsewhere (出件
    窗口), which must fold the case to hand the result out."""
    return (authority,) if pickup == window else (authority, pickup)


def _reject(reason: str, detail: str) -> CaseRejected:
    return CaseRejected(reason, detail)


def _text(obj: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> str:
    value = obj.get(key, "" if optional else None)
    if not isinstance(value, str) or not (optional or value.strip()):
        raise _reject("bad_body", f"{where}.{key} must be a non-empty string")
    return value


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _reject("bad_body", f"{where} must be an object")
    return value


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _reason(body: Mapping[str, Any]) -> str:
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise _reject("missing_reason", "a reason must be stated")
    return reason


def _day(value: Any, where: str) -> date:
    try:
        day = date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        day = None
    if day is None or day.isoformat() != value:
        raise _reject("bad_body", f"{where} must be an ISO date")
    return day


def _applicant(value: Any) -> Applicant:
    obj = _object(value, "applicant")
    id_hash = _text(obj, "id_hash", "applicant")
    if not _HASH_RE.match(id_hash):
        raise _reject("bad_body", "applicant.id_hash must be a hex sha256")
    return Applicant(
        name=_text(obj, "name", "applicant"),
        id_type=_text(obj, "id_type", "applicant"),
        id_masked=_text(obj, "id_masked", "applicant"),
        id_hash=id_hash,
    )


def _agent(value: Any) -> Agent | None:
    if value is None:
        return None
    obj = _object(value, "agent")
    return Agent(_text(obj, "name", "agent"), _text(obj, "id_masked", "agent"))


def _pledge(value: Any) -> Pledge:
    obj = _object(value, "pledge")
    deadline = obj.get("deadline")
    return Pledge(
        text=_text(obj, "text", "pledge"),
        deadline=None if deadline is None else _day(deadline, "pledge.deadline"),
    )


def _items(body: Mapping[str, Any], matter: Matter) -> tuple[Item, ...]:
    """一次性告知: the whole notice, at least one item, each naming a material or a field."""
    raw = body.get("items")
    if not isinstance(raw, list) or not raw:
        raise _reject("bad_body", "items must list every problem, at least one")
    items = []
    for i, entry in enumerate(raw):
        obj = _object(entry, f"items[{i}]")
        material, field = obj.get("material"), obj.get("field")
        if material is not None:
            if not isinstance(material, str) or matter.material(material) is None:
                raise _reject(
                    "unknown_material", f"items[{i}].material is not in the catalog entry"
                )
        elif not isinstance(field, str) or not field:
            raise _reject("bad_body", f"items[{i}] must name a material or a field")
        items.append(Item(_text(obj, "problem", f"items[{i}]"), material, field))
    return tuple(items)


def _entries(matter: Matter, raw: Any) -> list[SubmittedMaterial]:
    """Material entries of a body, each a catalog material in a mode the catalog allows."""
    if not isinstance(raw, list):
        raise _reject("bad_body", "materials must be a list")
    out: list[SubmittedMaterial] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        where = f"materials[{i}]"
        obj = _object(entry, where)
        mid = obj.get("id")
        spec = matter.material(mid) if isinstance(mid, str) else None
        if spec is None:
            raise _reject("unknown_material", f"{where}.id is not a material of {matter.code}")
        if spec.id in seen:
            raise _reject("bad_body", f"{where}: material {spec.id} is listed twice")
        seen.add(spec.id)
        mode = obj.get("mode")
        if mode not in MATERIAL_MODES:
            raise _reject("bad_body", f"{where}.mode must be one of {MATERIAL_MODES}")
        blobs = obj.get("blobs", [])
        if not isinstance(blobs, list) or not all(
            isinstance(b, str) and _HASH_RE.match(b) for b in blobs
        ):
            raise _reject("bad_body", f"{where}.blobs must be hex sha256 hashes")
        if mode == "deferred" and not spec.deferrable:
            raise _reject("not_deferrable", f"{spec.id} may not be deferred (容缺)")
        if mode == "pledged" and not spec.pledgeable:
            raise _reject("not_pledgeable", f"{spec.id} may not be replaced by a pledge (告知承诺)")
        name = obj.get("name", spec.name)
        if not isinstance(name, str):
            raise _reject("bad_body", f"{where}.name must be a string")
        out.append(SubmittedMaterial(spec.id, name, mode, tuple(blobs)))
    return out


# -- the folder ---------------------------------------------------------------------------

Side = Literal["window", "authority"]
Changes = dict[str, Any]


def _claimed_at(event: Event) -> datetime:
    return event.at


class CaseFolder:
    """Folds case events under the rules of one federation view."""

    def __init__(
        self, federation: Federation, when: Callable[[Event], datetime] | None = None
    ) -> None:
        """``when(event)`` is the instant a time limit counts the event at: by default its
        ``ts`` (the author's clock); a hub passes its own estimate, so the limits run on the
        authority's clock even when a station's clock is off (docs/reliability.md)."""
        self._federation = federation
        self._when: Callable[[Event], datetime] = when or _claimed_at
        self._handlers: Mapping[str, Callable[[Case, Event, Staff | None], Changes]] = {
            "case.correction_requested": self._correction_requested,
            "case.corrected": self._corrected,
            "case.accepted": self._accepted,
            "case.not_accepted": self._not_accepted,
            "case.step": self._step,
            "case.supplement_requested": self._supplement_requested,
            "case.supplemented": self._supplemented,
            "case.suspended": self._suspended,
            "case.resumed": self._resumed,
            "case.extended": self._extended,
            "case.decided": self._decided,
            "case.delivered": self._delivered,
            "case.rated": self._rated,
            "case.withdrawn": self._withdrawn,
            "case.terminated": self._terminated,
            RECEIPT: self._received,
            "case.verified": self._verified,
            "case.followed_up": self._followed_up,
        }

    def fold(self, events: Iterable[Event]) -> Case:
        """The case made by ``events`` in order (the first must be ``case.submitted``)."""
        case: Case | None = None
        for event in events:
            case = self.apply(case, event)
        if case is None:
            raise _reject("no_events", "a case needs at least its case.submitted event")
        return case

    def apply(self, case: Case | None, event: Event) -> Case:
        """The case after ``event``; raises :class:`CaseRejected` and nothing else."""
        try:
            return self._apply(case, event)
        except CaseRejected:
            raise
        except ProtocolError as exc:  # routing or calendar refused the event's data
            raise _reject(exc.reason, exc.detail) from None

    def _apply(self, case: Case | None, event: Event) -> Case:
        try:
            day_of(event.at)  # once here, so every instant the case keeps has a day
        except OverflowError:
            raise _reject("bad_ts", f"{event.ts} has no day in China time") from None
        if event.type not in EVENT_TYPES:
            raise _reject("unknown_type", f"{event.type} is not a case event")
        if case is not None:
            if event.case != case.number:
                raise _reject("wrong_case", f"event of case {event.case}, not {case.number}")
            if event.id in case.history:
                raise _reject("duplicate_event", f"event {event.id} is already in the case")
        state = None if case is None else case.state
        rule = TRANSITIONS.get((state, event.type))
        if rule is None:
            raise _reject("illegal_transition", f"no {event.type} from {state}")
        if case is None:
            return self._submitted(event)
        staff = self._check_who(case, event, rule.who)
        changes = self._handlers[event.type](case, event, staff)
        if event.type != RECEIPT:
            changes["awaiting"] = (*case.awaiting, *_owed(event))
        target = case.previous if rule.target is None else rule.target
        assert target is not None  # a pause always records the state it interrupted
        pauses = case.pauses
        if case.state in PAUSED and target not in PAUSED:
            # An offline clock may run behind.
            end = max(day_of(self._when(event)), pauses[-1].start)
            pauses = (*pauses[:-1], Pause(pauses[-1].start, end))
        if target in PAUSED and case.state not in PAUSED:
            pauses = (*pauses, Pause(day_of(self._when(event))))
            changes["previous"] = case.state
        return replace(
            case, state=target, pauses=pauses, history=(*case.history, event.id), **changes
        )

    # -- who ---------------------------------------------------------------------------

    def _check_who(self, case: Case, event: Event, who: Who) -> Staff | None:
        """Raise unless the author may make this move; the acting staff for authority acts."""
        author, host = event.author, member_of(case.authority)
        if who == "window_or_authority":
            if author == host:
                return self._staff(case, event, "authority")
            if author != case.window:
                raise _reject("not_the_authority", f"{author} is neither {host} nor the window")
            if not case.terms.delegated(case.window):
                raise _reject("not_delegated", f"{case.matter} is not delegated to {author}")
            return self._staff(case, event, "window")
        if who == "addressee":
            return None  # _received checks the author against what the case awaits
        if who == "authority":
            if author != host:
                raise _reject("not_the_authority", f"{author} does not host {case.authority}")
            if event.type == "case.terminated" and event.body.get("cause") == OVERDUE:
                return None  # the hub's scheduled check; _terminated checks the deadline
            return self._staff(case, event, "authority")
        if who == "window" and author != case.window:
            raise _reject("not_the_window", f"{author} is not the accepting window {case.window}")
        if who == "pickup" and author != case.pickup:
            raise _reject("not_the_pickup", f"{author} is not the pickup window {case.pickup}")
        if who == "any_window" and author != case.window:
            member = self._federation.member(author)
            if member is None or "station" not in member.roles:
                raise _reject("not_a_window", f"{author} is not a window")
        return None

    def _staff(self, case: Case, event: Event, side: Side) -> Staff:
        """The staff member named in ``body.by``: of the author, in the right department."""
        by = event.body.get("by")
        if not isinstance(by, str):
            raise _reject("bad_body", "by must name the staff member who acted")
        config = self._federation.city(case.authority if side == "authority" else case.window)
        staff = None if config is None else config.staff.get(by)
        if staff is None or staff.member != event.author:
            raise _reject("unknown_staff", f"{by[:50]!r} is not staff of {event.author}")
        if side == "authority" and staff.department != department_of(case.authority):
            raise _reject("wrong_department", f"{by} does not work at {case.authority}")
        if not staff.active_at(event.at):
            raise _reject("inactive_staff", f"{by} was not active at {event.ts}")
        return staff

    @staticmethod
    def _acting(staff: Staff | None) -> Staff:
        assert staff is not None  # rows that call for staff are authority rows
        return staff

    # -- submission and materials --------------------------------------------------------

    def _submitted(self, event: Event) -> Case:
        if event.case is None:
            raise _reject("wrong_case", "case.submitted must carry a case number")
        window = case_author(event.case)
        if event.author != window:
            raise _reject("not_the_window", f"{event.author} cannot open a case numbered {window}")
        if self._federation.member(window) is None:
            raise _reject("unknown_member", f"{window} is not a member of the federation")
        body = event.body
        code = body.get("matter")
        found = self._federation.matter(code) if isinstance(code, str) else None
        if found is None:
            raise _reject("unknown_matter", f"{str(code)[:50]!r} is not in the catalog")
        config, matter = found
        location = body.get("location")
        if not isinstance(location, str) or not _DIVISION_RE.match(location):
            raise _reject("bad_body", "location must be a division code")
        authority = competent_authority(self._federation, matter.code, location)
        if not may_accept(self._federation, matter.code, window, authority):
            raise _reject("out_of_scope", f"{window} may not accept {matter.code} ({matter.scope})")
        pickup = body.get("pickup", window)
        if not isinstance(pickup, str) or self._federation.member(pickup) is None:
            raise _reject("unknown_pickup", f"pickup {str(pickup)[:30]!r} is not a member")
        # A pickup window elsewhere gets the submission too, so it can fold the case.
        if event.to != submitted_to(authority, window, pickup):
            raise _reject("wrong_recipient", f"{matter.code} for {location} goes to {authority}")
        bundle = body.get("bundle")
        if bundle is not None and not (isinstance(bundle, str) and CASE_RE.match(bundle)):
            raise _reject("bad_body", "bundle must be the parent case number")
        materials = tuple(_entries(matter, body.get("materials")))
        pledge = self._pledge(matter, materials, body, None, config.calendar, event)
        return Case(
            number=event.case,
            matter=matter.code,
            terms=matter,
            authority=authority,
            window=window,
            pickup=pickup,
            state=CaseState.SUBMITTED,
            received=self._when(event),
            applicant=_applicant(body.get("applicant")),
            agent=_agent(body.get("agent")),
            location=location,
            materials=materials,
            awaiting=_owed(event),
            bundle=bundle,
            pledge=pledge,
            history=(event.id,),
        )

    def _pledge(
        self,
        matter: Matter,
        materials: tuple[SubmittedMaterial, ...],
        body: Mapping[str, Any],
        held: Pledge | None,
        calendar: Calendar,
        event: Event,
    ) -> Pledge | None:
        """Check the materials are complete and the pledge covers every 容缺 and 告知承诺."""
        given = {m.id for m in materials}
        missing = [m.id for m in matter.materials if m.required and m.id not in given]
        if missing:
            raise _reject("missing_material", f"required materials missing: {missing}")
        pledge = held
        if body.get("pledge") is not None:
            pledge = _pledge(body["pledge"])
            if pledge.deadline is not None:
                day = day_of(self._when(event))
                promised = calendar.add_workdays(day, matter.promise_days).date
                assert promised is not None  # no pauses, so the count always ends
                if not day <= pledge.deadline <= promised:
                    raise _reject(
                        "bad_pledge_deadline",
                        f"the pledge deadline must fall between {day} and {promised}",
                    )
        modes = {m.mode for m in materials}
        if "deferred" in modes and (pledge is None or pledge.deadline is None):
            raise _reject("missing_pledge", "容缺 needs a signed pledge with a deadline")
        if "pledged" in modes and pledge is None:
            raise _reject("missing_pledge", "告知承诺 needs the signed pledge text")
        return pledge

    def _calendar(self, case: Case) -> Calendar:
        config = self._federation.city(case.authority)
        assert config is not None  # the authority was found in this federation at submission
        return config.calendar

    # -- before acceptance ----------------------------------------------------------------

    def _correction_requested(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        return {"items": _items(event.body, case.terms), "corrections": case.corrections + 1}

    def _corrected(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        materials = tuple(_entries(case.terms, event.body.get("materials")))
        calendar = self._calendar(case)
        pledge = self._pledge(case.terms, materials, event.body, case.pledge, calendar, event)
        return {"materials": materials, "pledge": pledge, "items": ()}

    def _accepted(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        at = self._when(event)
        if case.deemed_accepted(self._calendar(case), day_of(at)):
            # 行政许可法 §32: accepted from receipt, so the time limit runs from then.
            return {"accepted_at": case.received, "deemed": True, "items": ()}
        return {"accepted_at": at, "items": ()}

    def _not_accepted(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        return {"reason": _reason(event.body)}

    # -- review ---------------------------------------------------------------------------

    def _step(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        body, steps = event.body, case.terms.steps
        index = _int(body.get("step"))
        if index is None or index != case.step or index >= len(steps):
            raise _reject("wrong_step", f"the next step is {case.step} of {len(steps)}")
        acting = self._acting(staff)
        if steps[index].role not in acting.roles:
            raise _reject("wrong_role", f"{acting.id} lacks role {steps[index].role}")
        outcome = body.get("outcome")
        to_step = _int(body.get("to_step"))
        if outcome == "pass":
            to_step, after = None, index + 1
        elif outcome == "return" and to_step is not None and 0 <= to_step < index:
            after = to_step
        else:
            raise _reject("bad_body", "outcome is pass, or return with an earlier to_step")
        record = StepRecord(
            step=index,
            name=steps[index].name,
            outcome=outcome,
            to_step=to_step,
            by=acting.id,
            at=event.at,
            opinion=_text(body, "opinion", "step"),
            event=event.id,
        )
        return {"step": after, "steps": (*case.steps, record)}

    def _supplement_requested(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        return {"items": _items(event.body, case.terms)}

    def _supplemented(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        body = event.body
        merged = {m.id: m for m in case.materials}
        merged.update((m.id, m) for m in _entries(case.terms, body.get("materials", [])))
        materials = tuple(merged.values())
        calendar = self._calendar(case)
        pledge = self._pledge(case.terms, materials, body, case.pledge, calendar, event)
        return {"materials": materials, "pledge": pledge, "items": ()}

    def _suspended(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        return {"reason": _reason(event.body)}

    def _resumed(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        return {}

    def _extended(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        if case.extension_days:
            raise _reject("second_extension", "a case may be extended once")
        days = _int(event.body.get("days"))
        room = case.terms.legal_days - case.terms.promise_days
        if days is None or not 0 < days <= room:
            raise _reject("bad_body", f"days must be 1..{room} (legal_days - promise_days)")
        return {"extension_days": days, "reason": _reason(event.body)}

    def _decided(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        body, terms = event.body, case.terms
        code = _int(body.get("result_code"))
        if code not in RESULT_CODES:
            raise _reject("bad_body", f"result_code must be one of {sorted(RESULT_CODES)}")
        reason = _reason(body) if code else _text(body, "reason", "decision", optional=True)
        if code == 0 and not isinstance(body.get("result"), dict):
            raise _reject("bad_body", "an approval carries the sealed result document")
        _text(body, "opinion", "decision", optional=True)
        if not terms.single_reviewer and case.step < len(terms.steps):
            raise _reject("steps_incomplete", f"step {case.step} of {len(terms.steps)} not passed")
        acting = self._acting(staff)
        if terms.steps and terms.steps[-1].role not in acting.roles:
            raise _reject("wrong_role", f"{acting.id} lacks role {terms.steps[-1].role}")
        if code == 0 and case.outstanding:
            raise _reject("materials_outstanding", f"容缺 materials due: {case.outstanding}")
        return {"decided_at": self._when(event), "result_code": code, "reason": reason}

    # -- after the decision, and exits ----------------------------------------------------

    def _delivered(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        _text(event.body, "collector", "delivery")
        _text(event.body, "method", "delivery")
        return {"delivered_at": self._when(event)}

    def _rated(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        body = event.body
        if "replaces" in body:
            raise _reject("rating_changed", "a rating cannot be changed, only another added")
        score = _int(body.get("score"))
        if score is None or not 1 <= score <= 5:
            raise _reject("bad_body", "score must be 1..5")
        rating = Rating(
            score=score,
            comment=_text(body, "comment", "rating", optional=True),
            by=event.author,
            at=event.at,
            event=event.id,
        )
        return {
            "ratings": (*case.ratings, rating),
            "needs_follow_up": case.needs_follow_up or score <= 2,  # 差评
        }

    def _withdrawn(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        return {"reason": _text(event.body, "reason", "withdrawal", optional=True)}

    def _received(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        held = event.body.get("event")
        if not isinstance(held, str) or held not in case.history:
            raise _reject("unknown_event", "event must name an event of this case")
        receipt = Receipt(held, event.author)
        if receipt in case.receipts:
            raise _reject("duplicate_receipt", f"{event.author} already confirmed {held[:16]}")
        if receipt not in case.awaiting:
            raise _reject("not_an_addressee", f"{event.author} is owed no receipt for {held[:16]}")
        return {
            "awaiting": tuple(r for r in case.awaiting if r != receipt),
            "receipts": (*case.receipts, receipt),
        }

    def _terminated(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        reason = _reason(event.body)
        if event.body.get("cause") == OVERDUE:
            due = None if case.pledge is None else case.pledge.deadline
            if not case.outstanding or due is None or day_of(self._when(event)) <= due:
                raise _reject("not_overdue", "no deferred (容缺) material is past its deadline")
        if case.state in AFTER_DECISION and (case.pledge is None or case.result_code != 0):
            raise _reject("no_pledge", "only an approval on a pledge can be terminated")
        return {"reason": reason}

    def _verified(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        if not any(m.mode == "pledged" for m in case.materials) or case.result_code != 0:
            raise _reject("nothing_to_verify", "only an approval on a 告知承诺 pledge is verified")
        if case.verification is not None:
            raise _reject("already_verified", "the pledge was verified already")
        outcome = event.body.get("outcome")
        if outcome not in VERIFICATION_OUTCOMES:
            raise _reject("bad_body", f"outcome must be one of {VERIFICATION_OUTCOMES}")
        acting = self._acting(staff)
        note = _text(event.body, "note", "verification")
        at = self._when(event)
        return {"verification": Verification(outcome, note, acting.id, at, event.id)}

    def _followed_up(self, case: Case, event: Event, staff: Staff | None) -> Changes:
        if not case.needs_follow_up:
            raise _reject("no_follow_up_needed", "no 差评 is waiting for a follow-up")
        acting = self._acting(staff)
        note = _text(event.body, "note", "follow_up")
        record = FollowUp(note, acting.id, self._when(event), event.id)
        return {"follow_ups": (*case.follow_ups, record), "needs_follow_up": False}
