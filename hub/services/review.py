"""The reviewer's workbench (审批): queue, case file, and decisions signed by the hub.

A decision is an event of this hub's own chain: author = the hub's member id, ``body.by`` =
the staff id, ``to`` = the accepting window and the pickup window. It is folded first (the
fold is the rule book: a wrong role, a missing reason, an illegal move is refused with the
fold's reason and nothing is written), then appended to the chain, stored and routed in the
same transaction, so it reaches the windows' feeds the moment it commits. An approval
(``case.decided`` with result code 0) carries the result document sealed with the
department's seal key (电子签章), verifiable offline by anyone holding the config.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy.engine import Connection

from protocol.case import (
    AFTER_DECISION,
    OPEN_STATES,
    PAUSED,
    RECEIPT,
    RESULT_CODES,
    TRANSITIONS,
    Case,
    day_of,
)
from protocol.config import Federation
from protocol.errors import RemoteProtocolError
from protocol.event import Event
from protocol.ids import department_of, member_of
from protocol.seal import seal_result

from ..core import Hub
from ..logs import log, mask
from ..storage.store import CaseRecord
from .casecodec import CodecError, decode_case
from .cases import FOLLOW_UP, VERIFY, fold_txn, load_case_txn
from .ingest import Effects, Router, record_effects
from .staff import StaffSession

logger = logging.getLogger("tongban.hub.review")

#: Workbench actions → the event type each signs.
ACTIONS: Final[Mapping[str, str]] = {
    "accept": "case.accepted",
    "not-accept": "case.not_accepted",
    "request-correction": "case.correction_requested",
    "step": "case.step",
    "request-supplement": "case.supplement_requested",
    "suspend": "case.suspended",
    "resume": "case.resumed",
    "extend": "case.extended",
    "decide": "case.decided",
    "terminate": "case.terminated",
    "verify": "case.verified",
    "follow-up": "case.followed_up",
}
DECISIONS: Final = {0: "准予", 1: "不予许可", 5: "退件", 6: "不予受理"}
MAX_TEXT: Final = 2000
_LABELS: Final = {"reason": "理由", "opinion": "意见", "note": "情况说明"}


def _authority(session: StaffSession, hub: Hub) -> str:
    if session.staff.department is None:
        raise RemoteProtocolError("wrong_department", "该工作人员不属于任何审批部门")
    return f"{hub.me}:{session.staff.department}"


def _check_department(session: StaffSession, hub: Hub, authority: str) -> None:
    if member_of(authority) != hub.me or department_of(authority) != session.staff.department:
        raise RemoteProtocolError("wrong_department", "该办件不属于本部门")


def _applicant(case: Case) -> dict[str, str]:
    return {"name": case.applicant.name, "id_masked": mask(case.applicant.id_masked)}


def _deadline(case: Case, federation: Federation) -> dict[str, Any] | None:
    config = federation.city(case.authority)
    if config is None or case.accepted_at is None:
        return None
    deadline = case.deadline(config.calendar)
    if deadline is None:
        return None
    return {
        "date": None if deadline.date is None else deadline.date.isoformat(),
        "paused": case.state in PAUSED,
        "assumed_years": list(deadline.assumed_years),
    }


def _deemed_deadline(case: Case, federation: Federation, today: date) -> dict[str, Any] | None:
    """The time limit of a case not yet accepted that counts as accepted from receipt."""
    config = federation.city(case.authority)
    deadline = None if config is None else case.deadline(config.calendar, today)
    if deadline is None:
        return None
    return {
        "date": None if deadline.date is None else deadline.date.isoformat(),
        "paused": False,
        "assumed_years": list(deadline.assumed_years),
        "deemed": True,
    }


def _pledge(case: Case, today: date) -> dict[str, Any] | None:
    if case.pledge is None:
        return None
    due = case.pledge.deadline
    return {
        "text": case.pledge.text,
        "deadline": None if due is None else due.isoformat(),
        "overdue": bool(case.outstanding) and due is not None and today > due,
    }


def summary(
    case: Case, federation: Federation, today: date, last_error: str | None
) -> dict[str, Any]:
    """One row of the queue (personal data masked)."""
    config = federation.city(case.authority)
    return {
        "number": case.number,
        "state": case.state.value,
        "state_label": case.state.label,
        "matter": case.matter,
        "matter_name": case.terms.name,
        "applicant": _applicant(case),
        "window": case.window,
        "pickup": case.pickup,
        "received": case.received.isoformat(),
        "deadline": _deadline(case, federation) or _deemed_deadline(case, federation, today),
        "deemed_accepted": config is not None and case.deemed_accepted(config.calendar, today),
        "deemed": case.deemed,
        "outstanding": list(case.outstanding),
        "pledge": _pledge(case, today),
        "extension_days": case.extension_days,
        "needs_verification": case.needs_verification,
        "needs_follow_up": case.needs_follow_up,
        "last_error": last_error,
    }


def _offered(case: Case, action: str) -> bool:
    """Beyond the table: what the fold would refuse anyway is not offered on the page."""
    if action == "extend":
        return not case.extension_days  # one 延长 per case
    if action == "verify":
        return case.needs_verification
    if action == "follow-up":
        return case.needs_follow_up
    if action == "terminate" and case.state in AFTER_DECISION:
        return case.verification is not None and case.verification.outcome == "false"
    return True


def actions_for(case: Case) -> list[str]:
    """The workbench actions the table allows from the case's state."""
    return [
        a for a, kind in ACTIONS.items() if (case.state, kind) in TRANSITIONS and _offered(case, a)
    ]


async def queue(hub: Hub, session: StaffSession) -> list[dict[str, Any]]:
    """Open cases of the staff member's department at this hub, oldest first."""
    federation = hub.view.require()
    authority = _authority(session, hub)
    today = day_of(hub.now())
    rows = await hub.store.cases([authority], [s.value for s in OPEN_STATES])
    out = []
    for row in rows:
        try:
            case = decode_case(row.fold)
        except CodecError:
            continue  # re-folded on its next event; listed again then
        out.append(summary(case, federation, today, row.last_error))
    return out


def _sent_to(
    case: Case, event: Event, confirmed_at: Mapping[tuple[str, str], str]
) -> list[dict[str, Any]]:
    """Each member an act of this hub was sent to, and when it confirmed it (送达回执)."""
    order = [member_of(address) for address in event.to]
    found = sorted(case.addressees(event.id), key=lambda pair: order.index(pair[0]))
    return [
        {"member": member, "confirmed": ok, "at": confirmed_at.get((event.id, member))}
        for member, ok in found
    ]


def _timeline_entry(
    event: Event,
    folded: bool,
    refusal: Mapping[str, Any] | None,
    sent_to: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body = event.body
    entry: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "author": event.author,
        "seq": event.seq,
        "ts": event.ts,
        "by": body.get("by") if isinstance(body.get("by"), str) else None,
        "folded": folded,
    }
    for name in ("opinion", "reason", "result_code", "step", "outcome"):
        value = body.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            entry[name] = mask(value) if isinstance(value, str) else value
    if isinstance(body.get("result"), dict):
        entry["result"] = body["result"]
    if refusal is not None:
        entry["refused"] = {"reason": refusal.get("reason"), "detail": refusal.get("detail")}
    if sent_to is not None:
        entry["sent_to"] = sent_to
    if event.type == RECEIPT and isinstance(body.get("event"), str):
        entry["confirms"] = body["event"]
    return entry


def _result_of(events: list[Event], history: set[str]) -> dict[str, Any] | None:
    """The sealed result document of the case's (folded) approval, if any."""
    for event in reversed(events):
        if event.type == "case.decided" and event.id in history:
            result = event.body.get("result")
            return result if isinstance(result, dict) else None
    return None


async def tasks(hub: Hub, session: StaffSession) -> dict[str, list[dict[str, Any]]]:
    """The department's work items besides the queue: 核查 of 告知承诺 approvals and 回访 of
    差评, oldest first."""
    federation = hub.view.require()
    authority = _authority(session, hub)
    today = day_of(hub.now())
    out: dict[str, list[dict[str, Any]]] = {}
    for task in (VERIFY, FOLLOW_UP):
        rows = []
        for row in await hub.store.task_cases([authority], task):
            try:
                case = decode_case(row.fold)
            except CodecError:
                continue
            item = summary(case, federation, today, row.last_error)
            if case.ratings:
                item["rating"] = {
                    "score": case.ratings[-1].score,
                    "comment": case.ratings[-1].comment,
                }
            rows.append(item)
        out[task] = rows
    return out


async def case_file(hub: Hub, session: StaffSession, number: str) -> dict[str, Any]:
    """The whole file: state, terms, materials with blob links, timeline, deadline, actions."""
    federation = hub.view.require()
    record = await hub.store.case(number)
    if record is None:
        raise RemoteProtocolError("no_such_case", f"没有办件 {mask(number[:40])}")
    _check_department(session, hub, record.authority)
    case = decode_case(record.fold)
    refusals = {r.get("event"): r for r in record.rejected}
    events = [Event.from_json(s.wire) for s in await hub.store.events_of_case(number)]
    history = set(case.history)
    confirmed_at = {
        (e.body["event"], e.author): e.ts
        for e in events
        if e.type == RECEIPT and e.id in history and isinstance(e.body.get("event"), str)
    }
    materials = []
    for m in case.materials:
        blobs = []
        for blob in m.blobs:
            held = await hub.store.blob_length(blob)
            blobs.append({"hash": blob, "url": f"/v1/blobs/{blob}", "held": held is not None})
        materials.append({"id": m.id, "name": m.name, "mode": m.mode, "blobs": blobs})
    out = summary(case, federation, day_of(hub.now()), record.last_error)
    out.update(
        {
            "authority": case.authority,
            "location": case.location,
            "agent": None
            if case.agent is None
            else {"name": case.agent.name, "id_masked": mask(case.agent.id_masked)},
            "materials": materials,
            "outstanding": list(case.outstanding),
            "items": [
                {"problem": i.problem, "material": i.material, "field": i.field} for i in case.items
            ],
            "steps": [{"name": s.name, "role": s.role} for s in case.terms.steps],
            "next_step": case.step,
            "steps_taken": [
                {
                    "step": s.step,
                    "name": s.name,
                    "outcome": s.outcome,
                    "by": s.by,
                    "at": s.at.isoformat(),
                    "opinion": s.opinion,
                }
                for s in case.steps
            ],
            "result_code": case.result_code,
            "reason": case.reason,
            "ratings": [
                {"score": r.score, "comment": r.comment, "by": r.by, "at": r.at.isoformat()}
                for r in case.ratings
            ],
            "follow_ups": [
                {"note": f.note, "by": f.by, "at": f.at.isoformat()} for f in case.follow_ups
            ],
            "verification": None
            if case.verification is None
            else {
                "outcome": case.verification.outcome,
                "note": case.verification.note,
                "by": case.verification.by,
                "at": case.verification.at.isoformat(),
            },
            "result": _result_of(events, history),
            "timeline": [
                _timeline_entry(
                    e,
                    e.id in history,
                    refusals.get(e.id),
                    _sent_to(case, e, confirmed_at)
                    if e.author == hub.me and e.type != RECEIPT
                    else None,
                )
                for e in events
            ],
            "actions": actions_for(case),
        }
    )
    return out


# -- decisions -----------------------------------------------------------------------------


def _text(payload: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = payload.get(name, "")
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise RemoteProtocolError("bad_request", f"{name} 应为不超过 {MAX_TEXT} 字的文本")
    if required and not value.strip():
        raise RemoteProtocolError("missing_reason", f"请填写{_LABELS.get(name, name)}")
    return value


def _number(value: Any) -> Any:
    """Form posts send numbers as text; JSON sends integers. Anything else is left as is."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 6:
        return int(value)
    return value


def _body(
    hub: Hub,
    session: StaffSession,
    case: Case,
    action: str,
    payload: Mapping[str, Any],
    federation: Federation,
    ts: str,
) -> dict[str, Any]:
    """The event body of a workbench action, in the shapes ``protocol.case`` folds."""
    body: dict[str, Any] = {"by": session.staff.id, "opinion": _text(payload, "opinion")}
    if action in ("not-accept", "suspend", "terminate"):
        body["reason"] = _text(payload, "reason", required=True)
    elif action in ("request-correction", "request-supplement"):
        items = payload.get("items")
        if not isinstance(items, list) or not items or len(items) > 100:
            raise RemoteProtocolError("bad_request", "请一次性列出全部需补正的事项")
        body["items"] = items
    elif action == "extend":
        body["days"] = _number(payload.get("days"))
        body["reason"] = _text(payload, "reason", required=True)
    elif action == "verify":
        body["outcome"] = payload.get("outcome")
        body["note"] = _text(payload, "note", required=True)
    elif action == "follow-up":
        body["note"] = _text(payload, "note", required=True)
    elif action == "step":
        body.update(
            step=_number(payload.get("step", case.step)),
            outcome=payload.get("outcome", "pass"),
        )
        if payload.get("to_step") not in (None, ""):
            body["to_step"] = _number(payload["to_step"])
    elif action == "decide":
        code = _number(payload.get("result_code"))
        if type(code) is not int or code not in RESULT_CODES:
            raise RemoteProtocolError(
                "bad_request", f"result_code 应为 {sorted(RESULT_CODES)} 之一"
            )
        body["result_code"] = code
        body["reason"] = _text(payload, "reason", required=code != 0)
        if code == 0:
            body["result"] = _sealed_result(hub, case, payload, federation, ts)
    return body


def _sealed_result(
    hub: Hub, case: Case, payload: Mapping[str, Any], federation: Federation, ts: str
) -> dict[str, Any]:
    department = department_of(case.authority)
    seal = None if department is None else hub.seals.get(department)
    if seal is None:
        raise RemoteProtocolError("no_seal_key", f"本枢纽没有 {case.authority} 的电子印章")
    authority = federation.authority(case.authority)
    doc: dict[str, Any] = {
        "case": case.number,
        "matter": case.matter,
        "matter_name": case.terms.name,
        "applicant": _applicant(case),
        "result_code": 0,
        "decision": DECISIONS[0],
        "authority": case.authority,
        "authority_name": case.authority if authority is None else authority.name,
        "issued": ts,
    }
    if case.terms.result_name:
        doc["result_name"] = case.terms.result_name
    for name in ("licence_no", "valid_from", "valid_until"):
        value = payload.get(name)
        if value is not None:
            doc[name] = _text(payload, name)
    return seal_result(doc, seal)


@dataclass(frozen=True)
class Decision:
    """A signed workbench event and the case it made."""

    event: Event
    case: Case
    effects: Effects


def _recipients(case: Case) -> tuple[str, ...]:
    return tuple(dict.fromkeys((case.window, case.pickup)))


BodyMaker = Callable[[Case, str], dict[str, Any]]


def sign_txn(
    hub: Hub,
    c: Connection,
    federation: Federation,
    number: str,
    kind: str,
    make_body: BodyMaker,
    at: datetime,
    check: Callable[[CaseRecord], None] | None = None,
) -> Decision:
    """Sign one event of this hub on a case, fold it (strictly: a refusal raises and nothing
    is written), append it to the hub's chain, store and route it, in one transaction."""
    ts = at.isoformat(timespec="seconds")
    record, case = load_case_txn(hub.store, c, federation, number, lock=True)
    if record is None or case is None:
        raise RemoteProtocolError("no_such_case", f"没有办件 {mask(number[:40])}")
    if check is not None:
        check(record)
    body = make_body(case, ts)
    head_seq, head_id = hub.store.chain_head_txn(c, hub.me)
    event = Event.create(
        hub.key,
        author=hub.me,
        seq=head_seq + 1,
        prev=head_id,
        ts=ts,
        type=kind,
        case=number,
        to=_recipients(case),
        body=body,
    )
    outcome = fold_txn(hub.store, c, federation, event, at, strict=True)
    assert outcome.case is not None
    router = Router(hub.store, federation, hub.me, c, source=hub.me, at=at)
    router.store_event(event, mode="own", fold=False)
    hub.store.set_chain_head_txn(c, hub.me, event.seq, event.id)
    effects = router.flush()
    me = federation.home.members.get(hub.me)
    effects.relay = effects.relay or (me is not None and me.parent is not None)
    return Decision(event, outcome.case, effects)


def after_commit(hub: Hub, decision: Decision, staff: str | None) -> None:
    """Wake the feeds and the relay for a committed decision; log and count it."""
    hub.committed(decision.effects.recipients, decision.effects.relay)
    record_effects(hub.metrics, decision.effects)
    log(
        logger,
        "review.signed",
        case=decision.case.number,
        type=decision.event.type,
        staff=staff,
        seq=decision.event.seq,
        state=decision.case.state.value,
    )


async def act(
    hub: Hub, session: StaffSession, number: str, action: str, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """Sign, fold, store and route one workbench action on a case."""
    kind = ACTIONS.get(action)
    if kind is None:
        raise RemoteProtocolError("not_found", f"no action {action[:30]!r}")
    federation = hub.view.require()

    def check(record: CaseRecord) -> None:
        _check_department(session, hub, record.authority)

    def make_body(case: Case, ts: str) -> dict[str, Any]:
        return _body(hub, session, case, action, payload, federation, ts)

    def txn(c: Connection) -> Decision:
        return sign_txn(hub, c, federation, number, kind, make_body, hub.now(), check)

    decision = await hub.db.run("review_" + action, txn)
    after_commit(hub, decision, session.staff.id)
    return {
        "event": decision.event.id,
        "type": kind,
        "state": decision.case.state.value,
        "state_label": decision.case.state.label,
        "result": decision.event.body.get("result"),
    }


def loads_payload(raw: bytes) -> Mapping[str, Any]:
    """A workbench request body (JSON object, may be empty)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the stack
        raise RemoteProtocolError("bad_request", "请求应为 JSON 对象") from None
    if not isinstance(value, dict):
        raise RemoteProtocolError("bad_request", "请求应为 JSON 对象")
    return value
