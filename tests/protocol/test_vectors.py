"""Golden vectors: a fixed seed gives exact canonical bytes, signature and id.

The JSON file is the contract with other implementations; this test recomputes each vector
with our code and compares byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol.event import Event
from protocol.keys import KeyPair, PublicKey

DATA = json.loads((Path(__file__).parent / "vectors" / "events.json").read_text(encoding="utf-8"))
KEY = KeyPair.from_seed(bytes.fromhex(DATA["seed_hex"]))


def test_key_from_seed_matches_vector() -> None:
    assert KEY.public.to_text() == DATA["public"]
    assert KEY.kid == DATA["kid"]


@pytest.mark.parametrize("vector", DATA["events"], ids=lambda v: v["unsigned"]["type"])
def test_event_vector(vector: dict) -> None:
    fields = {k: v for k, v in vector["unsigned"].items() if k != "v"}
    event = Event.create(KEY, **fields)
    assert event.signing_bytes.hex() == vector["signing_bytes_hex"]
    assert event.sig.to_dict() == vector["sig"]
    assert event.wire_bytes.decode("utf-8") == vector["wire"]
    assert event.id == vector["id"]


@pytest.mark.parametrize("vector", DATA["events"], ids=lambda v: v["unsigned"]["type"])
def test_vector_wire_decodes_and_verifies(vector: dict) -> None:
    event = Event.from_json(vector["wire"].encode("utf-8"))
    event.verify(PublicKey.from_text(DATA["public"]))
    assert event.id == vector["id"]


def test_vectors_form_a_chain() -> None:
    first, second = DATA["events"]
    assert first["unsigned"]["prev"] is None
    assert second["unsigned"]["prev"] == first["id"]
