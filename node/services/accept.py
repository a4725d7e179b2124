"""收件: accept an application at the window, offline if need be.

The order is what makes a receipt trustworthy after a power cut:

1. check everything the window can check (matter in scope, applicant, materials, pledge),
   and fold a draft ``case.submitted`` with :class:`~protocol.case.CaseFolder` so the
   clerk hears any refusal at the window, in Chinese, before anything is written;
2. write the material files to the blob store (temp file, fsync, rename);
3. in one transaction: take the day's case number, sign the event onto the chain head,
   fold it, store the event, the head, the case row and the private data;
4. wake the sync engine. The receipt is printed from what was committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from protocol.case import CaseFolder, CaseRejected, day_of, submitted_to
from protocol.config import Federation, Material, Matter
from protocol.errors import ProtocolError
from protocol.event import Event
from protocol.http.web import result as sealed
from protocol.ids import case_number, division
from protocol.routing import competent_authority, may_accept

from ..logs import log
from ..privacy import id_hash, mask_id, normalize_id, resident_id_ok
from ..storage import BlobRow, CaseRecord, ClerkRow, PrivateData
from .context import NodeContext
from .errors import ServiceError, refused
from .folding import calendar_for, case_record, member_name, promised
from .messages import SCOPE_LABELS, refusal
from .query import new_code, qr_text, track_body

logger = logging.getLogger("node.accept")

#: GB/T 39046 certificate types the window form offers (代码: 名称).
ID_TYPES = {
    "111": "居民身份证",
    "414": "普通护照",
    "516": "港澳居民来往内地通行证",
    "511": "台湾居民来往大陆通行证",
    "553": "外国人永久居留身份证",
    "990": "其他证件",
}
MODES = ("provided", "deferred", "pledged", "absent")
MODE_LABELS = {
    "provided": "已提交",
    "deferred": "容缺后补",
    "pledged": "告知承诺",
    "absent": "未提交",
}
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_FILES = 50
_DIVISION = re.compile(r"^[0-9]{4}(?:[0-9]{2}(?:[0-9]{3}(?:[0-9]{3})?)?)?\Z")
_PHONE = re.compile(r"^[0-9+\-]{5,20}\Z")


@dataclass(frozen=True)
class UploadedFile:
    """One scanned page, photo or PDF as the clerk uploaded it."""

    name: str
    mime: str
    data: bytes


@dataclass(frozen=True)
class MaterialInput:
    """How one checklist item was handed in: ``provided`` (with files, or an original
    checked at the window), ``deferred`` (容缺), ``pledged`` (告知承诺) or ``absent``."""

    id: str
    mode: str = "provided"
    files: tuple[UploadedFile, ...] = ()
    reuse: tuple[str, ...] = ()  # 只提交一次材料: hashes of earlier scans held here


@dataclass(frozen=True)
class Person:
    """申请人 or 代办人 as typed at the window (the full number stays at the station)."""

    name: str
    id_number: str
    id_type: str = "111"


@dataclass(frozen=True)
class Application:
    """Everything the 新建办件 form collects."""

    matter: str
    applicant: Person
    materials: tuple[MaterialInput, ...] = ()
    agent: Person | None = None
    phone: str | None = None
    location: str | None = None  # 属地 division code; default: the station's
    pickup: str | None = None  # 出件窗口; default: this station
    pledge_text: str | None = None
    pledge_deadline: date | None = None
    note: str = ""


@dataclass(frozen=True)
class _Checked:
    """An application after every window-side check, ready to be signed."""

    matter: Matter
    authority: str
    body: dict[str, Any]
    files: list[tuple[str, UploadedFile]] = field(default_factory=list)  # (hash, file)
    reused: list[str] = field(default_factory=list)  # earlier scans held here


def _person(person: Person, where: str) -> tuple[str, str, str]:
    """(name, normalized number, id type) or a ServiceError naming the field."""
    name = person.name.strip()
    if not name or len(name) > 50:
        raise refused("bad_name", "请填写姓名（不超过 50 个字）。", field=f"{where}.name")
    if person.id_type not in ID_TYPES:
        raise refused("bad_id_type", "请选择证件类型。", field=f"{where}.id_type")
    number = normalize_id(person.id_number)
    if person.id_type == "111" and not resident_id_ok(number):
        raise refused(
            "bad_id_number",
            "居民身份证号码有误（应为 18 位，末位校验码正确），请核对。",
            field=f"{where}.id_number",
        )
    if not 3 <= len(number) <= 40:
        raise refused("bad_id_number", "请填写证件号码。", field=f"{where}.id_number")
    return name, number, person.id_type


def _scope_refusal(matter: Matter, window: str) -> ServiceError:
    return ServiceError(
        "out_of_scope",
        f"本窗口不能受理事项「{matter.name}」：{SCOPE_LABELS.get(matter.scope, matter.scope)}，"
        f"本窗口（{window}）不在范围内。",
        status=422,
        field="matter",
    )


def _check(
    ctx: NodeContext,
    federation: Federation,
    app: Application,
    reusable: Mapping[str, str] | None = None,
) -> _Checked:
    """Every window-side check of ``app``; ``reusable`` maps the hashes of this applicant's
    earlier scans held here to their licence type (只提交一次材料)."""
    station = ctx.station.id
    found = federation.matter(app.matter)
    if found is None:
        for peer in federation.peers.values():
            other = peer.catalog.get(app.matter)
            if other is not None:  # another city's matter, not open for 都市圈通办
                raise ServiceError(
                    "out_of_scope",
                    f"事项「{other.name}」由{federation.home.peers[peer.federation].name}办理，"
                    f"{SCOPE_LABELS.get(other.scope, other.scope)}，未开通都市圈通办，"
                    "本窗口不能受理。",
                    status=422,
                    field="matter",
                )
        raise ServiceError("no_such_matter", "事项目录中没有该事项。", status=422, field="matter")
    matter = found[1]
    location = (app.location or division(station)).strip()
    if not _DIVISION.match(location):
        raise refused(
            "bad_location", "属地应为区划代码（4、6、9 或 12 位数字）。", field="location"
        )
    try:
        authority = competent_authority(federation, matter.code, location)
    except ProtocolError as exc:
        raise refusal(exc, field="location") from None
    if not may_accept(federation, matter.code, station, authority):
        raise _scope_refusal(matter, station)
    pickup = (app.pickup or station).strip()
    pickup_member = federation.member(pickup)
    if pickup_member is None or "station" not in pickup_member.roles:
        raise refused("bad_pickup", "出件窗口不在联邦配置的窗口名单中。", field="pickup")

    name, number, id_type = _person(app.applicant, "applicant")
    applicant = {
        "name": name,
        "id_type": id_type,
        "id_masked": mask_id(number),
        "id_hash": id_hash(number),
    }
    body: dict[str, Any] = {
        "matter": matter.code,
        "applicant": applicant,
        "location": location,
        "pickup": pickup,
    }
    if app.agent is not None:
        agent_name, agent_number, _ = _person(app.agent, "agent")
        body["agent"] = {"name": agent_name, "id_masked": mask_id(agent_number)}
    if app.phone is not None and app.phone.strip() and not _PHONE.match(app.phone.strip()):
        raise refused("bad_phone", "联系电话格式有误。", field="phone")

    given = {m.id: m for m in app.materials}
    unknown = sorted(set(given) - {m.id for m in matter.materials})
    if unknown:
        raise refused(
            "unknown_material", f"材料 {unknown} 不在该事项的材料清单中。", field="materials"
        )
    entries: list[dict[str, Any]] = []
    files: list[tuple[str, UploadedFile]] = []
    reused: list[str] = []
    missing: list[str] = []
    for spec in matter.materials:
        item = given.get(spec.id)
        mode = item.mode if item is not None else "absent"
        if mode not in MODES:
            raise refused("bad_mode", f"材料「{spec.name}」的提交方式有误。", field=spec.id)
        if mode == "absent":
            if spec.required:
                missing.append(spec.name)
            continue
        if mode == "deferred" and not spec.deferrable:
            raise refused("not_deferrable", f"材料「{spec.name}」不允许容缺受理。", field=spec.id)
        if mode == "pledged" and not spec.pledgeable:
            raise refused(
                "not_pledgeable", f"材料「{spec.name}」不允许以告知承诺代替。", field=spec.id
            )
        hashes: list[str] = []
        for upload in item.files if item is not None and mode == "provided" else ():
            if not upload.data:
                raise refused("empty_file", f"材料「{spec.name}」的文件是空的。", field=spec.id)
            if len(upload.data) > MAX_FILE_BYTES:
                raise refused(
                    "file_too_large",
                    f"材料「{spec.name}」的文件超过 {MAX_FILE_BYTES // (1024 * 1024)} MB。",
                    field=spec.id,
                )
            digest = hashlib.sha256(upload.data).hexdigest()
            if digest not in hashes:
                hashes.append(digest)
                files.append((digest, upload))
        for digest in item.reuse if item is not None and mode == "provided" else ():
            _check_reuse(spec, digest, reusable or {})
            if digest not in hashes:
                hashes.append(digest)
                reused.append(digest)
        entries.append({"id": spec.id, "name": spec.name, "mode": mode, "blobs": hashes})
    if missing:
        raise refused(
            "missing_material", f"缺少必交材料：{'、'.join(missing)}。", field="materials"
        )
    if len(files) > MAX_FILES:
        raise refused("too_many_files", f"一次最多上传 {MAX_FILES} 个文件。", field="materials")
    body["materials"] = entries

    modes = {e["mode"] for e in entries}
    text = (app.pledge_text or "").strip()
    if "deferred" in modes or "pledged" in modes or text:
        if not text:
            raise refused(
                "missing_pledge",
                "容缺受理或告知承诺需要填写申请人签署的承诺内容。",
                field="pledge_text",
            )
        pledge: dict[str, Any] = {"text": text}
        if "deferred" in modes and app.pledge_deadline is None:
            raise refused(
                "missing_pledge", "容缺受理需要写明材料补交期限。", field="pledge_deadline"
            )
        if app.pledge_deadline is not None:
            today = day_of(ctx.now())
            calendar = calendar_for(federation, authority)
            last, _ = promised(matter, today, calendar)
            if not today <= app.pledge_deadline <= last:
                raise refused(
                    "bad_pledge_deadline",
                    f"补交期限须在 {today.isoformat()} 至 {last.isoformat()}（承诺办结日）之间。",
                    field="pledge_deadline",
                )
            pledge["deadline"] = app.pledge_deadline.isoformat()
        body["pledge"] = pledge
    note = app.note.strip()
    if note:
        body["note"] = note[:500]
    return _Checked(matter, authority, body, files, reused)


def _check_reuse(spec: Material, digest: str, reusable: Mapping[str, str]) -> None:
    """只提交一次材料: an earlier scan stands in for a new one only for a licence-type
    material (证照: ID card, business licence …), of the same licence type, that this
    applicant handed in at this station before (the original is still checked when the
    catalog asks for it)."""
    if not spec.licence_type:
        raise refused(
            "not_reusable",
            f"材料「{spec.name}」不是证照类材料，不能复用以前的扫描件，请重新提交。",
            field=spec.id,
        )
    if reusable.get(digest) != spec.licence_type:
        raise refused(
            "not_reusable",
            f"没有找到该申请人以前在本站提交的「{spec.licence_type}」，请重新扫描。",
            field=spec.id,
        )


def _sign(
    ctx: NodeContext,
    federation: Federation,
    checked: _Checked,
    number: str,
    seq: int,
    prev: str | None,
    ts: str,
    track: dict[str, Any],
) -> tuple[Event, CaseRecord]:
    event = Event.create(
        ctx.key,
        author=ctx.station.id,
        seq=seq,
        prev=prev,
        ts=ts,
        type="case.submitted",
        case=number,
        to=list(submitted_to(checked.authority, ctx.station.id, checked.body["pickup"])),
        body={**checked.body, "track": track},
    )
    try:
        case = CaseFolder(federation).apply(None, event)
    except CaseRejected as exc:
        raise refusal(exc) from None
    return event, case_record(case, federation)


async def accept_application(
    ctx: NodeContext, app: Application, clerk: ClerkRow | None = None
) -> dict[str, Any]:
    """Accept ``app`` at this window; returns the receipt (see :func:`receipt`)."""
    federation = ctx.configs.require()
    reusable = await reusable_materials(ctx, app.applicant.id_number)
    checked = _check(ctx, federation, app, {r["hash"]: r["licence_type"] for r in reusable})
    now = ctx.now()
    ts = now.isoformat(timespec="seconds")
    day = day_of(now).strftime("%Y%m%d")
    code = new_code()  # 进度查询码: its Argon2id hash travels; the code stays here
    track = await asyncio.to_thread(track_body, code)  # slow on purpose
    # A dry run of the fold: a refusal reaches the clerk before any file is written.
    _sign(ctx, federation, checked, case_number(ctx.station.id, day, 1), 1, None, ts, track)

    at = ctx.stamp()
    for digest, upload in checked.files:
        stored = await asyncio.to_thread(ctx.blobs.put, upload.data, digest)
        await ctx.store.add_blob(
            BlobRow(stored, len(upload.data), _safe_name(upload.name), _safe_mime(upload.mime)), at
        )

    def make(n: int, seq: int, prev: str | None) -> tuple[Event, CaseRecord]:
        number = case_number(ctx.station.id, day, n)
        return _sign(ctx, federation, checked, number, seq, prev, ts, track)

    private = PrivateData(
        id_number=normalize_id(app.applicant.id_number),
        agent_id_number=None if app.agent is None else normalize_id(app.agent.id_number),
        phone=(app.phone or "").strip() or None,
        query_code=code,
    )
    event, record = await ctx.store.open_case(
        day,
        make,
        private,
        [digest for digest, _ in checked.files] + checked.reused,
        at,
    )
    log(
        logger,
        "case.submitted",
        case=record.number,
        matter=record.matter,
        authority=record.authority,
        seq=event.seq,
        files=len(checked.files),
        clerk=clerk.username if clerk else None,
    )
    ctx.wake()
    return receipt(record, federation, code)


async def reusable_materials(ctx: NodeContext, id_number: str) -> list[dict[str, Any]]:
    """只提交一次材料: the licence-type scans (证照) this applicant handed in at this station
    before, newest first, one entry per file held here."""
    number = normalize_id(id_number)
    if not number:
        return []
    out: dict[str, dict[str, Any]] = {}
    for record in await ctx.store.cases_of_applicant(id_hash(number)):
        types = {
            m["id"]: m.get("licence_type", "")
            for m in record.snapshot.get("terms", {}).get("materials", [])
        }
        for material in record.snapshot.get("materials", []):
            licence = types.get(material["id"], "")
            for digest in material.get("blobs", []) if licence else ():
                row = await ctx.store.blob(digest)
                if digest in out or row is None:
                    continue
                out[digest] = {
                    "hash": digest,
                    "licence_type": licence,
                    "material": material["id"],
                    "material_name": material["name"],
                    "file_name": row.name,
                    "size": row.size,
                    "mime": row.mime,
                    "case": record.number,
                    "matter_name": record.matter_name,
                    "received": record.received,
                }
    return list(out.values())


def _safe_name(name: str) -> str:
    """A display name for a file: no path, no control characters, bounded."""
    base = re.split(r"[\\/]", name)[-1]
    cleaned = "".join(c for c in base if c.isprintable()).strip()
    return (cleaned or "材料")[:200]


def _safe_mime(mime: str) -> str:
    mime = mime.strip().lower()
    return mime if re.match(r"^[a-z0-9.+-]+/[a-z0-9.+-]+\Z", mime) else "application/octet-stream"


def qr_svg(text: str) -> str:
    """The receipt's QR code (a case number and its tracking code: always fits one)."""
    return sealed.qr_svg(text, scale=4, error="m", title=text) or ""


def receipt(record: CaseRecord, federation: Federation, code: str | None = None) -> dict[str, Any]:
    """受理回执: what the window prints for the applicant, with the query code the
    accepting station keeps (see :mod:`node.services.query`); None for a case accepted
    before the code was kept."""
    snap = record.snapshot
    terms = snap["terms"]
    found = federation.matter(record.matter)
    matter = found[1] if found is not None else None
    received_day = date.fromisoformat(record.received[:10])
    warning = None
    if matter is not None:
        _, warning = promised(matter, received_day, calendar_for(federation, record.authority))
    materials = snap.get("materials", [])
    given = {m["id"] for m in materials}
    pledge = snap.get("pledge")
    return {
        "number": record.number,
        "qr_svg": qr_svg(qr_text(record.number, code) if code else record.number),
        "query_code": code,
        "matter": {
            "code": record.matter,
            "name": record.matter_name,
            "kind": terms.get("kind"),
            "promise_days": terms.get("promise_days"),
            "promise_unit": terms.get("promise_unit"),
        },
        "authority": {"id": record.authority, "name": member_name(federation, record.authority)},
        "window": {"id": record.window, "name": member_name(federation, record.window)},
        "pickup": {"id": record.pickup, "name": member_name(federation, record.pickup)},
        "applicant": {"name": record.applicant_name, "id_masked": record.applicant_id_masked},
        "agent": snap.get("agent"),
        "received": record.received,
        "state": record.state,
        "state_label": snap.get("state_label", record.state),
        "deadline": {
            "date": record.deadline,
            "basis": f"自收件之日起 {terms.get('promise_days')} 个{terms.get('promise_unit')}",
            "warning": warning,
        },
        "materials": [
            {
                "id": m["id"],
                "name": m["name"],
                "mode": m["mode"],
                "mode_label": MODE_LABELS[m["mode"]],
                "files": len(m.get("blobs", [])),
            }
            for m in materials
        ],
        "deferred": [m["name"] for m in materials if m["mode"] == "deferred"],
        "pledged": [m["name"] for m in materials if m["mode"] == "pledged"],
        "not_provided": [m["name"] for m in terms.get("materials", []) if m["id"] not in given],
        "pledge": pledge,
    }
