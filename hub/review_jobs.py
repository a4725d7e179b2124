"""Scheduled review work: terminate cases whose 容缺 (deferred) material is overdue.

DOMAIN.md rule 3: a case accepted with a material missing on a pledge is terminated when the
pledge's deadline passes without the material. Every few minutes each hub worker lists the
cases of its own authorities that still have a deferred material (the ``deferred`` work item
of the case row) and, for those past their deadline, signs ``case.terminated`` with
``body.cause`` = :data:`protocol.case.OVERDUE` and no staff member. The fold checks the
deadline itself, so a wrong clock here cannot terminate a case in time. With several workers
on one database the case row lock serializes them: the second finds the case terminated and
its own attempt is refused by the fold (``illegal_transition``) and skipped.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime
from typing import Any, Final

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Connection

from protocol.case import OVERDUE, TRANSITIONS, Case, day_of
from protocol.errors import ProtocolError

from .core import Hub
from .logs import log
from .services.casecodec import CodecError, decode_case
from .services.cases import DEFERRED
from .services.review import Decision, after_commit, sign_txn

OVERDUE_INTERVAL: Final = 600.0  # seconds; a deadline is a day, so this is plenty
SCHEDULED: Final = "scheduled"  # who acted, in the log

logger = logging.getLogger("tongban.hub.review_jobs")


def overdue(case: Case, today: date) -> bool:
    """Deferred materials outstanding and the pledge deadline before ``today``."""
    due = None if case.pledge is None else case.pledge.deadline
    return bool(case.outstanding) and due is not None and today > due


async def terminate_overdue(hub: Hub) -> list[str]:
    """Terminate this hub's cases with an overdue 容缺 material; the numbers terminated."""
    federation = hub.view.federation
    if federation is None:
        return []
    now = hub.now()
    today = day_of(now)
    done = []
    for row in await hub.store.task_cases(None, DEFERRED):
        if not row.authority.startswith(hub.me + ":"):
            continue  # held here for routing only; its own hub decides
        try:
            case = decode_case(row.fold)
        except CodecError:
            continue
        if not overdue(case, today) or (case.state, "case.terminated") not in TRANSITIONS:
            continue  # not yet; or not accepted yet, which is the reviewer's to decide
        assert case.pledge is not None and case.pledge.deadline is not None
        reason = f"容缺材料未在承诺期限（{case.pledge.deadline.isoformat()}）内补齐，办件终止"

        def body(_case: Case, _ts: str, reason: str = reason) -> dict[str, Any]:
            return {"cause": OVERDUE, "reason": reason}

        def txn(c: Connection, number: str = case.number) -> Decision:
            return sign_txn(hub, c, federation, number, "case.terminated", body, now)

        try:
            decision = await hub.db.run("terminate_overdue", txn)
        except ProtocolError as exc:  # another worker was first, or it moved
            log(logger, "overdue.skipped", case=case.number, reason=exc.reason)
            continue
        after_commit(hub, decision, SCHEDULED)
        done.append(case.number)
    return done


class ReviewJobs:
    """The scheduled review checks of one hub worker (APScheduler, like the relay jobs)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self._run,
            "interval",
            seconds=OVERDUE_INTERVAL,
            id="overdue",
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=60,
        )
        scheduler.start()
        self._scheduler = scheduler

    async def _run(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            await terminate_overdue(self.hub)
        except Exception as exc:  # a job must never die of one bad round
            error = f"{type(exc).__name__}: {exc}"[:300]
            log(logger, "job.failed", logging.ERROR, job="overdue", error=error)
        finally:
            self._running.discard(task)

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
