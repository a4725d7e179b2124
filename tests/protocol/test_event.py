"""Events: construction, canonical bytes, signing, verification, strict decoding."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.encoding import b64url_encode
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.event import MAX_BODY_BYTES, MAX_EVENT_BYTES, Event, Signature, check_ts
from protocol.keys import KeyPair

KEY = KeyPair.from_seed(bytes(range(32)))
OTHER = KeyPair.from_seed(bytes(32))


def fields_of(event: Event, **over: Any) -> dict[str, Any]:
    """Constructor arguments of ``event`` with some replaced."""
    names = ("author", "seq", "prev", "ts", "type", "case", "to", "body", "sig", "v")
    return {**{n: getattr(event, n) for n in names}, **over}


def make(**over: Any) -> Event:
    fields: dict[str, Any] = {
        "author": "210102001001",
        "seq": 1,
        "prev": None,
        "ts": "2026-11-23T09:30:00+08:00",
        "type": "case.submitted",
        "case": "210102001001-20261123-0007",
        "to": ["2101:sfj"],
        "body": {"matter": "SY-1"},
    }
    fields.update(over)
    return Event.create(KEY, **fields)


GOOD = make().to_dict()


def mutated(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    obj = copy.deepcopy(GOOD)
    change(obj)
    return obj


def test_roundtrip_and_verify() -> None:
    event = make()
    again = Event.from_json(json.dumps(event.to_dict()).encode())
    assert again == event and again.id == event.id
    again.verify(KEY.public)
    assert event.at.utcoffset() is not None
    assert make(ts="2026-11-23T01:30:00Z").at.isoformat() == "2026-11-23T01:30:00+00:00"
    # Events outside any case (e.g. member notices) carry case null.
    assert Event.from_json(make(case=None, type="member.notice").wire_bytes).case is None


def test_verify_rejects_other_key_and_tampering() -> None:
    event = make()
    with pytest.raises(RemoteProtocolError) as err:
        event.verify(OTHER.public)
    assert err.value.reason == "wrong_key"
    forged = mutated(lambda o: o["body"].update(matter="SY-2"))
    with pytest.raises(RemoteProtocolError) as err:
        Event.from_dict(forged).verify(KEY.public)
    assert err.value.reason == "bad_signature"


def test_id_covers_the_signature() -> None:
    event = make()
    resigned = Event(**fields_of(event, sig=Signature(KEY.kid, "ed25519", bytes(64))))
    assert resigned.id != event.id and resigned.signing_bytes == event.signing_bytes


def _del(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda o: o.pop(key)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda o: o.__setitem__(key, value)


def _sig(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda o: o["sig"].__setitem__(key, value)


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("missing field", _del("ts"), "bad_fields"),
    ("extra field", _set("extra", 1), "bad_fields"),
    ("version 2", _set("v", 2), "bad_version"),
    ("version bool", _set("v", True), "bad_version"),
    ("author not a code", _set("author", "shenyang"), "bad_member_id"),
    ("author int", _set("author", 210102), "bad_member_id"),
    ("seq zero", _set("seq", 0), "bad_seq"),
    ("seq string", _set("seq", "1"), "bad_seq"),
    ("seq bool", _set("seq", True), "bad_seq"),
    ("prev on seq 1", _set("prev", "0" * 64), "bad_prev"),
    ("no prev on seq 2", lambda o: o.update(seq=2), "bad_prev"),
    ("prev not hex", lambda o: o.update(seq=2, prev="Z" * 64), "bad_prev"),
    ("ts without offset", _set("ts", "2026-11-23T09:30:00"), "bad_ts"),
    ("ts not a date", _set("ts", "2026-13-45T09:30:00Z"), "bad_ts"),
    ("ts number", _set("ts", 1700000000), "bad_ts"),
    ("type not dotted", _set("type", "submitted"), "bad_type"),
    ("type upper", _set("type", "Case.Submitted"), "bad_type"),
    ("case malformed", _set("case", "2101-7"), "bad_case_number"),
    ("to not list", _set("to", "2101:sfj"), "bad_to"),
    ("to bad address", _set("to", ["2101:SFJ"]), "bad_address"),
    ("to twice", _set("to", ["2101:sfj", "2101:sfj"]), "bad_to"),
    ("to too many", _set("to", [f"2101:d{i}" for i in range(17)]), "bad_to"),
    ("body list", _set("body", []), "bad_body"),
    ("body float", _set("body", {"fee": 1.5}), "bad_number"),
    ("body big int", _set("body", {"n": 2**60}), "bad_number"),
    ("body oversize", _set("body", {"x": "a" * MAX_BODY_BYTES}), "body_too_large"),
    ("sig not object", _set("sig", "abc"), "bad_sig"),
    ("sig extra", _sig("extra", 1), "bad_sig"),
    ("sig val not text", _sig("val", 5), "bad_sig"),
    ("sig val bad base64", _sig("val", "@@@"), "bad_sig"),
    ("sig val padded", _sig("val", b64url_encode(bytes(64)) + "=="), "bad_sig"),
    ("sig val short", _sig("val", b64url_encode(bytes(10))), "bad_sig"),
    ("sig kid bad", _sig("kid", "xyz"), "bad_sig"),
    ("sig alg unknown", _sig("alg", "sm2"), "unknown_alg"),
    ("sig alg a list", _sig("alg", ["ed25519"]), "unknown_alg"),
    ("author with newline", _set("author", "210102001001\n"), "bad_member_id"),
    ("prev with newline", lambda o: o.update(seq=2, prev="a" * 64 + "\n"), "bad_prev"),
    ("type with newline", _set("type", "case.submitted\n"), "bad_type"),
]


@pytest.mark.parametrize(("name", "change", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_events_are_rejected_with_reason(
    name: str, change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        Event.from_dict(mutated(change))
    assert err.value.reason == reason
    assert err.value.fault == "remote"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"[]", "bad_event"),
        (b'{"v":1.0}', "bad_number"),
        (b"\xc3\x28", "bad_utf8"),
        (b" " * (MAX_EVENT_BYTES * 2 + 1), "event_too_large"),
        (json.dumps(GOOD).replace('"seq": 1', '"seq": 1.0').encode(), "bad_number"),
    ],
)
def test_from_json_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        Event.from_json(data)
    assert err.value.reason == reason


def test_local_construction_errors_blame_the_caller() -> None:
    with pytest.raises(LocalProtocolError) as err:
        make(seq=-1)
    assert err.value.fault == "local" and err.value.reason == "bad_seq"
    with pytest.raises(LocalProtocolError):
        make(body={"x": 0.5})
    with pytest.raises(LocalProtocolError) as err:
        Event(**fields_of(make(), sig="nope"))
    assert err.value.reason == "bad_sig"
    with pytest.raises(LocalProtocolError):
        Event(**fields_of(make(), to=["2101:sfj"]))
    assert check_ts("2026-01-01T00:00:00.5+08:00").microsecond == 500000


text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(body=st.dictionaries(text, json_values, max_size=5))
def test_any_json_body_roundtrips_with_a_stable_id(body: dict[str, Any]) -> None:
    event = make(body=body)
    again = Event.from_json(event.wire_bytes)
    assert again.id == event.id
    again.verify(KEY.public)
    # Re-serialising with other white space and key order changes nothing.
    assert Event.from_json(json.dumps(event.to_dict(), indent=1, sort_keys=False)).id == event.id


@settings(max_examples=150, deadline=None)
@given(
    seq=st.integers(1, 2**53 - 1),
    case=st.none() | st.just("210102001001-20261123-0007"),
    to=st.lists(st.sampled_from(["2101:sfj", "210102", "2104:jtj", "210402001001-2"]), unique=True),
    ts=st.sampled_from(["2026-11-23T09:30:00+08:00", "2026-11-23T01:30:00.123456Z"]),
    body=st.dictionaries(text, json_values, max_size=3),
)
def test_header_bytes_are_the_rfc8785_form(
    seq: int, case: str | None, to: list[str], ts: str, body: dict[str, Any]
) -> None:
    """The header is written directly (no encoder): it must equal the reference JCS."""
    prev = None if seq == 1 else "ab" * 32
    event = make(seq=seq, prev=prev, case=case, to=to, ts=ts, body=body)
    assert event.signing_bytes == rfc8785.dumps(event.unsigned_dict())
    assert event.wire_bytes == rfc8785.dumps(event.to_dict())
