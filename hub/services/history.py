"""A member's own history, for restoring a station after disk loss (``tongban node restore``).

``GET /v1/history/<member>?after=<seq>`` serves the chain ``member`` authored, as this hub
holds it, in seq order, a page at a time, with the head (seq and id) the member must
continue from so its next event extends the chain instead of forking it. The events
addressed to the member come from its feed (``GET /v1/feed`` from the start) and the
materials from ``GET /v1/blobs/<hash>`` (an author may read the blobs its events name).

Only the member itself may read it, authenticated with a key the config lists as valid now:
after a disk loss that is the replacement PC's new key (the old one is retired by the
operator). Any other member is refused with ``not_your_history``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from protocol.errors import RemoteProtocolError
from protocol.sync import MAX_BATCH_BYTES, MAX_BATCH_EVENTS

from ..core import Hub

MAX_SEQ_DIGITS: Final = 18


def parse_after(value: str | None) -> int:
    """The ``after`` query value: the last seq the member already has (0: none)."""
    if value is None or value == "":
        return 0
    if not value.isascii() or not value.isdigit() or len(value) > MAX_SEQ_DIGITS:
        raise RemoteProtocolError("bad_cursor", "after must be a seq number")
    return int(value)


async def own_history(hub: Hub, caller: str, member: str, after: int) -> bytes:
    """The JSON page of ``member``'s chain after seq ``after`` (``caller`` must be ``member``)."""
    if caller != member:
        raise RemoteProtocolError(
            "not_your_history", f"{caller} may not read the history of {member[:20]}"
        )

    page, (head_seq, head_id) = await hub.store.authored_after(
        member, after, MAX_BATCH_EVENTS, MAX_BATCH_BYTES
    )
    # Only the contiguous run from ``after``: a hole (never expected: custody is contiguous)
    # must not let the member skip a seq.
    wires: list[bytes] = []
    for expected, (seq, wire) in enumerate(page, start=after + 1):
        if seq != expected:
            break
        wires.append(wire)
    last = after + len(wires)
    head: dict[str, Any] = {"seq": head_seq, "id": head_id}
    more = last < head_seq and len(wires) == len(page) and bool(wires)
    prefix = json.dumps(
        {"member": member, "head": head, "after": after, "last": last, "more": more}
    )
    return prefix[:-1].encode() + b', "events": [' + b",".join(wires) + b"]}"
