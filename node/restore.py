"""Station disk loss: rebuild a station from its district hub (``tongban node restore``).

After a disk loss the replacement PC runs ``tongban node init`` with the same member id,
which makes a new key; the operator lists that key for the member in the next config (and
retires the old one, which stays listed for verifying history). Then, before the station
serves anyone, ``restore``:

1. adopts the newest config from the hub (it has the new key, and the old one for history);
2. reads the station's own chain from ``GET /v1/history/<id>`` page by page, verifying each
   event against the config (the old key's events verify with the old key) and that the
   pages join up into one chain ending at the head the hub reports; and stores it as the
   station's own chain, with custody at its head and the per-day case counters, so the
   next event continues the chain at head + 1 (no equivocation) and no case number repeats;
3. downloads every material its events name (``GET /v1/blobs/<hash>``, hash checked);
4. pulls its feed from the start (the events addressed to it: acceptance, decisions …) and
   refolds every case.

What cannot come back: the full ID numbers and phone numbers of applicants, which never
leave the station (events carry them masked and hashed); the clerks' accounts (a new
``admin`` from ``node init``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from protocol.case import blobs_named
from protocol.errors import ProtocolError
from protocol.event import Event
from protocol.http.client import PeerFailure

from .logs import log
from .services.context import NodeContext
from .services.folding import refolder
from .services.receipts import receipt_maker
from .storage import BlobRow
from .sync import SyncEngine

logger = logging.getLogger("tongban.node.restore")
#: Feed pages to read at most (a page is up to 200 events).
MAX_FEED_PAGES = 100_000


class RestoreError(Exception):
    """The restore cannot go on; the message says why (in Chinese, for the operator)."""


@dataclass(frozen=True)
class RestoreReport:
    events: int  # own events restored
    head: tuple[int, str | None]  # own chain head after the restore
    blobs: int  # materials downloaded
    received: int  # events from the feed
    cases: int  # cases refolded


async def restore_station(
    ctx: NodeContext, session: aiohttp.ClientSession, *, say: Callable[[str], None] = print
) -> RestoreReport:
    """Rebuild ``ctx``'s station from its parent hub; see the module docstring."""
    store, me = ctx.store, ctx.station.id
    if await store.head() != (0, None):
        raise RestoreError("本站已有自己的记录：恢复只能在新装的电脑上进行（先 node init）")
    engine = SyncEngine(ctx, session, feed_wait=0)
    try:
        await engine.refresh_config()
    except (PeerFailure, ProtocolError) as exc:
        raise RestoreError(f"无法从上级取得配置：{exc}") from None
    federation = ctx.configs.federation
    if federation is None:
        raise RestoreError("没有可用的联邦配置，无法校验记录")

    chain = await _own_chain(engine, ctx, me)
    await store.restore_own(chain, ctx.stamp())
    head = await store.head()
    say(f"本站记录：{len(chain)} 条，链头 {head[0]}")

    wanted = sorted({b for event in chain for b in blobs_named(event)})
    fetched = 0
    for blob in wanted:
        if ctx.blobs.has(blob):
            continue
        try:
            data, media = await engine.peer.blob(blob)
        except PeerFailure as exc:
            raise RestoreError(f"材料 {blob[:12]}… 下载失败：{exc}") from None
        await asyncio.to_thread(ctx.blobs.put, data, blob)
        await store.add_blob(
            BlobRow(blob, len(data), blob, media or "application/octet-stream"), ctx.stamp()
        )
        fetched += 1
    say(f"材料：{fetched} 个")

    received = 0
    for _ in range(MAX_FEED_PAGES):
        try:
            received += await engine.pull(0)
        except PeerFailure as exc:
            raise RestoreError(f"无法读取发给本站的记录：{exc}") from None
        if not engine.more:
            break
    cases, _ = await store.refold_all(
        refolder(federation), ctx.stamp(), receipt_maker(ctx, federation)
    )
    say(f"收到的记录：{received} 条；办件：{cases} 件")
    log(logger, "restore.done", events=len(chain), blobs=fetched, received=received, cases=cases)
    return RestoreReport(len(chain), head, fetched, received, cases)


async def _own_chain(engine: SyncEngine, ctx: NodeContext, me: str) -> list[Event]:
    """The station's own chain from the hub, verified and joined up."""
    federation = ctx.configs.require()
    chain: list[Event] = []
    after, prev = 0, None
    while True:
        try:
            page = await engine.peer.history(me, after)
        except PeerFailure as exc:
            raise RestoreError(f"无法读取本站在上级的记录：{exc}") from None
        events = page.get("events")
        if not isinstance(events, list):
            raise RestoreError("上级的回答不完整（没有 events）")
        for raw in events:
            try:
                event = Event.from_dict(raw)
                if event.author != me or event.seq != after + 1 or event.prev != prev:
                    raise RestoreError(f"上级给出的记录接不上本站的链（第 {after + 1} 条）")
                event.verify(federation.member_key(me, event.sig.kid, event.at))
            except ProtocolError as exc:
                raise RestoreError(f"第 {after + 1} 条记录校验失败：{exc.reason}") from None
            chain.append(event)
            after, prev = event.seq, event.id
        if not page.get("more"):
            break
        if not events:
            raise RestoreError("上级的回答没有进展")
    head = page.get("head") or {}
    if head.get("seq", 0) != after or head.get("id") != prev:
        raise RestoreError(f"上级只给出了 {after} 条，链头却是 {head.get('seq')}：请稍后重试")
    return chain
