"""Every SQL statement of the station: public async methods, each over an inner ``_txn``.

The ``_txn`` functions take a sync :class:`~sqlalchemy.engine.Connection` inside one
transaction (see :mod:`node.storage.db`); callers pass domain callbacks where a decision
needs what the transaction reads (the next seq, the events of a case), so reading and
writing happen atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from protocol.event import Event
from protocol.ids import CASE_RE

from .db import Database, note
from .models import (
    blob_uploads,
    blobs,
    bundles,
    case_counters,
    case_private,
    cases,
    chain_head,
    clerks,
    configs,
    events,
    login_failures,
    quarantine,
    sessions,
    sync_state,
)
from .records import (
    Backlog,
    BlobRow,
    BundleRow,
    CaseFolded,
    CaseRecord,
    ClerkRow,
    ConfigRow,
    FeedResult,
    FoldOutcome,
    PrivateData,
    QuarantineRow,
    Refused,
    SessionRow,
    StoredEvent,
    SyncState,
    UploadRow,
)

#: Builds and signs the ``case.submitted`` event and its case row from (n, seq, prev).
MakeCase = Callable[[int, int, str | None], tuple[Event, CaseRecord]]
#: Builds and signs the next event of a case from (its events so far, seq, prev).
MakeCaseEvent = Callable[[list[StoredEvent], int, str | None], tuple[Event, CaseRecord]]
#: Refolds a case from all its events (pure; given by the services).
Refold = Callable[[list[StoredEvent]], FoldOutcome]
#: Signs the 送达回执 a refolded case awaits from this station, chained from (seq, prev),
#: given the case's events and the refold's outcome; each with the row after it (services).
MakeReceipts = Callable[
    [list[StoredEvent], FoldOutcome, int, str | None], list[tuple[Event, CaseRecord]]
]


class StoreError(Exception):
    """A store invariant would break (a bug in the caller, never bad user input)."""


def _stored(row: Row[Any]) -> StoredEvent:
    return StoredEvent(
        event=Event.from_json(row.wire),
        pos=row.pos,
        own=row.own,
        received_at=row.received_at,
        fold_error=row.fold_error,
    )


def _case(row: Row[Any]) -> CaseRecord:
    return CaseRecord(
        number=row.number,
        state=row.state,
        matter=row.matter,
        matter_name=row.matter_name,
        authority=row.authority,
        window=row.window_member,
        pickup=row.pickup,
        location=row.location,
        applicant_name=row.applicant_name,
        applicant_id_masked=row.applicant_id_masked,
        applicant_id_hash=row.applicant_id_hash,
        received=row.received,
        deadline=row.deadline,
        snapshot=json.loads(row.snapshot),
        updated_at=row.updated_at,
    )


def _clerk(row: Row[Any]) -> ClerkRow:
    return ClerkRow(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        password_hash=row.password_hash,
        role=row.role,
        active=row.active,
        password_changed_at=row.password_changed_at,
    )


def _quarantined(row: Row[Any]) -> QuarantineRow:
    return QuarantineRow(
        id=row.id,
        event_id=row.event_id,
        author=row.author,
        seq=row.seq,
        case_no=row.case_no,
        direction=row.direction,
        reason=row.reason,
        detail=row.detail,
        at=row.at,
        released_at=row.released_at,
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Store:
    """The station's persistence."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- own chain and cases -------------------------------------------------------------

    async def open_case(
        self,
        day: str,
        make: MakeCase,
        private: PrivateData,
        blob_hashes: Sequence[str],
        at: str,
    ) -> tuple[Event, CaseRecord]:
        """Number, sign and store a new case in one transaction (the counter, the event,
        the chain head, the case row, its private data, and the uploads it needs)."""
        return await self.db.write(self._open_case_txn, day, make, private, blob_hashes, at)

    def _open_case_txn(
        self,
        conn: Connection,
        day: str,
        make: MakeCase,
        private: PrivateData,
        blob_hashes: Sequence[str],
        at: str,
    ) -> tuple[Event, CaseRecord]:
        n = self._next_number_txn(conn, day)
        head_seq, head_id = self._head_txn(conn)
        event, record = make(n, head_seq + 1, head_id)
        self._append_own_txn(conn, event, head_seq, head_id, at)
        self._put_case_txn(conn, record, at)
        conn.execute(
            insert(case_private).values(
                case_no=record.number,
                id_number=private.id_number,
                agent_id_number=private.agent_id_number,
                phone=private.phone,
                query_code=private.query_code,
            )
        )
        for blob in sorted(set(blob_hashes)):
            self._want_upload_txn(conn, blob, at)
        return event, record

    async def append_to_case(
        self, case_no: str, make: MakeCaseEvent, at: str, blob_hashes: Sequence[str] = ()
    ) -> tuple[Event, CaseRecord]:
        """Sign and store the next event of a case, decided on its events as stored now
        (with the uploads of the materials it names)."""
        done = await self.db.write(self._append_to_case_txn, case_no, [make], at, blob_hashes)
        return done[-1]

    async def append_all_to_case(
        self, case_no: str, makes: Sequence[MakeCaseEvent], at: str
    ) -> list[tuple[Event, CaseRecord]]:
        """Several events of one case in one transaction (即办: 受理 then 办结), each made on
        the events stored before it."""
        return await self.db.write(self._append_to_case_txn, case_no, list(makes), at, ())

    def _append_to_case_txn(
        self,
        conn: Connection,
        case_no: str,
        makes: list[MakeCaseEvent],
        at: str,
        blob_hashes: Sequence[str],
    ) -> list[tuple[Event, CaseRecord]]:
        done = []
        for make in makes:
            held = self._case_events_txn(conn, case_no)
            head_seq, head_id = self._head_txn(conn)
            event, record = make(held, head_seq + 1, head_id)
            self._append_own_txn(conn, event, head_seq, head_id, at)
            self._put_case_txn(conn, record, at)
            done.append((event, record))
        for blob in sorted(set(blob_hashes)):
            self._want_upload_txn(conn, blob, at)
        return done

    async def open_bundle(
        self,
        day: str,
        number_of: Callable[[int], str],
        code: str,
        name: str,
        children: Sequence[tuple[MakeCase, PrivateData]],
        blob_hashes: Sequence[str],
        at: str,
    ) -> tuple[str, list[tuple[Event, CaseRecord]]]:
        """一件事: take the parent's number, open every child case, record the bundle, all
        in one transaction. Returns the parent number and the children."""
        return await self.db.write(
            self._open_bundle_txn, day, number_of, code, name, list(children), blob_hashes, at
        )

    def _open_bundle_txn(
        self,
        conn: Connection,
        day: str,
        number_of: Callable[[int], str],
        code: str,
        name: str,
        children: list[tuple[MakeCase, PrivateData]],
        blob_hashes: Sequence[str],
        at: str,
    ) -> tuple[str, list[tuple[Event, CaseRecord]]]:
        parent = number_of(self._next_number_txn(conn, day))
        opened = [
            self._open_case_txn(conn, day, make, private, blob_hashes, at)
            for make, private in children
        ]
        conn.execute(
            insert(bundles).values(
                number=parent,
                code=code,
                name=name,
                children=json.dumps([record.number for _, record in opened]),
                created_at=at,
            )
        )
        return parent, opened

    def _next_number_txn(self, conn: Connection, day: str) -> int:
        """Take the day's next case number (the n of ``<member>-<day>-<nnnn>``)."""
        last = conn.execute(select(case_counters.c.last).where(case_counters.c.day == day))
        n = (last.scalar() or 0) + 1
        if n == 1:
            conn.execute(insert(case_counters).values(day=day, last=n))
        else:
            conn.execute(update(case_counters).where(case_counters.c.day == day).values(last=n))
        return int(n)

    async def bundle(self, number: str) -> BundleRow | None:
        return await self.db.read(self._bundle_txn, number)

    def _bundle_txn(self, conn: Connection, number: str) -> BundleRow | None:
        row = conn.execute(select(bundles).where(bundles.c.number == number)).first()
        if row is None:
            return None
        return BundleRow(row.number, row.code, row.name, json.loads(row.children), row.created_at)

    async def cases_of_applicant(self, id_hash: str, limit: int = 50) -> list[CaseRecord]:
        """Cases of one applicant (by ID hash) held here, newest first."""
        return await self.db.read(self._cases_of_applicant_txn, id_hash, limit)

    def _cases_of_applicant_txn(
        self, conn: Connection, id_hash: str, limit: int
    ) -> list[CaseRecord]:
        rows = conn.execute(
            select(cases)
            .where(cases.c.applicant_id_hash == id_hash)
            .order_by(cases.c.received.desc(), cases.c.number.desc())
            .limit(limit)
        )
        return [_case(row) for row in rows]

    def _append_own_txn(
        self, conn: Connection, event: Event, head_seq: int, head_id: str | None, at: str
    ) -> None:
        if event.seq != head_seq + 1 or event.prev != head_id:
            raise StoreError(f"event seq {event.seq} does not extend the chain at {head_seq}")
        self._insert_event_txn(conn, event, own=True, at=at)
        conn.execute(
            update(chain_head).where(chain_head.c.id == 1).values(seq=event.seq, event_id=event.id)
        )

    def _head_txn(self, conn: Connection) -> tuple[int, str | None]:
        row = conn.execute(select(chain_head.c.seq, chain_head.c.event_id)).one()
        return row.seq, row.event_id

    async def head(self) -> tuple[int, str | None]:
        """The own chain's head (seq, id); (0, None) before the first event."""
        return await self.db.read(self._head_txn)

    def _insert_event_txn(self, conn: Connection, event: Event, *, own: bool, at: str) -> None:
        pos = conn.execute(select(func.coalesce(func.max(events.c.pos), 0))).scalar_one() + 1
        conn.execute(
            insert(events).values(
                id=event.id,
                pos=pos,
                author=event.author,
                seq=event.seq,
                prev=event.prev,
                type=event.type,
                case_no=event.case,
                to=json.dumps(list(event.to)),
                wire=event.wire_bytes,
                ts=event.ts,
                received_at=at,
                own=own,
            )
        )

    def _put_case_txn(self, conn: Connection, record: CaseRecord, at: str) -> None:
        values = {
            "state": record.state,
            "matter": record.matter,
            "matter_name": record.matter_name,
            "authority": record.authority,
            "window_member": record.window,
            "pickup": record.pickup,
            "location": record.location,
            "applicant_name": record.applicant_name,
            "applicant_id_masked": record.applicant_id_masked,
            "applicant_id_hash": record.applicant_id_hash,
            "received": record.received,
            "deadline": record.deadline,
            "snapshot": json.dumps(record.snapshot, ensure_ascii=False, sort_keys=True),
            "updated_at": at,
        }
        before = conn.execute(select(cases.c.snapshot).where(cases.c.number == record.number))
        held = json.loads(before.scalar() or "{}").get("history", [])
        folded = tuple(i for i in record.snapshot.get("history", []) if i not in held)
        if folded:  # newly folded events: notifications hook on this
            note(conn, CaseFolded(record.number, folded))
        done = conn.execute(update(cases).where(cases.c.number == record.number).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(cases).values(number=record.number, **values))

    async def restore_own(self, chain: Sequence[Event], at: str) -> None:
        """Put back this station's own chain as its hub holds it (``node restore``): the
        events, the chain head (the next event extends it), custody (the hub holds them
        all) and the per-day case counters (no case number is ever issued twice)."""
        await self.db.write(self._restore_own_txn, list(chain), at)

    def _restore_own_txn(self, conn: Connection, chain: list[Event], at: str) -> None:
        head_seq, head_id = self._head_txn(conn)
        if head_seq:
            raise StoreError(f"the station already has its own chain (seq {head_seq})")
        counters: dict[str, int] = {}
        for event in chain:
            self._append_own_txn(conn, event, head_seq, head_id, at)
            head_seq, head_id = event.seq, event.id
            number = CASE_RE.match(event.case or "")
            if event.type == "case.submitted" and number is not None:
                day, n = number.group(2), int(number.group(3))
                counters[day] = max(counters.get(day, 0), n)
        conn.execute(update(sync_state).where(sync_state.c.id == 1).values(custody_seq=head_seq))
        for day, last in counters.items():
            conn.execute(insert(case_counters).values(day=day, last=last))

    # -- received events -----------------------------------------------------------------

    async def store_feed_page(
        self,
        accepted: Sequence[Event],
        refused: Sequence[Refused],
        cursor: str | None,
        refold: Refold,
        at: str,
        receipts: MakeReceipts | None = None,
    ) -> FeedResult:
        """Store verified feed events, quarantine refused ones, refold the cases they touch,
        sign the 送达回执 those cases now await from this station (``receipts``) and move the
        cursor past them, all in one transaction: a crash loses no receipt owed."""
        return await self.db.write(
            self._feed_page_txn, accepted, refused, cursor, refold, at, receipts
        )

    def _feed_page_txn(
        self,
        conn: Connection,
        accepted: Sequence[Event],
        refused: Sequence[Refused],
        cursor: str | None,
        refold: Refold,
        at: str,
        receipts: MakeReceipts | None = None,
    ) -> FeedResult:
        stored: list[str] = []
        duplicates = 0
        touched: list[str] = []
        quarantined = list(refused)
        for event in accepted:
            held = conn.execute(
                select(events.c.id).where(
                    or_(
                        events.c.id == event.id,
                        and_(events.c.author == event.author, events.c.seq == event.seq),
                    )
                )
            ).scalar()
            if held == event.id:
                duplicates += 1
                continue
            if held is not None:  # the author signed two events with one seq: keep both
                detail = f"{event.author} seq {event.seq} is already {held}"
                quarantined.append(
                    Refused(
                        event.id,
                        event.author,
                        event.seq,
                        event.case,
                        "equivocation",
                        detail,
                        event.wire_bytes,
                    )
                )
                continue
            self._insert_event_txn(conn, event, own=False, at=at)
            stored.append(event.id)
            if event.case is not None and event.case not in touched:
                touched.append(event.case)
        for item in quarantined:
            self._quarantine_txn(conn, item, "in", at)
        signed: list[str] = []
        for case_no in touched:
            signed += self._refold_txn(conn, case_no, refold, at, receipts)
        if cursor is not None:
            conn.execute(update(sync_state).where(sync_state.c.id == 1).values(feed_cursor=cursor))
        return FeedResult(stored, duplicates, len(quarantined), touched, signed)

    def _refold_txn(
        self,
        conn: Connection,
        case_no: str,
        refold: Refold,
        at: str,
        receipts: MakeReceipts | None = None,
    ) -> list[str]:
        """Refold one case; with ``receipts``, sign what it then awaits from this station as
        the next events of the own chain. Returns the ids of the receipts signed."""
        held = self._case_events_txn(conn, case_no)
        outcome = refold(held)
        for item in held:
            error = outcome.errors.get(item.event.id)
            if error != item.fold_error:
                conn.execute(
                    update(events).where(events.c.id == item.event.id).values(fold_error=error)
                )
        if outcome.record is None:
            return []
        self._put_case_txn(conn, outcome.record, at)
        if receipts is None:
            return []
        head_seq, head_id = self._head_txn(conn)
        signed = []
        for event, record in receipts(held, outcome, head_seq + 1, head_id):
            self._append_own_txn(conn, event, head_seq, head_id, at)
            self._put_case_txn(conn, record, at)
            head_seq, head_id = event.seq, event.id
            signed.append(event.id)
        return signed

    async def refold_all(
        self, refold: Refold, at: str, receipts: MakeReceipts | None = None
    ) -> tuple[int, list[str]]:
        """Refold every case (after a new config) and sign the 送达回执 they now await from
        this station; returns how many cases were refolded and the receipts signed."""
        return await self.db.write(self._refold_all_txn, refold, at, receipts)

    def _refold_all_txn(
        self, conn: Connection, refold: Refold, at: str, receipts: MakeReceipts | None
    ) -> tuple[int, list[str]]:
        numbers = conn.execute(
            select(events.c.case_no).where(events.c.case_no.is_not(None)).distinct()
        ).scalars()
        count, signed = 0, []
        for case_no in list(numbers):
            signed += self._refold_txn(conn, case_no, refold, at, receipts)
            count += 1
        return count, signed

    # -- sync ------------------------------------------------------------------------------

    async def sync_state(self) -> SyncState:
        return await self.db.read(self._sync_state_txn)

    def _sync_state_txn(self, conn: Connection) -> SyncState:
        row = conn.execute(select(sync_state)).one()
        return SyncState(
            feed_cursor=row.feed_cursor,
            custody_seq=row.custody_seq,
            last_success=row.last_success,
            last_attempt=row.last_attempt,
            last_error=row.last_error,
            last_error_at=row.last_error_at,
            config_serial=row.config_serial,
        )

    async def own_events_after(
        self, author: str, seq: int, *, before: int | None = None, limit: int = 1000
    ) -> list[Event]:
        """Own events with ``seq`` < s (< ``before``), in seq order."""
        return await self.db.read(self._own_after_txn, author, seq, before, limit)

    def _own_after_txn(
        self, conn: Connection, author: str, seq: int, before: int | None, limit: int
    ) -> list[Event]:
        query = select(events.c.wire).where(
            events.c.own.is_(True), events.c.author == author, events.c.seq > seq
        )
        if before is not None:
            query = query.where(events.c.seq < before)
        rows = conn.execute(query.order_by(events.c.seq).limit(limit)).scalars()
        return [Event.from_json(wire) for wire in rows]

    async def record_ack(
        self, custody_seq: int, quarantined: Iterable[tuple[Event, str, str]], at: str
    ) -> int:
        """Persist the custody head (it only grows) and the events the hub rejected."""
        return await self.db.write(self._record_ack_txn, list(quarantined), custody_seq, at)

    def _record_ack_txn(
        self, conn: Connection, quarantined: list[tuple[Event, str, str]], custody_seq: int, at: str
    ) -> int:
        held = conn.execute(select(sync_state.c.custody_seq)).scalar_one()
        head = max(held, custody_seq)
        conn.execute(update(sync_state).where(sync_state.c.id == 1).values(custody_seq=head))
        for event, reason, detail in quarantined:
            already = conn.execute(
                select(quarantine.c.id).where(
                    quarantine.c.event_id == event.id,
                    quarantine.c.direction == "out",
                    quarantine.c.released_at.is_(None),
                )
            ).scalar()
            if already is None:
                self._quarantine_txn(
                    conn,
                    Refused(event.id, event.author, event.seq, event.case, reason, detail, None),
                    "out",
                    at,
                )
        return int(head)

    def _quarantine_txn(self, conn: Connection, item: Refused, direction: str, at: str) -> None:
        conn.execute(
            insert(quarantine).values(
                event_id=item.event_id,
                author=item.author,
                seq=item.seq,
                case_no=item.case_no,
                direction=direction,
                reason=item.reason,
                detail=item.detail[:2000],
                wire=item.wire,
                at=at,
            )
        )

    async def own_quarantine_floor(self, author: str) -> int | None:
        """The lowest own seq the hub refused and no one has released (it blocks later seqs)."""
        return await self.db.read(self._floor_txn, author)

    def _floor_txn(self, conn: Connection, author: str) -> int | None:
        value = conn.execute(
            select(func.min(quarantine.c.seq)).where(
                quarantine.c.direction == "out",
                quarantine.c.author == author,
                quarantine.c.released_at.is_(None),
            )
        ).scalar()
        return None if value is None else int(value)

    async def record_attempt(self, at: str, error: str | None) -> None:
        """One sync cycle ended: in success (``error`` None) or with an error."""
        await self.db.write(self._attempt_txn, at, error)

    def _attempt_txn(self, conn: Connection, at: str, error: str | None) -> None:
        values: dict[str, Any] = {"last_attempt": at}
        if error is None:
            values["last_success"] = at
        else:
            values.update(last_error=error[:2000], last_error_at=at)
        conn.execute(update(sync_state).where(sync_state.c.id == 1).values(**values))

    async def backlog(self, author: str) -> Backlog:
        return await self.db.read(self._backlog_txn, author)

    def _backlog_txn(self, conn: Connection, author: str) -> Backlog:
        custody = conn.execute(select(sync_state.c.custody_seq)).scalar_one()
        ev = conn.execute(
            select(func.count(), func.coalesce(func.sum(func.length(events.c.wire)), 0)).where(
                events.c.own.is_(True), events.c.author == author, events.c.seq > custody
            )
        ).one()
        bl = conn.execute(
            select(func.count(), func.coalesce(func.sum(blobs.c.size - blob_uploads.c.offset), 0))
            .select_from(blob_uploads.join(blobs, blobs.c.hash == blob_uploads.c.hash))
            .where(blob_uploads.c.done.is_(False))
        ).one()
        return Backlog(int(ev[0]), int(ev[1]), int(bl[0]), int(bl[1]))

    async def quarantine_list(self, limit: int = 200) -> list[QuarantineRow]:
        return await self.db.read(self._quarantine_list_txn, limit)

    def _quarantine_list_txn(self, conn: Connection, limit: int) -> list[QuarantineRow]:
        rows = conn.execute(select(quarantine).order_by(quarantine.c.id.desc()).limit(limit))
        return [_quarantined(row) for row in rows]

    async def quarantine_item(self, item_id: int) -> QuarantineRow | None:
        return await self.db.read(self._quarantine_item_txn, item_id)

    def _quarantine_item_txn(self, conn: Connection, item_id: int) -> QuarantineRow | None:
        row = conn.execute(select(quarantine).where(quarantine.c.id == item_id)).first()
        return None if row is None else _quarantined(row)

    async def release_quarantine(self, item_id: int, at: str) -> QuarantineRow | None:
        """Operator action: retry a refused own event (it goes back to the push queue)."""
        return await self.db.write(self._release_txn, item_id, at)

    def _release_txn(self, conn: Connection, item_id: int, at: str) -> QuarantineRow | None:
        row = conn.execute(select(quarantine).where(quarantine.c.id == item_id)).first()
        if row is None or row.released_at is not None:
            return None
        conn.execute(update(quarantine).where(quarantine.c.id == item_id).values(released_at=at))
        return _quarantined(row)

    # -- blobs and uploads -------------------------------------------------------------------

    async def add_blob(self, row: BlobRow, at: str) -> None:
        """Record a blob already written and fsynced to the blob store (idempotent)."""
        await self.db.write(self._add_blob_txn, row, at)

    def _add_blob_txn(self, conn: Connection, row: BlobRow, at: str) -> None:
        if conn.execute(select(blobs.c.hash).where(blobs.c.hash == row.hash)).first() is None:
            conn.execute(
                insert(blobs).values(
                    hash=row.hash, size=row.size, name=row.name, mime=row.mime, created_at=at
                )
            )

    async def blob(self, blob: str) -> BlobRow | None:
        return await self.db.read(self._blob_txn, blob)

    def _blob_txn(self, conn: Connection, blob: str) -> BlobRow | None:
        row = conn.execute(select(blobs).where(blobs.c.hash == blob)).first()
        return None if row is None else BlobRow(row.hash, row.size, row.name, row.mime)

    def _want_upload_txn(self, conn: Connection, blob: str, at: str) -> None:
        held = conn.execute(select(blob_uploads.c.hash).where(blob_uploads.c.hash == blob)).first()
        if held is None:
            conn.execute(
                insert(blob_uploads).values(
                    hash=blob,
                    url=None,
                    offset=0,
                    done=False,
                    bytes_sent=0,
                    created_at=at,
                    updated_at=at,
                )
            )

    async def uploads(self, *, pending_only: bool = True, limit: int = 100) -> list[UploadRow]:
        return await self.db.read(self._uploads_txn, pending_only, limit)

    def _uploads_txn(self, conn: Connection, pending_only: bool, limit: int) -> list[UploadRow]:
        query = select(blob_uploads, blobs.c.size).join(blobs, blobs.c.hash == blob_uploads.c.hash)
        if pending_only:
            query = query.where(blob_uploads.c.done.is_(False))
        rows = conn.execute(query.order_by(blob_uploads.c.created_at).limit(limit))
        return [
            UploadRow(r.hash, r.size, r.url, r.offset, r.done, r.bytes_sent, r.last_error)
            for r in rows
        ]

    async def upload_state(self, blob: str) -> UploadRow | None:
        rows = await self.db.read(self._upload_state_txn, blob)
        return rows

    def _upload_state_txn(self, conn: Connection, blob: str) -> UploadRow | None:
        r = conn.execute(
            select(blob_uploads, blobs.c.size)
            .join(blobs, blobs.c.hash == blob_uploads.c.hash)
            .where(blob_uploads.c.hash == blob)
        ).first()
        if r is None:
            return None
        return UploadRow(r.hash, r.size, r.url, r.offset, r.done, r.bytes_sent, r.last_error)

    async def update_upload(self, blob: str, at: str, **values: Any) -> None:
        """Set upload fields (``url``, ``offset``, ``done``, ``last_error``); ``sent`` adds."""
        await self.db.write(self._update_upload_txn, blob, at, values)

    def _update_upload_txn(
        self, conn: Connection, blob: str, at: str, values: dict[str, Any]
    ) -> None:
        allowed = {"url", "offset", "done", "last_error", "sent"}
        unknown = set(values) - allowed
        if unknown:
            raise StoreError(f"unknown upload fields {sorted(unknown)}")
        sent = values.pop("sent", 0)
        conn.execute(
            update(blob_uploads)
            .where(blob_uploads.c.hash == blob)
            .values(
                updated_at=at,
                bytes_sent=blob_uploads.c.bytes_sent + sent,
                **values,
            )
        )

    # -- configs -------------------------------------------------------------------------------

    async def configs(self) -> list[ConfigRow]:
        return await self.db.read(self._configs_txn)

    def _configs_txn(self, conn: Connection) -> list[ConfigRow]:
        rows = conn.execute(select(configs).order_by(configs.c.home.desc(), configs.c.city))
        return [ConfigRow(r.city, r.home, r.serial, r.signed, r.received_at) for r in rows]

    async def save_config(self, row: ConfigRow) -> None:
        """Store a signed config the caller has already accepted (replaces the city's)."""
        await self.db.write(self._save_config_txn, row)

    def _save_config_txn(self, conn: Connection, row: ConfigRow) -> None:
        conn.execute(delete(configs).where(configs.c.city == row.city))
        conn.execute(
            insert(configs).values(
                city=row.city,
                home=row.home,
                serial=row.serial,
                signed=row.signed,
                received_at=row.received_at,
            )
        )
        if row.home:
            conn.execute(
                update(sync_state).where(sync_state.c.id == 1).values(config_serial=row.serial)
            )

    # -- case views ----------------------------------------------------------------------------

    async def list_cases(
        self,
        *,
        text: str | None = None,
        id_hash: str | None = None,
        state: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[CaseRecord], int]:
        """Cases, newest first, matching a case number or applicant name fragment, an
        applicant's ID hash, or a state; with the total count."""
        return await self.db.read(self._list_cases_txn, text, id_hash, state, limit, offset)

    def _list_cases_txn(
        self,
        conn: Connection,
        text: str | None,
        id_hash: str | None,
        state: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[CaseRecord], int]:
        conditions: list[ColumnElement[bool]] = []
        if text:
            pattern = _like(text)
            matches: list[ColumnElement[bool]] = [
                cases.c.number.like(pattern, escape="\\"),
                cases.c.applicant_name.like(pattern, escape="\\"),
            ]
            if id_hash is not None:
                matches.append(cases.c.applicant_id_hash == id_hash)
            conditions.append(or_(*matches))
        if state:
            conditions.append(cases.c.state == state)
        total = conn.execute(select(func.count()).select_from(cases).where(*conditions)).scalar()
        rows = conn.execute(
            select(cases)
            .where(*conditions)
            .order_by(cases.c.received.desc(), cases.c.number.desc())
            .limit(limit)
            .offset(offset)
        )
        return [_case(row) for row in rows], int(total or 0)

    async def open_deadlines(self, states: list[str]) -> list[str]:
        """The deadlines (ISO dates) of cases in ``states`` that have one (电子监察 counts)."""

        def txn(conn: Connection) -> list[str]:
            rows = conn.execute(
                select(cases.c.deadline).where(
                    cases.c.state.in_(states), cases.c.deadline.is_not(None)
                )
            )
            return [str(r[0]) for r in rows]

        return await self.db.read(txn)

    async def case(self, number: str) -> CaseRecord | None:
        return await self.db.read(self._case_txn, number)

    def _case_txn(self, conn: Connection, number: str) -> CaseRecord | None:
        row = conn.execute(select(cases).where(cases.c.number == number)).first()
        return None if row is None else _case(row)

    async def case_events(self, number: str) -> list[StoredEvent]:
        return await self.db.read(self._case_events_txn, number)

    def _case_events_txn(self, conn: Connection, number: str) -> list[StoredEvent]:
        rows = conn.execute(select(events).where(events.c.case_no == number).order_by(events.c.pos))
        return [_stored(row) for row in rows]

    async def case_private(self, number: str) -> PrivateData | None:
        return await self.db.read(self._private_txn, number)

    def _private_txn(self, conn: Connection, number: str) -> PrivateData | None:
        row = conn.execute(select(case_private).where(case_private.c.case_no == number)).first()
        if row is None:
            return None
        return PrivateData(row.id_number, row.agent_id_number, row.phone, row.query_code)

    async def event(self, event_id: str) -> StoredEvent | None:
        return await self.db.read(self._event_txn, event_id)

    def _event_txn(self, conn: Connection, event_id: str) -> StoredEvent | None:
        row = conn.execute(select(events).where(events.c.id == event_id)).first()
        return None if row is None else _stored(row)

    # -- clerks and sessions -------------------------------------------------------------------

    async def clerk_count(self) -> int:
        return await self.db.read(
            lambda conn: int(conn.execute(select(func.count()).select_from(clerks)).scalar_one())
        )

    async def create_clerk(
        self, username: str, display_name: str, password_hash: str, role: str, at: str
    ) -> ClerkRow | None:
        """A new clerk account; None when the username is taken."""
        return await self.db.write(
            self._create_clerk_txn, username, display_name, password_hash, role, at
        )

    def _create_clerk_txn(
        self,
        conn: Connection,
        username: str,
        display_name: str,
        password_hash: str,
        role: str,
        at: str,
    ) -> ClerkRow | None:
        if self._clerk_by_name_txn(conn, username) is not None:
            return None
        conn.execute(
            insert(clerks).values(
                username=username,
                display_name=display_name,
                password_hash=password_hash,
                role=role,
                active=True,
                created_at=at,
            )
        )
        return self._clerk_by_name_txn(conn, username)

    async def clerk_by_username(self, username: str) -> ClerkRow | None:
        return await self.db.read(self._clerk_by_name_txn, username)

    def _clerk_by_name_txn(self, conn: Connection, username: str) -> ClerkRow | None:
        row = conn.execute(select(clerks).where(clerks.c.username == username)).first()
        return None if row is None else _clerk(row)

    async def list_clerks(self) -> list[ClerkRow]:
        return await self.db.read(
            lambda conn: [_clerk(r) for r in conn.execute(select(clerks).order_by(clerks.c.id))]
        )

    async def update_clerk(self, clerk_id: int, **values: Any) -> None:
        """Set ``password_hash``/``password_changed_at``/``active``/``display_name``/``role``."""
        allowed = {"password_hash", "password_changed_at", "active", "display_name", "role"}
        if set(values) - allowed:
            raise StoreError(f"unknown clerk fields {sorted(set(values) - allowed)}")
        await self.db.write(
            lambda conn: conn.execute(
                update(clerks).where(clerks.c.id == clerk_id).values(**values)
            )
        )

    async def create_session(
        self, token_hash: str, clerk_id: int, csrf: str, now: float, expires_at: float
    ) -> None:
        await self.db.write(self._create_session_txn, token_hash, clerk_id, csrf, now, expires_at)

    def _create_session_txn(
        self,
        conn: Connection,
        token_hash: str,
        clerk_id: int,
        csrf: str,
        now: float,
        expires_at: float,
    ) -> None:
        conn.execute(delete(sessions).where(sessions.c.expires_at < now))
        conn.execute(
            insert(sessions).values(
                token_hash=token_hash,
                clerk_id=clerk_id,
                csrf=csrf,
                created_at=now,
                expires_at=expires_at,
            )
        )

    async def session(self, token_hash: str, now: float) -> SessionRow | None:
        """The live session of a token hash (expired or inactive clerk: None)."""
        return await self.db.read(self._session_txn, token_hash, now)

    def _session_txn(self, conn: Connection, token_hash: str, now: float) -> SessionRow | None:
        row = conn.execute(
            select(sessions.c.csrf, sessions.c.expires_at, clerks)
            .join(clerks, clerks.c.id == sessions.c.clerk_id)
            .where(sessions.c.token_hash == token_hash, sessions.c.expires_at > now)
        ).first()
        if row is None or not row.active:
            return None
        return SessionRow(token_hash, _clerk(row), row.csrf, row.expires_at)

    async def delete_session(self, token_hash: str) -> None:
        await self.db.write(
            lambda conn: conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))
        )

    async def delete_sessions_of(self, clerk_id: int, keep: str | None = None) -> None:
        def txn(conn: Connection) -> None:
            query = delete(sessions).where(sessions.c.clerk_id == clerk_id)
            if keep is not None:
                query = query.where(sessions.c.token_hash != keep)
            conn.execute(query)

        await self.db.write(txn)

    async def login_failure(self, username: str, remote: str, at: float) -> None:
        await self.db.write(
            lambda conn: conn.execute(
                insert(login_failures).values(username=username, remote=remote, at=at)
            )
        )

    async def login_failures(self, username: str, remote: str, since: float) -> tuple[int, int]:
        """Failed logins since ``since``: (for this username, from this address)."""
        return await self.db.read(self._failures_txn, username, remote, since)

    def _failures_txn(
        self, conn: Connection, username: str, remote: str, since: float
    ) -> tuple[int, int]:
        def count(*where: Any) -> int:
            query = select(func.count()).select_from(login_failures).where(*where)
            return int(conn.execute(query).scalar_one())

        recent = login_failures.c.at >= since
        return (
            count(login_failures.c.username == username, recent),
            count(login_failures.c.remote == remote, recent),
        )

    async def clear_login_failures(self, username: str, before: float) -> None:
        """After a good login: forget that username's failures; drop all old rows."""
        await self.db.write(
            lambda conn: conn.execute(
                delete(login_failures).where(
                    or_(login_failures.c.username == username, login_failures.c.at < before)
                )
            )
        )
