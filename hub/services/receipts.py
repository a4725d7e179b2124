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
   held, up to :data:`RECEIPT_BATCH` per transaction (one commit, not one each), locking the
   cases before the chain head as the workbench does; due rows another worker holds are
   skipped (``SKIP LOCKED``), so several workers sign each receipt once. A receipt the fold
   refuses (already confirmed) just clears the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from protocol.case import Case, CaseFolder, CaseRejected, Receipt, sign_receipt
from protocol.config import Federation
from protocol.event import Event

from ..storage.track import drop_receipt_due_txn, receipts_due_txn
from .cases import FoldOutcome, load_cases_txn, save_folds_txn

if TYPE_CHECKING:
    from ..core import Hub
    from .ingest import Effects, Router

# Receipts signed in one transaction: one commit for many, while the event loop, which runs
# the transaction's Python between round trips, is not held up long (pushes wait for it).
RECEIPT_BATCH = 25


def note_txn(router: Router, event: Event, outcome: FoldOutcome) -> None:
    """Ingest hook: note the receipt the folded case awaits from this hub for ``event``."""
    case = outcome.case
    if (
        outcome.rejected is None
        and case is not None
        and event.case is not None
        and Receipt(event.id, router.me) in case.awaiting
    ):
        router.owe_receipt(event.id, event.case)


def _sign_batch_txn(
    c: Connection, hub: Hub, federation: Federation, at: datetime, limit: int
) -> tuple[int, Effects | None]:
    """Sign up to ``limit`` of the oldest due receipts in one transaction: (rows taken, what
    the commit means). The cases are locked (in number order) before the hub's chain head,
    as the workbench does."""
    from .ingest import Router  # ingest imports this module for its hook

    due = receipts_due_txn(c, limit)
    if not due:
        return 0, None
    drop_receipt_due_txn(c, [event_id for event_id, _, _ in due])
    held = load_cases_txn(hub.store, c, federation, {number for _, number, _ in due}, lock=True)
    head_seq, head_id = hub.store.chain_head_txn(c, hub.me)
    folder = CaseFolder(federation)
    folded: dict[str, Case] = {}
    router = Router(hub.store, federation, hub.me, c, source=hub.me, at=at)
    ts = at.isoformat(timespec="seconds")
    for event_id, number, author in due:
        case = folded.get(number) or (held[number][1] if number in held else None)
        if case is None:
            continue
        receipt = sign_receipt(
            hub.key,
            author=hub.me,
            seq=head_seq + 1,
            prev=head_id,
            ts=ts,
            case=number,
            held=event_id,
            held_author=author,
        )
        try:
            folded[number] = folder.apply(case, receipt)
        except CaseRejected:
            continue  # already confirmed: nothing to sign
        router.store_event(receipt, mode="own", fold=False)
        router.effects.note("receipt.signed", case=number, event_id=event_id[:16])
        head_seq, head_id = receipt.seq, receipt.id
    if not folded:
        return len(due), None
    save_folds_txn(hub.store, c, [(case, held[n][0]) for n, case in folded.items()], at)
    assert head_id is not None
    hub.store.set_chain_head_txn(c, hub.me, head_seq, head_id)
    effects = router.flush()
    me = federation.home.members.get(hub.me)
    effects.relay = effects.relay or (me is not None and me.parent is not None)
    return len(due), effects


async def sign_due(hub: Hub, limit: int = 200) -> int:
    """Sign the receipts now due (blobs all held), a batch per transaction; how many."""
    from .ingest import record_effects

    federation = hub.view.federation
    if federation is None:
        return 0
    signed = taken = 0
    while taken < limit:
        batch = min(RECEIPT_BATCH, limit - taken)
        rows, effects = await hub.db.run(
            "receipt", _sign_batch_txn, hub, federation, hub.now(), batch
        )
        taken += rows
        if effects is not None:
            hub.committed(effects.recipients, effects.relay)
            record_effects(hub.metrics, effects)
            signed += effects.received["own"]
        if rows < batch:
            break
    return signed
