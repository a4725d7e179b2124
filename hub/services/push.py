"""``POST /v1/push``: who may push what, and the intake of one batch."""

from __future__ import annotations

import logging
import time
from typing import Any

from protocol.config import Federation
from protocol.encoding import canonical
from protocol.errors import ProtocolError, RemoteProtocolError
from protocol.event import Event
from protocol.ids import city_of, is_within
from protocol.sync import Ack, PushBatch, Reject

from ..core import Hub
from ..logs import log
from .ingest import (
    Mode,
    ModeOf,
    Offered,
    Undecodable,
    ingest_txn,
    record_effects,
    screen,
)

logger = logging.getLogger("tongban.hub.push")


def pusher_modes(federation: Federation, me: str, pusher: str) -> ModeOf:
    """How events from ``pusher`` are taken, or ``not_a_child`` (403) for a stranger.

    A child pushes its own chain (chain mode) and, if it is a hub, relays events of authors
    in its subtree. A metro peer city hub relays events of authors of its own city.
    """
    home = federation.home
    member = home.members.get(pusher)
    if member is not None and member.parent == me:

        def from_child(event: Event) -> Mode:
            if event.author == pusher:
                return "chain"
            if member.is_hub and is_within(event.author, pusher):
                return "relay"
            raise RemoteProtocolError(
                "not_your_event", f"{pusher} may not push events of {event.author}"
            )

        return from_child
    if me == home.federation and pusher in home.peers and pusher in federation.peers:

        def from_peer(event: Event) -> Mode:
            if city_of(event.author) != pusher:
                raise RemoteProtocolError(
                    "not_your_event", f"peer {pusher} may not relay events of {event.author}"
                )
            # A peer city relays only what is addressed through it: into this city.
            if not any(city_of(address) == me for address in event.to):
                raise RemoteProtocolError(
                    "not_yours", f"event {event.id[:16]}… is not addressed into {me}"
                )
            return "relay"

        return from_peer
    raise RemoteProtocolError("not_a_child", f"{pusher} does not push to {me}")


def split_batch(obj: Any) -> tuple[list[Offered], list[Undecodable]]:
    """Decode a batch into indexed events and undecodable items with their raw bytes."""
    events, rejects = PushBatch.decode(obj)
    return index_events(obj["events"], events, rejects)


def index_events(
    raw_items: list[Any], events: list[Event], rejects: list[Reject]
) -> tuple[list[Offered], list[Undecodable]]:
    """Pair decoded events with their batch positions; keep the raw bytes of the rest."""
    bad = {r.index for r in rejects}
    good_indices = [i for i in range(len(raw_items)) if i not in bad]
    offered = [Offered(i, e) for i, e in zip(good_indices, events, strict=True)]
    undecodable = []
    for reject in rejects:
        assert reject.index is not None
        try:
            raw = canonical(raw_items[reject.index])
        except ProtocolError:
            raw = repr(raw_items[reject.index])[:4096].encode()
        undecodable.append(Undecodable(reject, raw))
    return offered, undecodable


async def receive_push(hub: Hub, pusher: str, obj: Any) -> Ack:
    """Take a batch from ``pusher`` into custody; the ack is sent only after the commit."""
    started = time.perf_counter()
    await hub.view.refresh()
    federation = hub.view.require()
    mode_of = pusher_modes(federation, hub.me, pusher)
    offered, undecodable = split_batch(obj)
    at = hub.now()
    screened = screen(federation, offered, mode_of, at)
    intake = await hub.db.run(
        "push",
        lambda c: ingest_txn(
            hub.store,
            federation,
            hub.me,
            c,
            source=pusher,
            screened=screened,
            undecodable=undecodable,
            at=at,
        ),
    )
    hub.committed(intake.effects.recipients, intake.effects.relay)
    record_effects(hub.metrics, intake.effects)
    hub.metrics.push_seconds.observe(time.perf_counter() - started)
    log(
        logger,
        "push.done",
        pusher=pusher,
        events=len(offered) + len(undecodable),
        stored=sum(intake.effects.received.values()),
        rejects=len(intake.ack.rejects),
    )
    return intake.ack
