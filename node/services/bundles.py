"""一件事一次办: one application for a bundle of matters (e.g. 企业开办).

The window gives the bundle a parent number (from the day's case numbers; it is a record of
this window, not an event) and opens one child case per matter, each a normal
``case.submitted`` carrying ``body.bundle`` = the parent number and routed to its own
competent authority (possibly at different levels). Materials are handed in once: a file
given for a material id serves every child whose checklist has that id, by the same blob
hash, and is stored and uploaded once. The window shows the bundle's progress and hands the
results out together once every child is decided.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from protocol.case import CaseState, day_of
from protocol.config import Bundle, Federation
from protocol.event import Event
from protocol.ids import case_number

from ..logs import log
from ..privacy import normalize_id
from ..storage import BlobRow, CaseRecord, ClerkRow, PrivateData
from .accept import (
    Application,
    _check,
    _Checked,
    _safe_mime,
    _safe_name,
    _sign,
    reusable_materials,
)
from .cases import case_row, deliver
from .context import NodeContext
from .errors import ServiceError, not_found, refused
from .matters import authority_here
from .query import new_code, track_body

logger = logging.getLogger("node.bundles")

DONE = frozenset({s.value for s in (CaseState.DECIDED, CaseState.DELIVERED, CaseState.RATED)})
ENDED = frozenset(
    {s.value for s in (CaseState.WITHDRAWN, CaseState.NOT_ACCEPTED, CaseState.TERMINATED)}
)


def _bundle_view(federation: Federation, bundle: Bundle, window: str) -> dict[str, Any] | None:
    matters = []
    for code in bundle.matters:
        found = federation.matter(code)
        if found is None or authority_here(federation, found[1], window) is None:
            return None  # a bundle is applied for whole, or not here
        matters.append({"code": code, "name": found[1].name})
    return {"code": bundle.code, "name": bundle.name, "matters": matters}


def list_bundles(ctx: NodeContext) -> list[dict[str, Any]]:
    """The catalog's bundles (一件事) whose every matter this window may accept."""
    federation = ctx.configs.require()
    views = (_bundle_view(federation, b, ctx.station.id) for b in federation.home.bundles.values())
    return [v for v in views if v is not None]


def bundle_checklist(ctx: NodeContext, code: str) -> dict[str, Any]:
    """One bundle with the union of its matters' materials (each listed once, with the
    matters that need it)."""
    federation = ctx.configs.require()
    bundle = federation.home.bundles.get(code)
    view = None if bundle is None else _bundle_view(federation, bundle, ctx.station.id)
    if bundle is None or view is None:
        raise ServiceError("no_such_bundle", "本窗口不能受理该一件事。", status=404)
    materials: dict[str, dict[str, Any]] = {}
    for code_ in bundle.matters:
        found = federation.matter(code_)
        assert found is not None  # checked by _bundle_view
        for m in found[1].materials:
            entry = materials.setdefault(m.id, {**m.to_dict(), "matters": []})
            entry["matters"].append(found[1].name)
            entry["required"] = entry["required"] or m.required
    view["materials"] = list(materials.values())
    return view


async def accept_bundle(
    ctx: NodeContext, code: str, app: Application, clerk: ClerkRow | None = None
) -> dict[str, Any]:
    """Accept a bundle: every child checked first (a refusal names the matter), then the
    shared files stored once, then the parent and all children in one transaction."""
    federation = ctx.configs.require()
    bundle = federation.home.bundles.get(code)
    if bundle is None or _bundle_view(federation, bundle, ctx.station.id) is None:
        raise ServiceError("no_such_bundle", "本窗口不能受理该一件事。", status=404)
    reusable = {
        r["hash"]: r["licence_type"] for r in await reusable_materials(ctx, app.applicant.id_number)
    }
    checked: list[_Checked] = []
    for matter_code in bundle.matters:
        found = federation.matter(matter_code)
        assert found is not None
        ids = {m.id for m in found[1].materials}
        child = replace(
            app,
            matter=matter_code,
            materials=tuple(m for m in app.materials if m.id in ids),
        )
        try:
            checked.append(_check(ctx, federation, child, reusable))
        except ServiceError as exc:
            raise ServiceError(
                exc.reason,
                f"「{found[1].name}」：{exc.message}",
                status=exc.status,
                field=exc.field,
                detail=exc.detail,
            ) from None
    now = ctx.now()
    ts = now.isoformat(timespec="seconds")
    day = day_of(now).strftime("%Y%m%d")
    code_ = new_code()  # one query code for the whole bundle, kept with each child
    track = await asyncio.to_thread(track_body, code_)  # slow on purpose
    me = ctx.station.id
    for item in checked:  # dry runs of the fold: refusals before anything is written
        dry = _with_bundle(item, case_number(me, day, 1))
        _sign(ctx, federation, dry, case_number(me, day, 2), 1, None, ts, track)

    at = ctx.stamp()
    files = {digest: upload for item in checked for digest, upload in item.files}
    for digest, upload in files.items():
        stored = await asyncio.to_thread(ctx.blobs.put, upload.data, digest)
        await ctx.store.add_blob(
            BlobRow(stored, len(upload.data), _safe_name(upload.name), _safe_mime(upload.mime)), at
        )
    private = PrivateData(
        id_number=normalize_id(app.applicant.id_number),
        agent_id_number=None if app.agent is None else normalize_id(app.agent.id_number),
        phone=(app.phone or "").strip() or None,
        query_code=code_,
    )
    parent_of: list[str] = []

    def number_of(n: int) -> str:
        parent_of[:] = [case_number(me, day, n)]  # a retried transaction takes it again
        return parent_of[0]

    def maker(item: _Checked) -> Any:
        def make(n: int, seq: int, prev: str | None) -> tuple[Event, CaseRecord]:
            with_parent = _with_bundle(item, parent_of[0])
            return _sign(
                ctx, federation, with_parent, case_number(me, day, n), seq, prev, ts, track
            )

        return make

    reused = [d for item in checked for d in item.reused]
    parent, opened = await ctx.store.open_bundle(
        day,
        number_of,
        bundle.code,
        bundle.name,
        [(maker(item), private) for item in checked],
        [*files, *reused],
        at,
    )
    ctx.wake()
    log(
        logger,
        "bundle.submitted",
        bundle=parent,
        code=bundle.code,
        children=len(opened),
        files=len(files),
        clerk=clerk.username if clerk else None,
    )
    detail = await bundle_detail(ctx, parent)
    detail["query_code"] = code_
    return detail


def _with_bundle(item: _Checked, parent: str) -> _Checked:
    return replace(item, body={**item.body, "bundle": parent})


async def bundle_detail(ctx: NodeContext, number: str) -> dict[str, Any]:
    """The bundle's progress: each child's state, and whether the results can be handed out
    together (every child decided, this window the pickup)."""
    row = await ctx.store.bundle(number)
    if row is None:
        raise not_found("bundle", "没有找到该一件事办件。")
    federation = ctx.configs.federation
    children: list[CaseRecord] = []
    for child in row.children:
        record = await ctx.store.case(child)
        if record is not None:
            children.append(record)
    done = sum(1 for c in children if c.state in DONE)
    pending = [c for c in children if c.state not in DONE | ENDED]
    to_hand_out = [c for c in children if c.state == CaseState.DECIDED.value]
    me = ctx.station.id
    return {
        "number": row.number,
        "code": row.code,
        "name": row.name,
        "created_at": row.created_at,
        "children": [case_row(c, federation) for c in children],
        "progress": {"done": done, "total": len(row.children)},
        "all_decided": not pending and len(children) == len(row.children),
        "can_deliver": not pending
        and bool(to_hand_out)
        and all(c.pickup == me for c in to_hand_out),
    }


async def deliver_bundle(
    ctx: NodeContext,
    number: str,
    *,
    collector: str,
    method: str,
    when: datetime | None = None,
    clerk: ClerkRow | None = None,
) -> dict[str, Any]:
    """出件 of a bundle: every result together, only once every child is decided."""
    detail = await bundle_detail(ctx, number)
    if not detail["all_decided"]:
        progress = detail["progress"]
        raise ServiceError(
            "bundle_not_done",
            f"一件事尚未全部办结（{progress['done']}/{progress['total']}），结果须一并领取。",
            status=409,
        )
    if not detail["can_deliver"]:
        raise refused("nothing_to_deliver", "没有可在本窗口领取的办理结果。")
    for child in detail["children"]:
        if child["state"] == CaseState.DECIDED.value:
            await deliver(
                ctx, child["number"], collector=collector, method=method, when=when, clerk=clerk
            )
    log(logger, "bundle.delivered", bundle=number)
    return await bundle_detail(ctx, number)
