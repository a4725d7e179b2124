"""What the window signs on a case after 收件: 补齐补正 / 补办 (at any window), 即办 (a
delegated matter decided on the spot), 撤回 and 好差评.

补正 at another window: the applicant comes with the case number and their ID card. The
clerk types both; the window compares the ID's hash with the case's applicant and, when it
does not hold the case (another window accepted it), asks its parent hub for the case's
events (``POST /v1/cases/lookup``, answered only for the applicant's own case while it waits
for 补正/补办). A successful check is remembered for the clerk's session for
:data:`CHECK_TTL` seconds: the supplement itself needs it. The new scans are stored as
blobs and named by the signed ``case.corrected`` / ``case.supplemented``, and they follow
the event up like every material.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from protocol.case import CaseState
from protocol.config import Federation
from protocol.event import Event
from protocol.http.client import PeerError, PeerFailure
from protocol.keys import KeyPair
from protocol.seal import seal_result

from ..logs import log
from ..privacy import id_hash, normalize_id
from ..storage import BlobRow, CaseRecord, ClerkRow
from .accept import MAX_FILE_BYTES, MaterialInput, _safe_mime, _safe_name
from .cases import case_detail, case_maker, recipients, sign_on_case
from .context import NodeContext
from .errors import ServiceError, not_found, refused
from .folding import member_name, state_label

logger = logging.getLogger("node.window")

CHECK_TTL: Final = 30 * 60.0
WAITING: Final = {
    CaseState.CORRECTION.value: "case.corrected",
    CaseState.AWAITING_SUPPLEMENT.value: "case.supplemented",
}
KIND_LABELS: Final = {"case.corrected": "补齐补正", "case.supplemented": "补办材料"}
DECISIONS: Final = {0: "准予", 1: "不予许可", 5: "退件"}
_NOT_FOUND: Final = "没有找到等待补正或补办的该办件，请核对办件编号和申请人证件号码。"


@dataclass
class IdentityChecks:
    """Cases whose applicant's ID a clerk session checked (in memory: a restart asks again)."""

    clock: Callable[[], float] = time.monotonic
    _until: dict[tuple[str, str], float] = field(default_factory=dict)

    def put(self, session: str, number: str) -> None:
        now = self.clock()
        self._until = {k: t for k, t in self._until.items() if t > now}
        self._until[(session, number)] = now + CHECK_TTL

    def ok(self, session: str, number: str) -> bool:
        return self._until.get((session, number), 0.0) > self.clock()


CHECKED = IdentityChecks()


def _waiting_view(record: CaseRecord, federation: Federation | None) -> dict[str, Any]:
    snap = record.snapshot
    terms = snap.get("terms", {})
    names = {m["id"]: m["name"] for m in terms.get("materials", [])}
    held = {m["id"]: m for m in snap.get("materials", [])}
    return {
        "number": record.number,
        "state": record.state,
        "state_label": state_label(record.state),
        "kind": WAITING[record.state],
        "kind_label": KIND_LABELS[WAITING[record.state]],
        "matter": {"code": record.matter, "name": record.matter_name},
        "applicant": {"name": record.applicant_name, "id_masked": record.applicant_id_masked},
        "authority": {"id": record.authority, "name": member_name(federation, record.authority)},
        "window": {"id": record.window, "name": member_name(federation, record.window)},
        "items": [
            {
                "material": item.get("material"),
                "material_name": names.get(item.get("material") or "", ""),
                "field": item.get("field"),
                "problem": item.get("problem", ""),
            }
            for item in snap.get("items", [])
        ],
        "materials": [
            {
                "id": m["id"],
                "name": m["name"],
                "required": m.get("required", True),
                "mode": held[m["id"]]["mode"] if m["id"] in held else "absent",
                "files": len(held[m["id"]].get("blobs", [])) if m["id"] in held else 0,
            }
            for m in terms.get("materials", [])
        ],
    }


async def find_waiting(
    ctx: NodeContext, number: str, id_number: str, session: str
) -> dict[str, Any]:
    """补正 lookup: the case ``number`` of the applicant whose ID is ``id_number``, waiting
    for 补正/补办, fetched from the hub if this window does not hold it."""
    number = number.strip()
    if not number or not id_number.strip():
        raise refused("bad_request", "请填写办件编号和申请人证件号码。", field="number")
    hashed = id_hash(normalize_id(id_number))
    record = await ctx.store.case(number)
    if (record is None or record.state not in WAITING) and ctx.fetch_case is not None:
        try:
            await ctx.fetch_case(number, hashed)
        except PeerError as exc:
            if exc.reason == "not_waiting":
                raise ServiceError(
                    "not_waiting", "该办件目前不需要补正或补办。", status=409
                ) from None
            if exc.reason not in ("no_such_case", "bad_request"):
                raise ServiceError(
                    "hub_refused", f"上级拒绝调取该办件（{exc.reason}）。", status=502
                ) from None
        except PeerFailure:
            if record is None:
                raise ServiceError(
                    "hub_unreachable",
                    "本窗口没有该办件，且暂时无法连接上级调取，请稍后再试。",
                    status=503,
                ) from None
        record = await ctx.store.case(number)
    if record is None or record.applicant_id_hash != hashed:
        raise ServiceError("no_such_case", _NOT_FOUND, status=404)
    if record.state not in WAITING:
        raise ServiceError(
            "not_waiting",
            f"该办件目前不需要补正或补办（当前状态：{state_label(record.state)}）。",
            status=409,
        )
    CHECKED.put(session, number)
    log(logger, "supplement.found", case=number, fetched=record.window != ctx.station.id)
    return _waiting_view(record, ctx.configs.federation)


async def supplement(
    ctx: NodeContext,
    number: str,
    materials: tuple[MaterialInput, ...],
    session: str,
    *,
    note: str = "",
    clerk: ClerkRow | None = None,
) -> dict[str, Any]:
    """Sign ``case.corrected`` (补正) or ``case.supplemented`` (补办) with the new scans.

    A material with files replaces what the case held for it; the rest stays as it was.
    """
    federation = ctx.configs.require()
    if not CHECKED.ok(session, number):
        raise ServiceError(
            "identity_not_checked", "请先核验申请人身份（办件编号和证件号码）。", status=403
        )
    record = await ctx.store.case(number)
    if record is None:
        raise not_found("case", "没有找到该办件。")
    kind = WAITING.get(record.state)
    if kind is None:
        raise ServiceError(
            "not_waiting",
            f"该办件目前不需要补正或补办（当前状态：{state_label(record.state)}）。",
            status=409,
        )
    checklist = {m["id"]: m for m in record.snapshot.get("terms", {}).get("materials", [])}
    files: dict[str, bytes] = {}
    names: dict[str, tuple[str, str]] = {}
    updated: dict[str, list[str]] = {}
    for item in materials:
        spec = checklist.get(item.id)
        if spec is None:
            raise refused("unknown_material", f"材料 {item.id} 不在该事项的材料清单中。", item.id)
        for upload in item.files:
            if not upload.data:
                raise refused("empty_file", f"材料「{spec['name']}」的文件是空的。", item.id)
            if len(upload.data) > MAX_FILE_BYTES:
                raise refused("file_too_large", f"材料「{spec['name']}」的文件过大。", item.id)
            digest = hashlib.sha256(upload.data).hexdigest()
            files[digest] = upload.data
            names[digest] = (_safe_name(upload.name), _safe_mime(upload.mime))
            updated.setdefault(item.id, [])
            if digest not in updated[item.id]:
                updated[item.id].append(digest)
    note = note.strip()
    if not updated and not note:
        raise refused("nothing_supplied", "请上传补正材料，或填写补正说明。", "materials")
    entries = {m["id"]: dict(m) for m in record.snapshot.get("materials", [])}
    fresh = [
        {"id": mid, "name": checklist[mid]["name"], "mode": "provided", "blobs": blobs}
        for mid, blobs in updated.items()
    ]
    if kind == "case.corrected":  # the whole list, as it now stands
        entries.update((e["id"], e) for e in fresh)
        listed = [
            {k: e[k] for k in ("id", "name", "mode", "blobs") if k in e} for e in entries.values()
        ]
    else:  # 补办: only what is new; the fold merges it into the case
        listed = fresh
    body: dict[str, Any] = {"materials": listed}
    if note:
        body["note"] = note[:500]
    if clerk is not None:
        body["clerk"] = clerk.username
    at = ctx.stamp()
    for digest, data in files.items():
        stored = await asyncio.to_thread(ctx.blobs.put, data, digest)
        name, mime = names[digest]
        await ctx.store.add_blob(BlobRow(stored, len(data), name, mime), at)
    me = ctx.station.id
    event, _ = await sign_on_case(
        ctx, federation, number, kind, body, recipients(record, me), list(files)
    )
    log(logger, kind, case=number, seq=event.seq, files=len(files))
    return await case_detail(ctx, number)


async def withdraw(
    ctx: NodeContext, number: str, reason: str, clerk: ClerkRow | None = None
) -> dict[str, Any]:
    """撤回: the applicant withdraws before the decision, at the window that accepted."""
    federation = ctx.configs.require()
    record = await _own_case(ctx, number)
    if record.window != ctx.station.id:
        raise ServiceError(
            "not_the_window",
            f"只能在受理窗口（{member_name(federation, record.window)}）撤回申请。",
            status=409,
        )
    reason = reason.strip()
    if not reason:
        raise refused("missing_reason", "请填写撤回原因。", "reason")
    body: dict[str, Any] = {"reason": reason[:500]}
    if clerk is not None:
        body["clerk"] = clerk.username
    event, _ = await sign_on_case(
        ctx, federation, number, "case.withdrawn", body, recipients(record, ctx.station.id)
    )
    log(logger, "case.withdrawn", case=number, seq=event.seq)
    return await case_detail(ctx, number)


async def rate(
    ctx: NodeContext, number: str, score: int, comment: str = "", clerk: ClerkRow | None = None
) -> dict[str, Any]:
    """好差评 after 出件: a rating 1–5 is added (never replaces an earlier one)."""
    federation = ctx.configs.require()
    record = await _own_case(ctx, number)
    if not 1 <= score <= 5:
        raise refused("bad_score", "评价应为 1 至 5 分。", "score")
    body: dict[str, Any] = {"score": score, "comment": comment.strip()[:500]}
    event, _ = await sign_on_case(
        ctx, federation, number, "case.rated", body, recipients(record, ctx.station.id)
    )
    log(logger, "case.rated", case=number, seq=event.seq, score=score)
    return await case_detail(ctx, number)


def window_seal(ctx: NodeContext, authority: str) -> KeyPair | None:
    """The seal key an authority entrusted to this window for its delegated 即办 matters
    (印章授权使用): ``<data>/seals/<authority with ':' as '-'>.key``, if there is one."""
    path = ctx.blobs.root.parent / "seals" / f"{authority.replace(':', '-')}.key"
    try:
        return KeyPair.from_file_bytes(path.read_bytes())
    except FileNotFoundError:
        return None


def _staff_id(federation: Federation, me: str, clerk: ClerkRow | None) -> str:
    config = federation.city(me)
    staff = None if clerk is None or config is None else config.staff.get(clerk.username)
    if staff is None or staff.member != me or not staff.active:
        who = "" if clerk is None else f"（{clerk.username}）"
        raise ServiceError(
            "not_window_staff",
            f"当前窗口人员{who}未列入联邦配置的本站工作人员名单，不能即办；请联系运维人员。",
            status=403,
        )
    return staff.id


async def decide_on_the_spot(
    ctx: NodeContext,
    number: str,
    *,
    result_code: int = 0,
    reason: str = "",
    opinion: str = "",
    licence_no: str = "",
    valid_until: date | None = None,
    clerk: ClerkRow | None = None,
) -> dict[str, Any]:
    """即办 (即来即办): the accepting window accepts and decides a matter delegated to it,
    offline if need be; both events sync up for the record. An approval carries a result
    document sealed with the seal key the authority entrusted to this window."""
    federation = ctx.configs.require()
    me = ctx.station.id
    record = await _own_case(ctx, number)
    found = federation.matter(record.matter)
    matter = None if found is None else found[1]
    if record.window != me or matter is None or not matter.delegated(me):
        raise ServiceError(
            "not_delegated",
            f"事项「{record.matter_name}」未下放本窗口即办，须由"
            f"{member_name(federation, record.authority)}审批。",
            status=422,
        )
    if result_code not in DECISIONS:
        raise refused("bad_result_code", "办理结果应为 0 准予、1 不予许可或 5 退件。")
    if result_code and not reason.strip():
        raise refused("missing_reason", "不予许可或退件须写明理由。", "reason")
    by = _staff_id(federation, me, clerk)
    ts = ctx.now().isoformat(timespec="seconds")
    decided: dict[str, Any] = {
        "by": by,
        "result_code": result_code,
        "reason": reason.strip()[:500],
        "opinion": opinion.strip()[:500],
    }
    if result_code == 0:
        seal = window_seal(ctx, record.authority)
        if seal is None:
            raise ServiceError(
                "no_seal_key",
                f"本窗口未获授权使用{member_name(federation, record.authority)}的电子印章，"
                "不能当场出证。",
                status=409,
            )
        decided["result"] = _sealed(record, federation, ts, licence_no, valid_until, seal)
    to = recipients(record, me)
    makes = []
    if record.state == CaseState.SUBMITTED.value:
        accepted = {"by": by, "opinion": "即办件，当场受理"}
        makes.append(case_maker(ctx, federation, number, "case.accepted", accepted, to))
    makes.append(case_maker(ctx, federation, number, "case.decided", decided, to))
    done = await ctx.store.append_all_to_case(number, makes, ctx.stamp())
    ctx.wake()
    # 办结 / 待领取 notifications follow the fold (node.services.notify), as for a hub's.
    events: list[Event] = [event for event, _ in done]
    log(logger, "case.decided_here", case=number, seq=events[-1].seq, code=result_code)
    return await case_detail(ctx, number)


def _sealed(
    record: CaseRecord,
    federation: Federation,
    ts: str,
    licence_no: str,
    valid_until: date | None,
    seal: KeyPair,
) -> dict[str, Any]:
    terms = record.snapshot.get("terms", {})
    doc: dict[str, Any] = {
        "case": record.number,
        "matter": record.matter,
        "matter_name": record.matter_name,
        "applicant": {"name": record.applicant_name, "id_masked": record.applicant_id_masked},
        "result_code": 0,
        "decision": DECISIONS[0],
        "authority": record.authority,
        "authority_name": member_name(federation, record.authority),
        "issued": ts,
        "issued_at_window": member_name(federation, record.window),
    }
    result_name = (terms.get("result") or {}).get("name")
    if result_name:
        doc["result_name"] = result_name
    if licence_no.strip():
        doc["licence_no"] = licence_no.strip()[:100]
    if valid_until is not None:
        doc["valid_until"] = valid_until.isoformat()
    return seal_result(doc, seal)


async def _own_case(ctx: NodeContext, number: str) -> CaseRecord:
    record = await ctx.store.case(number)
    if record is None:
        raise not_found("case", "没有找到该办件。")
    return record
