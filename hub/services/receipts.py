"""送达回执: the end-to-end receipt this hub owes for events addressed to it.

Theory of operation
-------------------
Custody is per hop (protocol §5); the author of an event also wants to know that it has
*arrived*. The fold says who owes what (:mod:`protocol.case`: every event but a receipt is
owed one ``case.received`` by each member it is addressed to, ``Case.awaiting``); the same
rule runs at stations (:mod:`node.services.receipts`). Here it means a window's event for a
department of this hub (the application, 补正 and 补办 materials, 出件 …): this hub signs
``case.received`` (``body.event``: the id held) in its own chain, ``to`` the event's author,
and it travels back like any event, hop by hop, across tiers and cities; the window folds it
and shows "已送达审批部门". Unlike a station, the hub signs only once it also holds every
material the event names, since the materials are what the authority reviews.

1. :func:`note_txn` is the ingest hook: an event whose fold here awaits this hub's receipt
   is written to ``receipt_due`` in the same transaction that took it into custody
   (nothing owed is lost on a crash).
2. :func:`sign_due` (the ``receipts`` job, and tests) signs the receipts whose blobs are all
   held, one per transaction, locking the case before the chain head as the workbench does;
   due rows another worker holds are skipped (``SKIP LOCKED``), so several workers sign each
   receipt once. A receipt the fold refuses (already confirmed) just clears the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from protocol.case import RECEIPT, CaseRejected, Receipt
from protocol.config import Federation
from protocol.event import Event

from ..storage.track import drop_receipt_due_txn, note_receipt_due_txn, receipts_due_txn
from .cases import FoldOutcome, fold_txn, load_case_txn

if TYPE_CHECKING:
    from ..core import Hub
    from .ingest import Effects, Router


def note_txn(router: Router, event: Event, outcome: FoldOutcome) -> None:
    """Ingest hook: note the receipt the folded case awaits from this hub for ``event``."""
    case = outcome.case
    if (
        outcome.rejected is None
        and case is not None
        and event.case is not None
        and Receipt(event.id, router.me) in case.awaiting
    ):
        note_receipt_due_txn(router.c, event.id, event.case, router.at)


def _sign_one_txn(
    c: Connection, hub: Hub, federation: Federation, at: datetime
) -> tuple[bool, Effects | None]:
    """Sign the oldest due receipt: (whether a row was taken, what the commit means)."""
    from .ingest import Router  # ingest imports this module for its hook

    due = receipts_due_txn(c, 1)
    if not due:
        return False, None
    event_id, number, wire = due[0]
    drop_receipt_due_txn(c, [event_id])
    _, case = load_case_txn(hub.store, c, federation, number, lock=True)
    if case is None:
        return True, None
    head_seq, head_id = hub.store.chain_head_txn(c, hub.me)
    receipt = Event.create(
        hub.key,
        author=hub.me,
        seq=head_seq + 1,
        prev=head_id,
        ts=at.isoformat(timespec="seconds"),
        type=RECEIPT,
        case=number,
        to=(Event.from_json(wire).author,),
        body={"event": event_id},
    )
    try:
        fold_txn(hub.store, c, federation, receipt, at, strict=True)
    except CaseRejected:
        return True, None  # already confirmed: nothing to sign
    router = Router(hub.store, federation, hub.me, c, source=hub.me, at=at)
    router.store_event(receipt, mode="own", fold=False)
    hub.store.set_chain_head_txn(c, hub.me, receipt.seq, receipt.id)
    effects = router.flush()
    me = federation.home.members.get(hub.me)
    effects.relay = effects.relay or (me is not None and me.parent is not None)
    effects.note("receipt.signed", case=number, event_id=event_id[:16])
    return True, effects


async def sign_due(hub: Hub, limit: int = 200) -> int:
    """Sign the receipts now due (blobs all held); returns how many were signed."""
    from .ingest import record_effects

    federation = hub.view.federation
    if federation is None:
        return 0
    signed = 0
    for _ in range(limit):
        more, effects = await hub.db.run("receipt", _sign_one_txn, hub, federation, hub.now())
        if effects is not None:
            hub.committed(effects.recipients, effects.relay)
            record_effects(hub.metrics, effects)
            signed += 1
        if not more:
            break
    return signed
