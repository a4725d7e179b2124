"""From folded cases to what the station stores and shows: the cache row, a JSON snapshot,
deadlines, and the timeline in plain Chinese."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

from protocol.case import (
    CHINA_TIME,
    RECEIPT,
    RESULT_CODES,
    Case,
    CaseFolder,
    CaseRejected,
    CaseState,
    day_of,
)
from protocol.config import Federation, Matter
from protocol.event import Event
from protocol.ids import member_of
from protocol.workdays import Calendar

from ..storage import CaseRecord, FoldOutcome, StoredEvent
from ..storage.store import Refold


def plain(value: Any) -> Any:
    """A JSON-able copy of a case (dates as ISO text, enums as values, tuples as lists)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Matter):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        return [plain(v) for v in value]
    return value


def calendar_for(federation: Federation, authority: str) -> Calendar:
    config = federation.city(authority) or federation.home
    return config.calendar


def promised(terms: Matter, start: date, calendar: Calendar) -> tuple[date, str | None]:
    """承诺期限 from ``start``: the date and a warning when the calendar lacks a year."""
    if terms.promise_unit == "自然日":
        return start + timedelta(days=terms.promise_days), None
    deadline = calendar.add_workdays(start, terms.promise_days)
    assert deadline.date is not None  # no pauses: the count always ends
    return deadline.date, unknown_years_warning(deadline.assumed_years)


def unknown_years_warning(years: tuple[int, ...]) -> str | None:
    if not years:
        return None
    listed = "、".join(f"{y} 年" for y in years)
    return (
        f"联邦配置的日历未包含 {listed}的节假日安排，期限按周一至周五估算，请以审批部门通知为准。"
    )


def case_deadline(case: Case, federation: Federation) -> date | None:
    """The promised completion date: from acceptance once accepted, else from receipt."""
    calendar = calendar_for(federation, case.authority)
    if case.accepted_at is not None:
        deadline = case.deadline(calendar)
        return None if deadline is None else deadline.date
    return promised(case.terms, day_of(case.received), calendar)[0]


def case_record(case: Case, federation: Federation) -> CaseRecord:
    """The cache row of a folded case."""
    deadline = case_deadline(case, federation)
    snapshot = plain(case)
    snapshot["state_label"] = case.state.label
    return CaseRecord(
        number=case.number,
        state=case.state.value,
        matter=case.matter,
        matter_name=case.terms.name,
        authority=case.authority,
        window=case.window,
        pickup=case.pickup,
        location=case.location,
        applicant_name=case.applicant.name,
        applicant_id_masked=case.applicant.id_masked,
        applicant_id_hash=case.applicant.id_hash,
        received=case.received.astimezone(CHINA_TIME).isoformat(),  # one offset: sorts as text
        deadline=None if deadline is None else deadline.isoformat(),
        snapshot=snapshot,
    )


def refold_case(folder: CaseFolder, held: list[StoredEvent]) -> tuple[Case | None, dict[str, str]]:
    """Fold a case's events in storage order, 送达回执 last; events the fold refuses are
    skipped. A receipt changes nothing but what the case awaits, so folding it last changes
    only the order of ``history``; and a station restored from its hub (its own chain
    first, the events its receipts confirm after them: ``node restore``) does not owe
    them all again."""
    case: Case | None = None
    errors: dict[str, str] = {}
    for item in sorted(held, key=lambda item: item.event.type == RECEIPT):
        try:
            case = folder.apply(case, item.event)
        except CaseRejected as exc:
            errors[item.event.id] = f"{exc.reason}: {exc.detail}"
    return case, errors


def refolder(federation: Federation) -> Refold:
    """The store's refold callback under ``federation``."""
    folder = CaseFolder(federation)

    def refold(held: list[StoredEvent]) -> FoldOutcome:
        case, errors = refold_case(folder, held)
        record = None if case is None else case_record(case, federation)
        return FoldOutcome(record, errors, case)

    return refold


def state_label(state: str) -> str:
    try:
        return CaseState(state).label
    except ValueError:
        return state


def member_name(federation: Federation | None, member_id: str) -> str:
    if federation is not None:
        member = federation.member(member_id)
        if member is not None:
            return member.name
        authority = federation.authority(member_id)
        if authority is not None:
            return authority.name
    return member_id


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    return value.strip() if isinstance(value, str) else ""


def _items(body: Mapping[str, Any]) -> str:
    raw = body.get("items")
    if not isinstance(raw, list):
        return ""
    problems = [_text(i, "problem") for i in raw if isinstance(i, dict)]
    return "；".join(p for p in problems if p)


def describe(event: Event, federation: Federation | None, authority: str | None = None) -> str:
    """One line of the case timeline, in plain Chinese. Acts of the hub hosting the
    case's ``authority`` are named after the authority (部门), not the hub; so is its
    送达回执, while another window's reads "已送达<窗口>"."""
    body = event.body
    acting = authority if authority and member_of(authority) == event.author else event.author
    who = member_name(federation, acting)
    reason = _text(body, "reason")
    match event.type:
        case "case.submitted":
            return f"{who} 收件"
        case "case.correction_requested":
            return f"要求补正：{_items(body)}"
        case "case.corrected":
            return f"{who} 提交补正材料"
        case "case.accepted":
            return f"{who} 受理"
        case "case.not_accepted":
            return f"不予受理：{reason}"
        case "case.step":
            outcome = "通过" if body.get("outcome") == "pass" else "退回"
            opinion = _text(body, "opinion")
            return f"审查环节{outcome}" + (f"：{opinion}" if opinion else "")
        case "case.supplement_requested":
            return f"要求补办材料（计时暂停）：{_items(body)}"
        case "case.supplemented":
            return f"{who} 提交补办材料（恢复计时）"
        case "case.suspended":
            return f"进入特别程序（计时暂停）：{reason}"
        case "case.resumed":
            return "特别程序结束，恢复计时"
        case "case.extended":
            days = body.get("days")
            return f"延长办理期限 {days} 个工作日：{reason}"
        case "case.decided":
            code = body.get("result_code")
            label = RESULT_CODES.get(code, str(code)) if isinstance(code, int) else "办结"
            return f"办结（{label}）" + (f"：{reason}" if reason else "")
        case "case.delivered":
            method = _text(body, "method")
            return f"出件：{_text(body, 'collector')} 领取（{method}）"
        case "case.rated":
            return f"好差评：{body.get('score')} 分"
        case "case.withdrawn":
            return "申请人撤回申请" + (f"：{reason}" if reason else "")
        case "case.terminated":
            return f"异常终止：{reason}"
        case "case.received" if acting != event.author:
            return f"已送达审批部门（{who}已签收申请及材料）"
        case "case.received":
            return f"已送达{who}（已签收）"
        case "case.verified":
            found = "属实" if body.get("outcome") == "confirmed" else "不实"
            return f"告知承诺核查：承诺{found}"
        case "case.followed_up":
            return f"差评回访：{_text(body, 'note')}"
    return event.type


def arrived_at(held: list[StoredEvent], snapshot: Mapping[str, Any]) -> str | None:
    """When the authority's hub signed the 送达回执 of the submission (folded here), or None."""
    history = snapshot.get("history") or []
    authority = snapshot.get("authority")
    if not history or not isinstance(authority, str):
        return None
    host = member_of(authority)
    if {"event": history[0], "member": host} not in (snapshot.get("receipts") or []):
        return None
    for item in held:
        event = item.event
        if event.type == RECEIPT and event.author == host and event.body.get("event") == history[0]:
            return event.ts
    return None
