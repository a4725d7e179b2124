"""The hub's public pages (no login, readable on a phone): ``/guide`` 办事指南,
``/guide/{code}`` one matter's 五统一, ``/track`` 进度查询 for cases this hub holds (the
query code's Argon2id hash travels in the signed ``case.submitted`` body; wrong codes are
counted in the database for every worker), ``/large`` the
长辈模式 switch. Templates are the shared ones of :mod:`protocol.http.web`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final

from aiohttp import web

from protocol.case import RESULT_CODES, Case
from protocol.config import Federation
from protocol.event import Event
from protocol.http.web.public import PublicSite
from protocol.http.web.track import (
    EVENT_TEXT,
    STATE_TEXT,
    code_matches,
    mask_name,
    public_events,
)

from .handlers.common import hub_of
from .logs import mask
from .pages import TEMPLATES
from .services.casecodec import decode_case
from .storage.track import add_wrong_try_txn, wrong_tries_txn


def _name(federation: Federation | None, member_id: str) -> str:
    if federation is not None:
        member = federation.member(member_id)
        if member is not None:
            return member.name
        authority = federation.authority(member_id)
        if authority is not None:
            return authority.name
    return member_id


def _view(case: Case, events: list[Event], federation: Federation | None) -> dict[str, Any]:
    names = {m.id: m.name for m in case.terms.materials}
    missing = []
    if case.state.value in ("correction", "awaiting_supplement"):
        missing = [
            {
                "what": names.get(i.material, i.material) if i.material else i.field,
                "problem": i.problem,
            }
            for i in case.items
        ]
    deadline = None
    config = None if federation is None else federation.city(case.authority)
    if config is not None and case.accepted_at is not None:
        found = case.deadline(config.calendar)
        deadline = None if found is None or found.date is None else found.date.isoformat()
    timeline = []
    for event, receipt in public_events(events, case.authority, case.pickup):
        text = receipt or EVENT_TEXT.get(event.type, event.type)
        code = event.body.get("result_code")
        if event.type == "case.decided" and isinstance(code, int):
            text += f"（{RESULT_CODES.get(code, code)}）"
        timeline.append({"at": event.ts, "text": text})
    return {
        "number": case.number,
        "matter": case.terms.name,
        "state": case.state.value,
        "state_label": case.state.label,
        "state_text": STATE_TEXT.get(case.state.value, ""),
        "applicant": mask_name(case.applicant.name),
        "id_masked": mask(case.applicant.id_masked),
        "received": case.received.isoformat(),
        "deadline": deadline,
        "pickup": _name(federation, case.pickup),
        "place": case.terms.place,
        "missing": missing,
        "timeline": timeline,
    }


async def _lookup(request: web.Request, number: str, code: str) -> dict[str, Any] | None:
    hub = hub_of(request)
    record = await hub.store.case(number)
    if record is None:
        return None
    events = [Event.from_json(s.wire) for s in await hub.store.events_of_case(number)]
    submitted = next((e for e in events if e.type == "case.submitted"), None)
    if submitted is None or not await asyncio.to_thread(code_matches, submitted.body, number, code):
        return None
    return _view(decode_case(record.fold), events, hub.view.federation)


class HubWrongCodes:
    """Wrong query codes counted in the hub's database: one limit for all its workers (a
    count and the next try are not one transaction, so N workers may let N-1 extra tries
    through at the boundary; never more)."""

    def __init__(self, request: web.Request) -> None:
        self.hub = hub_of(request)

    async def count(self, keys: Sequence[str], window: float) -> int:
        since = self.hub.now() - timedelta(seconds=window)
        return await self.hub.db.read("track_tries", wrong_tries_txn, keys, since)

    async def add(self, keys: Sequence[str], window: float) -> None:
        now = self.hub.now()
        forget = now - timedelta(seconds=window)
        await self.hub.db.run("track_wrong", add_wrong_try_txn, keys, now, forget)


SITE: Final = PublicSite(
    templates=TEMPLATES,
    federation=lambda request: hub_of(request).view.federation,
    place=lambda request: _name(hub_of(request).view.federation, hub_of(request).me),
    lookup=_lookup,
    wrong_codes=HubWrongCodes,
    no_catalog="本枢纽尚未取得事项目录，请稍后再试。",
)


def add_routes(app: web.Application) -> None:
    """Register the public pages (after :func:`hub.pages.add_routes`: its templates)."""
    SITE.add_routes(app)
