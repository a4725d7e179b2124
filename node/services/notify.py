"""通知: tell the applicant about 受理, 补正, 办结 and 待领取.

A :class:`Notifier` sends a :class:`Message`. The default, :class:`OutboxNotifier`, writes
to the station's outbox table, which the window prints or exports at ``/notifications``:
nothing is lost when no SMS gateway is configured. :class:`SmsGatewayNotifier` is the seam
for a real gateway (not used by default).

Notifications hang on the fold, not on a code path: the store notes the events each committed
transaction newly folded into a case (:class:`node.storage.CaseFolded`,
:meth:`node.storage.Database.after_commit`) and :func:`notify_folded` turns them into 受理,
补正, 办结 or 待领取, whether an event came down the feed or was signed at this window (即办).
The accepting window holds the phone number and sends all four; a pickup window elsewhere
puts 待领取 in its own outbox (no phone there: the clerk sees the result is waiting). One
message per (event, kind).

Texts come from templates, one per kind, in Chinese. Defaults ship in :data:`DEFAULTS`;
the operator overrides them in ``notify_templates.json`` in the station's data directory
(a JSON object ``{"accepted": "…", "correction": "…", "decided": "…", "pickup": "…"}``;
placeholders ``{number}`` ``{matter}`` ``{name}`` ``{items}`` ``{deadline}`` ``{pickup}``
``{result}``). A message never carries the full ID number or phone number: the applicant
is named by the masked name, and every text passes :func:`node.privacy.scrub`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from protocol.case import RESULT_CODES
from protocol.event import Event

from ..logs import log
from ..privacy import scrub
from ..storage import CaseFolded, CaseRecord
from ..storage.outbox import OutboxRow, OutboxStore
from .context import NodeContext
from .folding import member_name
from .query import mask_name

logger = logging.getLogger("node.notify")

TEMPLATES_FILE: Final = "notify_templates.json"
KINDS: Final = {
    "accepted": "受理",
    "correction": "补正",
    "decided": "办结",
    "pickup": "待领取",
}
DEFAULTS: Final = {
    "accepted": "【通办】{name}您好，您申请的「{matter}」（办件编号 {number}）已受理，"
    "承诺办结日期 {deadline}。可凭回执上的查询码查询进度。",
    "correction": "【通办】{name}您好，您申请的「{matter}」（办件编号 {number}）需要补正："
    "{items}。请带齐材料到窗口一次性提交。",
    "decided": "【通办】{name}您好，您申请的「{matter}」（办件编号 {number}）已办结：{result}。",
    "pickup": "【通办】{name}您好，您申请的「{matter}」（办件编号 {number}）的结果已送达"
    "{pickup}，请携带回执和本人身份证件前往领取。",
}
#: Event types that notify, and the kinds each produces.
EVENT_KINDS: Final = {
    "case.accepted": ("accepted",),
    "case.correction_requested": ("correction",),
    "case.supplement_requested": ("correction",),
    "case.decided": ("decided", "pickup"),
}


@dataclass(frozen=True)
class Message:
    """One notification to one applicant (``destination``: the phone number, may be None)."""

    case: str
    event_id: str
    kind: str
    destination: str | None
    text: str
    at: str


class Notifier(Protocol):
    """Where messages go."""

    async def send(self, message: Message) -> None: ...


class OutboxNotifier:
    """The default: keep the message in the outbox for the window to print or export."""

    def __init__(self, outbox: OutboxStore) -> None:
        self.outbox = outbox

    async def send(self, message: Message) -> None:
        await self.outbox.add(
            OutboxRow(
                0,
                message.case,
                message.event_id,
                message.kind,
                message.destination,
                message.text,
                message.at,
            )
        )


class SmsGateway(Protocol):
    """What an SMS gateway adapter offers (a vendor's HTTP API behind it)."""

    async def deliver(self, phone: str, text: str) -> None: ...


class SmsGatewayNotifier:
    """Send through an SMS gateway, keeping a copy in the outbox (not used by default)."""

    def __init__(self, gateway: SmsGateway, fallback: Notifier) -> None:
        self.gateway = gateway
        self.fallback = fallback

    async def send(self, message: Message) -> None:
        await self.fallback.send(message)
        if message.destination:
            await self.gateway.deliver(message.destination, message.text)


def load_templates(data_dir: Path | None) -> dict[str, str]:
    """The defaults, overridden by the operator's file when it is valid."""
    templates = dict(DEFAULTS)
    if data_dir is None:
        return templates
    path = data_dir / TEMPLATES_FILE
    try:
        given = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return templates
    except (OSError, ValueError) as exc:
        log(logger, "notify.templates_unreadable", level=logging.WARNING, error=str(exc)[:200])
        return templates
    if isinstance(given, Mapping):
        for kind in KINDS:
            text = given.get(kind)
            if isinstance(text, str) and text.strip():
                templates[kind] = text
    return templates


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:  # an unknown placeholder stays as written
        return "{" + key + "}"


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill a template; personal numbers that slip in are masked all the same."""
    try:
        text = template.format_map(_Fields(values))
    except (ValueError, IndexError, AttributeError):
        text = template
    return scrub(text)


def messages_for(
    event: Event,
    record: CaseRecord,
    phone: str | None,
    station: str,
    templates: Mapping[str, str],
    pickup_name: str,
) -> list[Message]:
    """The messages an event of a case held here produces (none for other events)."""
    kinds = EVENT_KINDS.get(event.type, ())
    snap = record.snapshot
    names = {m.get("id"): m.get("name") for m in snap.get("terms", {}).get("materials", [])}
    problems = []
    for item in snap.get("items", []):
        what = names.get(item.get("material")) or item.get("field") or ""
        problems.append(f"{what}（{item.get('problem', '')}）" if what else item.get("problem", ""))
    code = event.body.get("result_code")
    values = {
        "number": record.number,
        "matter": record.matter_name,
        "name": mask_name(record.applicant_name),
        "items": "；".join(problems),
        "deadline": record.deadline or "以审批部门通知为准",
        "pickup": pickup_name,
        "result": RESULT_CODES.get(code, "办结") if isinstance(code, int) else "办结",
    }
    out = []
    for kind in kinds:
        if kind == "pickup" and not (code == 0 and record.pickup == station):
            continue  # 待领取: only where the result is handed out, only when issued
        if kind != "pickup" and record.window != station:
            continue  # the rest from the accepting window, which holds the phone number
        out.append(
            Message(record.number, event.id, kind, phone, render(templates[kind], values), "")
        )
    return out


async def notify_folded(
    ctx: NodeContext, folds: Iterable[CaseFolded], notifier: Notifier | None = None
) -> int:
    """Notify about events just folded into cases (see the module docstring); returns how
    many messages went out."""
    notifier = notifier or OutboxNotifier(OutboxStore(ctx.store.db))
    federation = ctx.configs.federation
    templates: dict[str, str] | None = None
    sent = 0
    for fold in folds:
        record = await ctx.store.case(fold.number)
        if record is None or ctx.station.id not in (record.window, record.pickup):
            continue
        fresh = set(fold.events)
        held = [h.event for h in await ctx.store.case_events(fold.number)]
        events = [e for e in held if e.id in fresh and e.type in EVENT_KINDS]
        if not events:
            continue
        phone = None
        if record.window == ctx.station.id:  # the phone number is kept where it was taken
            private = await ctx.store.case_private(fold.number)
            phone = None if private is None else private.phone
        templates = templates or load_templates(ctx.blobs.root.parent)
        pickup = member_name(federation, record.pickup)
        for event in events:
            for message in messages_for(event, record, phone, ctx.station.id, templates, pickup):
                await notifier.send(
                    Message(
                        message.case,
                        message.event_id,
                        message.kind,
                        message.destination,
                        message.text,
                        ctx.stamp(),
                    )
                )
                sent += 1
    if sent:
        log(logger, "notify.queued", messages=sent)
    return sent


def hook(ctx: NodeContext) -> None:
    """Notify on every committed fold of this station's store."""

    async def listener(notes: list[object]) -> None:
        folds = [n for n in notes if isinstance(n, CaseFolded)]
        if folds:
            await notify_folded(ctx, folds)

    ctx.store.db.after_commit(listener)
