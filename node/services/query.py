"""进度查询: the applicant's query code and the public view of a case.

The window draws a random 6-character query code at 收件 and prints it on the receipt
(and in its QR, ``TB:<case number>:<code>``). Only its Argon2id hash, salt and cost travel,
inside the signed ``case.submitted`` body (``body.track``,
:mod:`protocol.http.web.track`). The accepting station alone keeps the code in clear, with
the case's other private data (``case_private.query_code``), so a reprinted receipt shows
it; no other window or hub can (they hold only the hash): an applicant who lost the code
goes back to the accepting window, or that window reads it out from its case page.

Wrong codes are rate-limited per client and per case, counted in the station's database
(:class:`node.storage.track.WrongCodeStore`); a case is never shown by its number alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from protocol.config import Federation
from protocol.event import Event
from protocol.http.web.track import (
    MAX_WRONG,
    STATE_TEXT,
    code_matches,
    mask_name,
    new_code,
    parse_qr,
    public_events,
    qr_text,
    track_body,
)

from ..storage import CaseRecord
from .context import NodeContext
from .folding import describe, member_name

__all__ = [
    "MAX_WRONG",
    "find",
    "mask_name",
    "new_code",
    "parse_qr",
    "public_view",
    "qr_text",
    "track_body",
]


# -- the public view of a case -------------------------------------------------------------


def public_view(
    record: CaseRecord, events: list[Event], pickup_name: str, federation: Federation | None
) -> dict[str, Any]:
    """What the applicant sees: state, timeline and 补正 items in plain words, masked; of
    the 送达回执 only 已送达审批部门 and 办结结果已送达出件窗口."""
    snap = record.snapshot
    timeline = [
        {"at": e.ts, "text": receipt or describe(e, federation, record.authority)}
        for e, receipt in public_events(events, record.authority, record.pickup)
    ]
    terms = snap.get("terms", {})
    names = {m.get("id"): m.get("name") for m in terms.get("materials", [])}
    items = []
    if record.state in ("correction", "awaiting_supplement"):
        for item in snap.get("items", []):
            material = item.get("material")
            items.append(
                {
                    "what": names.get(material, material) if material else item.get("field"),
                    "problem": item.get("problem", ""),
                }
            )
    return {
        "number": record.number,
        "matter": record.matter_name,
        "state": record.state,
        "state_label": snap.get("state_label", record.state),
        "state_text": STATE_TEXT.get(record.state, ""),
        "applicant": mask_name(record.applicant_name),
        "id_masked": record.applicant_id_masked,
        "received": record.received,
        "deadline": record.deadline,
        "pickup": pickup_name,
        "place": terms.get("place", ""),
        "missing": items,
        "timeline": timeline,
    }


async def find(ctx: NodeContext, number: str, code: str) -> dict[str, Any] | None:
    """The public view of a case this station holds, given its number and query code; None
    for a wrong number or code alike (the number alone reveals nothing). The wrong-code limit
    is the public site's (:class:`protocol.http.web.public.PublicSite`)."""
    record = await ctx.store.case(number)
    held = await ctx.store.case_events(number) if record is not None else []
    submitted = next((h.event for h in held if h.event.type == "case.submitted"), None)
    if record is None or submitted is None:
        return None
    if not await asyncio.to_thread(code_matches, submitted.body, number, code):
        return None
    federation = ctx.configs.federation
    return public_view(
        record, [h.event for h in held], member_name(federation, record.pickup), federation
    )
