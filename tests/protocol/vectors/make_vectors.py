"""Regenerate the golden vectors: ``python -m tests.protocol.vectors.make_vectors``.

Only run this when the wire format changes on purpose (and say so in docs/protocol.md):
the checked-in JSON is what other implementations test against.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protocol.event import Event
from protocol.keys import KeyPair

HERE = Path(__file__).parent
SEED = bytes(range(32))

DRAFTS: list[dict[str, Any]] = [
    {
        "author": "210102001001",
        "seq": 1,
        "ts": "2026-11-23T09:30:00+08:00",
        "type": "case.submitted",
        "case": "210102001001-20261123-0001",
        "to": ["2101:sfj"],
        "body": {
            "matter": "SY-SFJ-0003",
            "applicant": {"name": "张三", "id_masked": "2101**********1234"},
            "location": "210102001001",
            "pickup": "210102001001",
            "materials": [],
            "fee_fen": 0,
            "note": '含转义"\\/\u2028 和 emoji 😀',
        },
    },
    {
        "author": "210102001001",
        "seq": 2,
        "ts": "2026-11-23T01:31:07.250Z",
        "type": "case.withdrawn",
        "case": "210102001001-20261123-0001",
        "to": ["2101:sfj"],
        "body": {
            "reason": "申请人撤回",
            "big": 9007199254740991,
            "neg": -1,
            "nested": {"b": [], "a": {}},
        },
    },
]


def build() -> dict[str, Any]:
    """Compute every vector from the fixed seed."""
    key = KeyPair.from_seed(SEED)
    vectors = []
    prev = None
    for draft in DRAFTS:
        event = Event.create(key, prev=prev, **draft)
        vectors.append(
            {
                "unsigned": event.unsigned_dict(),
                "signing_bytes_hex": event.signing_bytes.hex(),
                "sig": event.sig.to_dict(),
                "wire": event.wire_bytes.decode("utf-8"),
                "id": event.id,
            }
        )
        prev = event.id
    return {
        "description": "tongban event vectors: Ed25519 seed -> canonical bytes, signature, id",
        "seed_hex": SEED.hex(),
        "public": key.public.to_text(),
        "kid": key.kid,
        "events": vectors,
    }


if __name__ == "__main__":
    (HERE / "events.json").write_text(
        json.dumps(build(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
