"""办件列表, 办件详情 and 出件: what the window sees of its cases and the one act it signs
after the decision."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from protocol.case import CHINA_TIME, RECEIPT, CaseFolder, CaseRejected, CaseState
from protocol.config import Federation
from protocol.event import Event
from protocol.seal import result_text, verify_result

from ..logs import log
from ..privacy import id_hash, mask_id, normalize_id
from ..storage import CaseRecord, ClerkRow, StoredEvent
from ..storage.store import MakeCaseEvent
from .accept import receipt
from .context import NodeContext
from .errors import ServiceError, not_found, refused
from .folding import arrived_at, case_record, describe, member_name, refold_case, state_label
from .messages import refusal

logger = logging.getLogger("node.cases")

DELIVERY_METHODS = ("窗口领取", "代为领取", "邮寄送达", "电子送达")
#: States a case may be withdrawn from (before the decision), decided in, supplemented in.
OPEN = frozenset(
    s.value
    for s in (
        CaseState.SUBMITTED,
        CaseState.CORRECTION,
        CaseState.ACCEPTED,
        CaseState.IN_REVIEW,
        CaseState.AWAITING_SUPPLEMENT,
        CaseState.SUSPENDED,
    )
)
DECIDABLE = frozenset(
    s.value for s in (CaseState.SUBMITTED, CaseState.ACCEPTED, CaseState.IN_REVIEW)
)
WAITING = frozenset(s.value for s in (CaseState.CORRECTION, CaseState.AWAITING_SUPPLEMENT))


def _delegated_here(federation: Federation, code: str, me: str) -> bool:
    found = federation.matter(code)
    return found is not None and found[1].delegated(me)


_ID_LIKE = re.compile(r"^(?:[0-9]{17}[0-9Xx]|[0-9]{15})\Z")


def case_row(record: CaseRecord, federation: Federation | None) -> dict[str, Any]:
    """One line of the 办件列表 (ID number masked)."""
    return {
        "number": record.number,
        "state": record.state,
        "state_label": state_label(record.state),
        "matter": {"code": record.matter, "name": record.matter_name},
        "applicant": {"name": record.applicant_name, "id_masked": record.applicant_id_masked},
        "authority": {"id": record.authority, "name": member_name(federation, record.authority)},
        "window": {"id": record.window, "name": member_name(federation, record.window)},
        "pickup": {"id": record.pickup, "name": member_name(federation, record.pickup)},
        "received": record.received,
        "deadline": record.deadline,
        "updated_at": record.updated_at,
    }


async def list_cases(
    ctx: NodeContext,
    query: str = "",
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Cases newest first; ``query`` matches a case number or applicant name fragment, or
    a whole ID number (compared by hash, never stored in the cache)."""
    text = query.strip()
    if state is not None and state not in {s.value for s in CaseState}:
        raise refused("bad_state", "未知的办件状态。", field="state")
    hashed = id_hash(text) if _ID_LIKE.match(text) else None
    limit = max(1, min(limit, 200))
    rows, total = await ctx.store.list_cases(
        text=text or None, id_hash=hashed, state=state, limit=limit, offset=max(0, offset)
    )
    federation = ctx.configs.federation
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "cases": [case_row(r, federation) for r in rows],
    }


async def _materials(ctx: NodeContext, snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for material in snapshot.get("materials", []):
        files = []
        for blob in material.get("blobs", []):
            row = await ctx.store.blob(blob)
            upload = await ctx.store.upload_state(blob)
            files.append(
                {
                    "hash": blob,
                    "name": row.name if row else None,
                    "size": row.size if row else None,
                    "mime": row.mime if row else None,
                    "held_here": row is not None,
                    "uploaded": None if upload is None else upload.done,
                }
            )
        out.append(
            {
                "id": material["id"],
                "name": material["name"],
                "mode": material["mode"],
                "files": files,
            }
        )
    return out


def _result(held: list[StoredEvent], federation: Federation | None) -> dict[str, Any] | None:
    """The sealed result document of the latest 办结, with its seal checked offline."""
    decided = [s.event for s in held if s.event.type == "case.decided" and s.fold_error is None]
    if not decided:
        return None
    body = decided[-1].body
    doc = body.get("result")
    out: dict[str, Any] = {
        "result_code": body.get("result_code"),
        "reason": body.get("reason", ""),
        "opinion": body.get("opinion", ""),
        "document": doc if isinstance(doc, dict) else None,
    }
    if isinstance(doc, dict) and federation is not None:
        check = verify_result(doc, federation)
        out["seal"] = {
            "genuine": check.genuine,
            "reason": check.reason,
            "authority": check.authority,
            "authority_name": check.authority_name,
        }
        out["text"] = result_text(doc)
    return out


async def case_detail(ctx: NodeContext, number: str) -> dict[str, Any]:
    """办件详情: the case, its materials, its timeline in Chinese, the result, what the
    clerk may do next, and (for cases accepted here) the receipt again. The 送达回执 this
    station signed itself are left out of the timeline: they are bookkeeping, not news."""
    record = await ctx.store.case(number)
    if record is None:
        raise not_found("case", "没有找到该办件。")
    held = await ctx.store.case_events(number)
    sync = await ctx.store.sync_state()
    federation = ctx.configs.federation
    me = ctx.station.id
    timeline = []
    for item in held:
        event = item.event
        own = event.author == me
        if own and event.type == RECEIPT:
            continue
        timeline.append(
            {
                "event_id": event.id,
                "type": event.type,
                "at": event.ts,
                "author": event.author,
                "author_name": member_name(federation, event.author),
                "text": describe(event, federation, record.authority),
                "own": own,
                "synced": (event.seq <= sync.custody_seq) if own else None,
                "fold_error": item.fold_error,
            }
        )
    can_deliver = record.pickup == me and record.state == CaseState.DECIDED.value
    out: dict[str, Any] = {
        "case": case_row(record, federation),
        "snapshot": record.snapshot,
        "materials": await _materials(ctx, record.snapshot),
        "timeline": timeline,
        "arrived": arrived_at(held, record.snapshot),  # 已送达审批部门
        "result": _result(held, federation),
        "actions": {
            "deliver": can_deliver,
            "delivery_methods": list(DELIVERY_METHODS),
            "withdraw": record.window == me and record.state in OPEN,
            "rate": record.state in (CaseState.DELIVERED.value, CaseState.RATED.value),
            "decide": record.window == me
            and record.state in DECIDABLE
            and federation is not None
            and _delegated_here(federation, record.matter, me),
            "supplement": record.state in WAITING,
        },
    }
    if record.window == me and federation is not None:
        private = await ctx.store.case_private(number)  # the query code is kept here only
        out["receipt"] = receipt(
            record, federation, None if private is None else private.query_code
        )
    return out


async def deliver(
    ctx: NodeContext,
    number: str,
    *,
    collector: str,
    method: str,
    when: datetime | None = None,
    collector_id_number: str | None = None,
    note: str = "",
    clerk: ClerkRow | None = None,
) -> dict[str, Any]:
    """出件: record that the result was handed out (``case.delivered``), only at the pickup
    window and only after 办结. Returns the case detail."""
    federation = ctx.configs.require()
    record = await ctx.store.case(number)
    if record is None:
        raise not_found("case", "没有找到该办件。")
    me = ctx.station.id
    if record.pickup != me:
        raise ServiceError(
            "not_the_pickup",
            f"本窗口不是该办件的出件窗口（出件窗口：{member_name(federation, record.pickup)}）。",
            status=409,
        )
    if record.state != CaseState.DECIDED.value:
        raise ServiceError(
            "not_decided",
            f"办件尚未办结，不能出件（当前状态：{state_label(record.state)}）。",
            status=409,
        )
    name = collector.strip()
    if not name or len(name) > 50:
        raise refused("bad_collector", "请填写领取人姓名。", field="collector")
    if method not in DELIVERY_METHODS:
        raise refused(
            "bad_method", f"送达方式应为：{'、'.join(DELIVERY_METHODS)}。", field="method"
        )
    now = ctx.now()
    handed = (when or now).astimezone(CHINA_TIME)
    if handed > now:
        raise refused("bad_when", "出件时间不能晚于当前时间。", field="when")
    body: dict[str, Any] = {
        "collector": name,
        "method": method,
        "at": handed.isoformat(timespec="seconds"),
    }
    if collector_id_number and collector_id_number.strip():
        body["collector_id_masked"] = mask_id(normalize_id(collector_id_number))
    if clerk is not None:
        body["clerk"] = clerk.username
    if note.strip():
        body["note"] = note.strip()[:500]
    to = [record.authority] + ([record.window] if record.window != me else [])
    event, _ = await sign_on_case(ctx, federation, number, "case.delivered", body, to)
    log(logger, "case.delivered", case=number, seq=event.seq, method=method)
    return await case_detail(ctx, number)


def case_maker(
    ctx: NodeContext,
    federation: Federation,
    number: str,
    type: str,
    body: dict[str, Any],
    to: list[str],
) -> MakeCaseEvent:
    """The store callback that signs the next event of a case, folded on its events as
    stored (a refusal of the fold becomes the clerk's Chinese message)."""
    me = ctx.station.id
    ts = ctx.now().isoformat(timespec="seconds")
    folder = CaseFolder(federation)

    def make(held: list[StoredEvent], seq: int, prev: str | None) -> tuple[Event, CaseRecord]:
        case, _ = refold_case(folder, held)
        if case is None:
            raise ServiceError("no_such_case", "该办件的记录不完整，不能办理。", status=409)
        event = Event.create(
            ctx.key, author=me, seq=seq, prev=prev, ts=ts, type=type, case=number, to=to, body=body
        )
        try:
            folded = folder.apply(case, event)
        except CaseRejected as exc:
            raise refusal(exc) from None
        return event, case_record(folded, federation)

    return make


async def sign_on_case(
    ctx: NodeContext,
    federation: Federation,
    number: str,
    type: str,
    body: dict[str, Any],
    to: list[str],
    blob_hashes: list[str] | None = None,
) -> tuple[Event, CaseRecord]:
    """Sign, fold and store the window's next event of a case; wake the sync."""
    make = case_maker(ctx, federation, number, type, body, to)
    done = await ctx.store.append_to_case(number, make, ctx.stamp(), blob_hashes or ())
    ctx.wake()
    return done


def recipients(record: CaseRecord, me: str) -> list[str]:
    """Who must fold a window's act: the authority, and the accepting and pickup windows
    when they are not this one."""
    return list(
        dict.fromkeys(a for a in (record.authority, record.window, record.pickup) if a != me)
    )
