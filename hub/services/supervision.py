"""电子监察 (supervision of time limits): yellow and red cards for the cases this hub decides.

A **yellow card** (黄牌) goes to an open case within ``near_days`` working days of its
promised completion date (``TONGBAN_CARD_NEAR_DAYS`` in the hub's environment, default 1); a
**red card** (红牌) to one past it. Cards are computed from the folded cases, never stored:
the deadline is the fold's own (``Case.deadline``: acceptance + promised working days +
extension, pauses excluded, from the federation calendar); a case nobody accepted within 5
working days counts from receipt (rule 1, 视为受理, ``Case.deemed_accepted``); a case still
in its acceptance window, or paused (补正, 待补办, 特别程序), has no card. A scheduled job
(:meth:`hub.jobs.RelayJobs.supervise`) runs :func:`supervise` every few minutes to export
the counts as metrics and raise an alert the first time a case gets its red card.

:func:`department_cards` is what the workbench calls; the operator dashboard uses
:func:`cards`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

from protocol.case import OPEN_STATES, Case, day_of
from protocol.config import Federation
from protocol.errors import ProtocolError

from ..core import Hub
from ..logs import log
from ..storage.store import CaseRecord
from .casecodec import CodecError, decode_case

NEAR_DAYS_ENV: Final = "TONGBAN_CARD_NEAR_DAYS"
DEFAULT_NEAR_DAYS: Final = 1
INTERVAL_SECONDS: Final = 300.0
MAX_CASES: Final = 100_000
COLOURS: Final = {"yellow": "黄牌", "red": "红牌"}

logger = logging.getLogger("tongban.hub.supervision")

Colour = Literal["yellow", "red"]


@dataclass(frozen=True)
class Card:
    """One card: which case, which colour, its deadline and the working days left (negative:
    working days overdue)."""

    number: str
    colour: Colour
    authority: str
    matter: str
    matter_name: str
    window: str
    state: str
    deadline: date
    days_left: int

    @property
    def label(self) -> str:
        return COLOURS[self.colour]

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "colour": self.colour,
            "label": self.label,
            "authority": self.authority,
            "matter": self.matter,
            "matter_name": self.matter_name,
            "window": self.window,
            "state": self.state,
            "deadline": self.deadline.isoformat(),
            "days_left": self.days_left,
        }


def near_days_setting() -> int:
    """N of the yellow card: ``TONGBAN_CARD_NEAR_DAYS`` (a whole number ≥ 0), else 1."""
    raw = os.environ.get(NEAR_DAYS_ENV, "")
    return int(raw) if raw.isdigit() else DEFAULT_NEAR_DAYS


def due_date(case: Case, federation: Federation, today: date) -> date | None:
    """The promised completion date by the fold's rules; None while paused, before the
    clock starts, or when the calendar cannot say."""
    config = federation.city(case.authority) or federation.home
    calendar = config.calendar
    try:
        if case.accepted_at is not None:
            found = case.deadline(calendar)
        elif case.deemed_accepted(calendar, today):
            # 视为受理 (rule 1): nobody acted within 5 working days, so the case counts as
            # accepted from receipt and its time limit runs from then.
            found = calendar.add_workdays(day_of(case.received), case.terms.promise_days)
        else:
            return None  # within the acceptance window, or waiting for 补正: no clock yet
    except ProtocolError:
        return None
    return None if found is None else found.date


def card_for(case: Case, federation: Federation, today: date, near_days: int) -> Card | None:
    """The case's card today, if it has one."""
    if case.state not in OPEN_STATES:
        return None
    due = due_date(case, federation, today)
    if due is None:
        return None
    config = federation.city(case.authority) or federation.home
    if due < today:
        colour: Colour = "red"
        left = -config.calendar.count_workdays(due, today)
    else:
        left = config.calendar.count_workdays(today, due)
        if left > near_days:
            return None
        colour = "yellow"
    return Card(
        number=case.number,
        colour=colour,
        authority=case.authority,
        matter=case.matter,
        matter_name=case.terms.name,
        window=case.window,
        state=case.state.label,
        deadline=due,
        days_left=left,
    )


def local_authorities(hub: Hub, federation: Federation) -> list[str]:
    return sorted(a.id for a in federation.home.authorities.values() if a.member == hub.me)


async def open_cases(hub: Hub, authorities: list[str]) -> list[tuple[CaseRecord, Case]]:
    rows = await hub.store.cases(authorities, [s.value for s in OPEN_STATES], MAX_CASES)
    out = []
    for row in rows:
        try:
            out.append((row, decode_case(row.fold)))
        except CodecError:
            continue  # refolded on its next event
    return out


async def cards(
    hub: Hub, *, authorities: list[str] | None = None, near_days: int | None = None
) -> list[Card]:
    """Every card of this hub's cases (or of ``authorities``), red first, most overdue first."""
    federation = hub.view.federation
    if federation is None:
        return []
    wanted = local_authorities(hub, federation) if authorities is None else authorities
    if not wanted:
        return []
    n = near_days_setting() if near_days is None else near_days
    today = day_of(hub.now())
    found = [
        card
        for _, case in await open_cases(hub, wanted)
        if (card := card_for(case, federation, today, n)) is not None
    ]
    return sorted(found, key=lambda c: (c.colour != "red", c.days_left, c.number))


async def department_cards(hub: Hub, department: str) -> list[Card]:
    """The cards of one department of this hub (``mzj``), for its workbench."""
    return await cards(hub, authorities=[f"{hub.me}:{department}"])


async def supervise(hub: Hub) -> dict[str, int]:
    """The scheduled job: count cards per colour into the metrics; alert new red cards."""
    await hub.view.refresh()
    found = await cards(hub)
    counts = {"yellow": 0, "red": 0}
    for card in found:
        counts[card.colour] += 1
    for colour, count in counts.items():
        hub.metrics.cards.labels(colour).set(count)
    reds = [c for c in found if c.colour == "red"]
    if reds:
        now = hub.now()

        def txn(c: Any) -> int:
            raised = 0
            for card in reds:
                detail = f"{card.matter_name}: 承诺 {card.deadline.isoformat()} 办结, 已超期"
                raised += hub.store.alert_txn(c, "red_card", card.number, detail, now)
            return raised

        raised = await hub.db.run("red_cards", txn)
        if raised:
            log(logger, "supervision.red_cards", logging.WARNING, new=raised, total=len(reds))
    return counts
