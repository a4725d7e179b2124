"""The operator dashboard (运维监控) of a hub, usually the city hub: ``/dashboard``.

Who may see it: a staff member of this hub with the role ``operator`` (``tongban ops staff add
--member 2101 --role operator``), logged in through the workbench's ``/login`` (same session
cookie and CSRF token). What it shows, all from this hub's own database:

* **members** with level, last seen, backlog and errors, sortable (``?sort=``) and filtered
  by district (``?district=``). *Last seen* is the latest event this hub received that the
  member signed or pushed itself (so a station below a district hub is seen here only when its
  events travel this far: acts for city authorities, metro matters); *backlog* is what waits
  here to be relayed to it (parent, peer cities); *errors* its quarantined events plus the
  last failed relay attempt; *clock* the skew this hub last measured on the member's own
  clock (:func:`hub.services.status.clocks`), flagged 时钟偏差 beyond ±300 s. A member quiet
  for longer than :data:`SILENT_AFTER` is 失联;
* **办件量** (case.submitted events held here) by matter and by district, as bar charts;
* **电子监察** cards (:mod:`hub.services.supervision`);
* **好差评** statistics from ``case.rated`` events, with every 差评 (score 1–2) listed;
* **alerts**: equivocations, quarantine, red cards and other alerts.

Charts are inline SVG drawn on the server (no script, no CDN). ``GET /dashboard/api/members``
answers the member rows as JSON for ``tongban ops member list --hub``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from aiohttp import web

from protocol.errors import ProtocolError, RemoteProtocolError
from protocol.event import Event
from protocol.http import web as shared
from protocol.ids import division

from . import pages
from .core import Hub
from .handlers.common import hub_of, status_of
from .services import staff, supervision
from .services.staff import StaffSession
from .services.status import clocks as member_clocks

OPERATOR_ROLE: Final = "operator"
SILENT_HOURS_ENV: Final = "TONGBAN_SILENT_HOURS"
_SILENT_HOURS = os.environ.get(SILENT_HOURS_ENV, "")
SILENT_AFTER: Final = timedelta(hours=int(_SILENT_HOURS) if _SILENT_HOURS.isdigit() else 24)
LEVEL_NAMES: Final = {"city": "市", "district": "区县", "township": "乡镇", "village": "村"}
SORTS: Final = ("id", "name", "level", "last_seen", "backlog", "errors")
NAV: Final = ({"key": "dashboard", "label": "运维监控", "href": "/dashboard"},)
BAR_WIDTH: Final = 360
BAR_HEIGHT: Final = 22
LABEL_WIDTH: Final = 220


def _district(member_id: str) -> str | None:
    """The district (6-digit division) a member lies in, None for the city hub itself."""
    code = division(member_id)
    return code[:6] if len(code) >= 6 else None


async def member_rows(hub: Hub) -> list[dict[str, Any]]:
    """Every member of the federation with what this hub knows of it (JSON-able)."""
    federation = hub.view.federation
    if federation is None:
        return []
    config = federation.home
    now = hub.now()
    activity = await hub.store.member_activity()
    peers = {s.destination: s for s in await hub.store.all_peer_status()}
    parent = config.members[hub.me].parent if hub.me in config.members else None
    revoked = {r.member: r for r in config.revocations if r.kid is None}
    skews = {c["member"]: c for c in await member_clocks(hub)}
    rows = []
    for member in sorted(config.members.values(), key=lambda m: m.id):
        seen = activity.get(member.id, {})
        last: datetime | None = seen.get("last_seen")
        status = peers.get("parent" if member.id == parent else member.id)
        relay_error = status.last_error if status is not None else None
        errors = int(seen.get("quarantined", 0)) + (1 if relay_error else 0)
        silent = None if last is None else max(0.0, (now - last).total_seconds())
        revocation = revoked.get(member.id)
        clock = skews.get(member.id)
        rows.append(
            {
                "id": member.id,
                "name": member.name,
                "level": member.level,
                "level_name": LEVEL_NAMES.get(member.level, member.level),
                "district": _district(member.id),
                "roles": sorted(member.roles),
                "last_seen": None if last is None else last.isoformat(),
                "silent_seconds": silent,
                "silent": member.id != hub.me
                and (silent is None or silent > SILENT_AFTER.total_seconds()),
                "backlog": 0 if status is None else status.backlog_count,
                "errors": errors,
                "last_error": relay_error,
                "revoked_at": None if revocation is None else revocation.revoked_at.isoformat(),
                "clock_skew": None if clock is None else clock["skew_seconds"],
                "clock_skewed": clock is not None and clock["skewed"],
            }
        )
    return rows


def sort_rows(
    rows: list[dict[str, Any]], sort: str, descending: bool, district: str | None
) -> list[dict[str, Any]]:
    """Filter by district, then sort (members never seen count as the longest silent)."""
    if district:
        rows = [r for r in rows if r["district"] == district or r["id"] == district]
    key = sort if sort in SORTS else "id"

    def value(row: dict[str, Any]) -> Any:
        if key == "last_seen":
            return row["last_seen"] or ""
        return row[key]

    return sorted(rows, key=value, reverse=descending)


async def _events(hub: Hub, type: str) -> list[Event]:
    out = []
    for wire in await hub.store.event_wires_of_type(type):
        try:
            out.append(Event.from_json(wire))
        except ProtocolError:
            continue
    return out


async def volume(hub: Hub) -> dict[str, dict[str, Any]]:
    """办件量: submissions held here, by matter and by district of the accepting window."""
    federation = hub.view.federation
    by_matter: Counter[str] = Counter()
    by_district: Counter[str] = Counter()
    for event in await _events(hub, "case.submitted"):
        matter = event.body.get("matter")
        by_matter[matter if isinstance(matter, str) else "?"] += 1
        by_district[_district(event.author) or event.author] += 1

    def matter_name(code: str) -> str:
        found = None if federation is None else federation.matter(code)
        return code if found is None else found[1].name

    def member_name(code: str) -> str:
        member = None if federation is None else federation.member(code)
        return code if member is None else member.name

    return {
        "matters": bars((matter_name(c), n) for c, n in by_matter.most_common()),
        "districts": bars((member_name(c), n) for c, n in by_district.most_common()),
    }


async def ratings(hub: Hub) -> dict[str, Any]:
    """好差评: how many of each score, the average, and every 差评 (1–2) with its comment."""
    federation = hub.view.federation
    scores: Counter[int] = Counter()
    bad = []
    for event in await _events(hub, "case.rated"):
        score = event.body.get("score")
        if type(score) is not int or not 1 <= score <= 5:
            continue
        scores[score] += 1
        if score <= 2:
            comment = event.body.get("comment")
            window = None if federation is None else federation.member(event.author)
            bad.append(
                {
                    "case": event.case,
                    "score": score,
                    "comment": comment if isinstance(comment, str) else "",
                    "window": event.author,
                    "window_name": window.name if window is not None else event.author,
                    "at": event.ts,
                }
            )
    total = sum(scores.values())
    average = sum(s * n for s, n in scores.items()) / total if total else None
    labels = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
    return {
        "total": total,
        "average": None if average is None else round(average, 2),
        "bad_count": scores[1] + scores[2],
        "chart": bars((f"{s} 分 {labels[s]}", scores[s]) for s in (5, 4, 3, 2, 1)),
        "bad": sorted(bad, key=lambda r: r["at"], reverse=True),
    }


async def alerts(hub: Hub) -> dict[str, Any]:
    """Equivocations, recent quarantine and open alerts (red cards, refused folds, …)."""
    equivocations = [
        {k: v for k, v in e.items() if k != "other_wire"} for e in await hub.store.equivocations()
    ]
    return {
        "equivocations": equivocations,
        "quarantine": await hub.store.quarantined(20),
        "alerts": [
            {"kind": a.kind, "subject": a.subject, "detail": a.detail, "at": a.at.isoformat()}
            for a in await hub.store.alerts(50)
        ],
    }


def bars(items: Iterable[tuple[str, int]]) -> dict[str, Any]:
    """A horizontal bar chart's geometry (the template draws it as inline SVG)."""
    rows = list(items)
    top = max((n for _, n in rows), default=0)
    drawn = [
        {
            "label": label,
            "value": n,
            "y": i * (BAR_HEIGHT + 6),
            "width": 0 if top == 0 else max(2, round(BAR_WIDTH * n / top)) if n else 0,
        }
        for i, (label, n) in enumerate(rows)
    ]
    return {
        "rows": drawn,
        "height": max(1, len(rows)) * (BAR_HEIGHT + 6),
        "width": LABEL_WIDTH + BAR_WIDTH + 60,
        "label_width": LABEL_WIDTH,
        "bar_height": BAR_HEIGHT,
    }


# -- pages ------------------------------------------------------------------------------------


def _operator(session: StaffSession) -> None:
    if OPERATOR_ROLE not in session.staff.roles:
        raise RemoteProtocolError("forbidden", "运维监控只对运维人员（operator 岗位）开放")


async def _refusal(
    request: web.Request, session: StaffSession, exc: Exception
) -> web.StreamResponse:
    assert isinstance(exc, ProtocolError)
    return _render(
        request,
        session,
        "error.html",
        status_code=status_of(exc.reason),
        message=pages.message_of(exc),
    )


operator_page = shared.guard(pages.session_of, _refusal, (ProtocolError,))


def _render(
    request: web.Request,
    session: StaffSession,
    template: str,
    *,
    status_code: int = 200,
    **values: Any,
) -> web.Response:
    hub = hub_of(request)
    federation = hub.view.federation
    member = None if federation is None else federation.member(hub.me)
    html = (
        request.app[pages.TEMPLATES]
        .get_template(template)
        .render(
            app_title="运维监控",
            place=member.name if member is not None else hub.me,
            nav=NAV,
            active="dashboard",
            user_name=session.staff.name,
            csrf=session.csrf,
            **values,
        )
    )
    return shared.html_response(html, status_code)


def _query_flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "") in ("1", "desc", "true")


@operator_page
async def dashboard(request: web.Request, session: StaffSession) -> web.StreamResponse:
    _operator(session)
    hub = hub_of(request)
    await hub.view.refresh()
    sort = request.query.get("sort", "id")
    descending = _query_flag(request.query, "desc")
    district = request.query.get("district") or None
    everyone = await member_rows(hub)
    districts = sorted({r["district"] for r in everyone if r["district"]})
    federation = hub.view.federation
    names = {}
    for code in districts:
        found = None if federation is None else federation.member(code)
        names[code] = code if found is None else found.name
    cards = await supervision.cards(hub)
    return _render(
        request,
        session,
        "dashboard.html",
        members=sort_rows(everyone, sort, descending, district),
        silent=sum(r["silent"] for r in everyone),
        skewed=[r for r in everyone if r["clock_skewed"]],
        sort=sort,
        desc=descending,
        district=district or "",
        districts=[(d, names[d]) for d in districts],
        volume=await volume(hub),
        cards=[c.to_dict() for c in cards],
        red=sum(c.colour == "red" for c in cards),
        yellow=sum(c.colour == "yellow" for c in cards),
        ratings=await ratings(hub),
        alerts=await alerts(hub),
        now=hub.now().isoformat(),
        silent_hours=int(SILENT_AFTER.total_seconds() // 3600),
    )


async def api_members(request: web.Request) -> web.Response:
    """``GET /dashboard/api/members``: the member rows as JSON (operator session)."""
    hub = hub_of(request)
    session = await staff.session_of(hub, request.cookies.get(staff.SESSION_COOKIE))
    if session is None:
        raise RemoteProtocolError("not_logged_in", "请先登录")
    _operator(session)
    return web.json_response({"member": hub.me, "members": await member_rows(hub)})


def add_routes(app: web.Application) -> None:
    """Register the dashboard (after :func:`hub.pages.add_routes`, whose templates it uses)."""
    app.router.add_get("/dashboard", dashboard)
    app.router.add_get("/dashboard/api/members", api_members)
