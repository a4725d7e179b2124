"""Fuzzing the event decoder and the push-batch decoder (issue 8), with Hypothesis.

Properties, for any input:

* the decoder either returns a valid object or raises :class:`RemoteProtocolError` with a
  reason: never another exception, never a hang;
* anything that decodes re-encodes to bytes that decode to the same event (same id);
* a mutation of a signed event's wire bytes either fails to decode or no longer verifies,
  unless it only changed insignificant white space (then the id is unchanged);
* a push batch decodes into good events plus one reject per bad entry, never losing count.

Two profiles: a short one in ``make test`` (derandomized, so CI is reproducible) and a
long one under ``-m long`` (fixed seed, documented in docs/reliability.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from protocol.errors import RemoteProtocolError
from protocol.event import Event
from protocol.keys import KeyPair
from protocol.sync import PushBatch

KEY = KeyPair.from_seed(bytes(range(32)))
LONG_SEED = 2026

SHORT = settings(max_examples=100, deadline=None, derandomize=True)
LONG = settings(max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make(seq: int = 1, body: Any = None) -> Event:
    return Event.create(
        KEY,
        author="210102001001",
        seq=seq,
        prev=None if seq == 1 else "a" * 64,
        ts="2026-11-23T09:30:00+08:00",
        type="case.submitted",
        case="210102001001-20261123-0007",
        to=["2101:sfj"],
        body=body if body is not None else {"matter": "SY-1", "名字": "张三"},
    )


GOOD = make()
WIRE = GOOD.wire_bytes

text = st.text(max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | text
    | st.sampled_from(["210102001001", "2101:sfj", "case.submitted", "", "a" * 64])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=25,
)
FIELD_NAMES = ["v", "author", "seq", "prev", "ts", "type", "case", "to", "body", "sig"]


def decode_or_reason(data: bytes | str) -> Event | None:
    """The decoded event, or None after checking the refusal carries a reason."""
    try:
        event = Event.from_json(data)
    except RemoteProtocolError as exc:
        assert exc.reason and isinstance(exc.reason, str)
        return None
    again = Event.from_json(event.wire_bytes)
    assert again == event and again.id == event.id
    return event


# -- properties ------------------------------------------------------------------------


def any_bytes(data: bytes) -> None:
    decode_or_reason(data)


def field_swap(name: str, value: Any) -> None:
    obj = GOOD.to_dict()
    obj[name] = value
    try:
        data = json.dumps(obj, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):  # pragma: no cover - json.dumps takes every value here
        return
    event = decode_or_reason(data)
    if event is not None and event.id != GOOD.id:
        # Decodes but was changed: the signature must not hold.
        with pytest.raises(RemoteProtocolError):
            event.verify(KEY.public)


def byte_flip(position: int, value: int) -> None:
    data = bytearray(WIRE)
    position %= len(data)
    if data[position] == value:
        return
    data[position] = value
    event = decode_or_reason(bytes(data))
    if event is not None:
        if event.id == GOOD.id:
            return  # an insignificant change (none exist in canonical bytes, but be exact)
        with pytest.raises(RemoteProtocolError):
            event.verify(KEY.public)


def batch(entries: list[Any]) -> None:
    try:
        events, rejects = PushBatch.decode({"events": entries})
    except RemoteProtocolError as exc:
        assert exc.reason in {"batch_too_large", "bad_batch"}
        return
    assert len(events) + len(rejects) == len(entries)
    for reject in rejects:
        assert reject.reason


def any_batch_object(obj: Any) -> None:
    try:
        events, rejects = PushBatch.decode(obj)
    except RemoteProtocolError as exc:
        assert exc.reason
        return
    assert isinstance(obj, dict)
    assert len(events) + len(rejects) == len(obj["events"])


batch_entries = st.lists(
    st.one_of(
        st.just(GOOD.to_dict()),
        st.builds(lambda n: make(n).to_dict(), st.integers(1, 5)),
        json_values,
        st.builds(
            lambda name, value: {**GOOD.to_dict(), name: value},
            st.sampled_from(FIELD_NAMES),
            json_values,
        ),
    ),
    max_size=8,
)

CASES: list[tuple[str, Callable[..., None], dict[str, Any]]] = [
    ("bytes", any_bytes, {"data": st.binary(max_size=600) | st.just(WIRE)}),
    ("field", field_swap, {"name": st.sampled_from(FIELD_NAMES), "value": json_values}),
    ("flip", byte_flip, {"position": st.integers(0, 10_000), "value": st.integers(0, 255)}),
    ("batch", batch, {"entries": batch_entries}),
    ("batch_object", any_batch_object, {"obj": json_values}),
]


def _build(profile: settings, check: Callable[..., None], strategies: dict[str, Any]) -> Any:
    return profile(given(**strategies)(check))


@pytest.mark.parametrize(("name", "check", "strategies"), CASES, ids=[c[0] for c in CASES])
def test_fuzz_short(name: str, check: Callable[..., None], strategies: dict[str, Any]) -> None:
    _build(SHORT, check, strategies)()


@pytest.mark.long
@pytest.mark.parametrize(("name", "check", "strategies"), CASES, ids=[c[0] for c in CASES])
def test_fuzz_long(name: str, check: Callable[..., None], strategies: dict[str, Any]) -> None:
    seed(LONG_SEED)(_build(LONG, check, strategies))()
