"""送达回执 at the window: confirm what the station holds, in the transaction that stored it.

The fold says what a case awaits (:mod:`protocol.case`: every event but a receipt is owed one
``case.received`` by each member it is addressed to). A station is an addressee of the acts
of the authority (受理, 补正 notices, 办结 …, sent to the accepting and the pickup window) and
of another window's events (a submission naming it as the pickup window, the pickup
window's 出件). Whenever the store takes feed events in and refolds their cases
(:meth:`node.storage.Store.store_feed_page`, also after a new config), it calls the maker
built here for each case; the receipts it signs become the station's next own events in
that same transaction, so a crash never loses one owed, and the sync engine pushes them on
its next round (it loops at once when a feed page signed some).

A station signs as soon as it holds the event: unlike the authority's hub it does not wait
for the blobs the event names (materials stay with the authority; a window does not need
them to confirm that the act reached it).
"""

from __future__ import annotations

import logging

from protocol.case import Case, CaseFolder, CaseRejected, sign_receipt
from protocol.config import Federation
from protocol.event import Event

from ..logs import log
from ..storage import CaseRecord, FoldOutcome, StoredEvent
from ..storage.store import MakeReceipts
from .context import NodeContext
from .folding import case_record

logger = logging.getLogger("node.receipts")


def receipt_maker(ctx: NodeContext, federation: Federation) -> MakeReceipts:
    """The store callback that signs the receipts a refolded case awaits from this station,
    each folded in before the next is signed."""
    me = ctx.station.id
    ts = ctx.now().isoformat(timespec="seconds")
    folder = CaseFolder(federation)

    def make(
        held: list[StoredEvent], outcome: FoldOutcome, seq: int, prev: str | None
    ) -> list[tuple[Event, CaseRecord]]:
        case = outcome.case
        owed_here = [r for r in case.awaiting if r.member == me] if case else []
        if case is None or not owed_here:
            return []  # the usual answer, read off the fold the store just made
        authors = {item.event.id: item.event.author for item in held}
        signed: list[tuple[Event, CaseRecord]] = []
        for owed in owed_here:
            event = sign_receipt(
                ctx.key,
                author=me,
                seq=seq,
                prev=prev,
                ts=ts,
                case=case.number,
                held=owed.event,
                held_author=authors[owed.event],
            )
            folded = _fold(folder, case, event)
            if folded is None:
                continue
            case = folded
            signed.append((event, case_record(case, federation)))
            seq, prev = event.seq + 1, event.id
        return signed

    return make


def _fold(folder: CaseFolder, case: Case, event: Event) -> Case | None:
    """The case with the receipt folded in; None (logged) if the fold refuses it, which
    would be a bug: the receipt is signed only because the case awaits it."""
    try:
        return folder.apply(case, event)
    except CaseRejected as exc:
        log(logger, "receipt.refused", level=logging.ERROR, case=case.number, reason=exc.reason)
        return None
