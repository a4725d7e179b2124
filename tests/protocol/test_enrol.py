"""Enrolment requests: round trips in every form, every validation error, proof of possession."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.encoding import b64url_encode, canonical
from protocol.enrol import (
    FIELDS,
    Enrolment,
    enrolment_text,
    make_enrolment,
    parse_enrolment_text,
    read_enrolment,
)
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.event import Signature
from protocol.keys import KeyPair

from .strategies import key

STATION_KEY = key(40)
HUB_KEY = key(41)
SEAL_SFJ = key(42)
SEAL_GAJ = key(43)
STRANGER = key(44)
CREATED = "2026-11-23T09:30:00+08:00"

Request = dict[str, Any]


def station(**changes: Any) -> Enrolment:
    """A village station under its township hub."""
    fields: dict[str, Any] = {
        "id": "210102001001",
        "name": "…村便民服务站",
        "role": "station",
        "parent": "210102001",
        "endpoint": None,
        "public": STATION_KEY.public,
        "created": CREATED,
    }
    fields.update(changes)
    return Enrolment(**fields)


def hub(**changes: Any) -> Enrolment:
    """A district hub hosting two departments' seals."""
    fields: dict[str, Any] = {
        "id": "210102",
        "name": "和平区政务服务中心",
        "role": "hub",
        "parent": "2101",
        "endpoint": "https://hub.210102.example",
        "public": HUB_KEY.public,
        "created": CREATED,
        "seal_keys": {"sfj": SEAL_SFJ.public, "gaj": SEAL_GAJ.public},
    }
    fields.update(changes)
    return Enrolment(**fields)


def station_request() -> Request:
    return make_enrolment(STATION_KEY, station())


def hub_request() -> Request:
    return make_enrolment(HUB_KEY, hub())


def resign(request: Request, signer: KeyPair, kid: str | None = None) -> Request:
    """``request`` with a fresh signature by ``signer`` (claiming ``kid``, default its own)."""
    body = {k: v for k, v in request.items() if k != "sig"}
    sig = Signature(kid or signer.kid, signer.public.alg, signer.sign(canonical(body)))
    return {**body, "sig": sig.to_dict()}


# -- round trips ---------------------------------------------------------------------------------

FORMS: dict[str, Callable[[Request], Enrolment]] = {
    "dict": read_enrolment,
    "bytes": lambda r: read_enrolment(canonical(r)),
    "text": lambda r: read_enrolment(json.dumps(r, ensure_ascii=False, indent=2)),
    "ascii text": lambda r: read_enrolment(json.dumps(r)),
    "TBENROL1.": lambda r: parse_enrolment_text(enrolment_text(r)),
    "TBENROL1. pasted": lambda r: parse_enrolment_text(f"\n  {enrolment_text(r)}\r\n"),
    "plain JSON pasted": lambda r: parse_enrolment_text(f"\n{json.dumps(r, indent=1)}\n"),
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("build", "signer"), [(station, STATION_KEY), (hub, HUB_KEY)], ids=["station", "hub"]
)
def test_round_trip(form: str, build: Callable[[], Enrolment], signer: KeyPair) -> None:
    enrolment = build()
    request = make_enrolment(signer, enrolment)
    assert FORMS[form](request) == enrolment


def test_request_shape() -> None:
    request = hub_request()
    assert set(request) == FIELDS
    assert (request["type"], request["v"], request["role"]) == ("tongban.enrolment", 1, "hub")
    assert request["public"] == HUB_KEY.public.to_text()
    assert list(request["seal_keys"]) == ["gaj", "sfj"]  # sorted
    assert request["seal_keys"]["sfj"] == SEAL_SFJ.public.to_text()
    assert request["sig"]["kid"] == HUB_KEY.kid and request["sig"]["alg"] == "ed25519"
    json.dumps(request)  # plain JSON all the way down
    assert station_request()["seal_keys"] == {} and station_request()["endpoint"] is None


def test_hub_enrolment_with_seal_keys() -> None:
    read = read_enrolment(hub_request())
    assert read.role == "hub" and read.endpoint == "https://hub.210102.example"
    assert read.seal_keys == {"sfj": SEAL_SFJ.public, "gaj": SEAL_GAJ.public}
    assert read.seal_keys["gaj"].kid == SEAL_GAJ.kid and read.public.kid == HUB_KEY.kid


def test_enrolment_text_is_one_printable_line() -> None:
    text = enrolment_text(hub_request())
    assert text.startswith("TBENROL1.") and text.isascii() and text.isprintable()
    assert text == "TBENROL1." + b64url_encode(canonical(hub_request()))


# -- constructing an Enrolment -------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: station(parent=None),
        lambda: station(parent="2101"),  # skipping levels is still above
        lambda: station(id="210102001001-2"),  # a second station in one village
        lambda: station(name="站" * 200),
        lambda: station(created="2026-11-23T01:30:00Z"),
        lambda: station(created="2026-11-23T09:30:00.123456+08:00"),
        lambda: hub(endpoint=None),
        lambda: hub(endpoint="http://10.0.0.2:8080"),
        lambda: hub(seal_keys={}),
        lambda: hub(id="2101", parent=None, seal_keys={"s_1": SEAL_SFJ.public}),
    ],
)
def test_constructor_accepts(build: Callable[[], Enrolment]) -> None:
    build()


@pytest.mark.parametrize(
    ("build", "reason", "detail"),
    [
        (lambda: station(role="village"), "bad_enrolment", "role must be one of"),
        (lambda: station(role="Hub"), "bad_enrolment", "role must be one of"),
        (lambda: station(role=None), "bad_enrolment", "role must be one of"),
        (lambda: station(name=""), "bad_enrolment", "name must be 1 to 200"),
        (lambda: station(name="站" * 201), "bad_enrolment", "name must be 1 to 200"),
        (lambda: station(name=7), "bad_enrolment", "name must be 1 to 200"),
        (lambda: station(id="21010"), "bad_member_id", "member id"),
        (lambda: station(id=210102001001), "bad_member_id", "member id"),
        (lambda: station(parent="21010"), "bad_member_id", "parent"),
        (lambda: station(parent="210102001001"), "bad_enrolment", "is not above"),  # itself
        (lambda: station(parent="210103"), "bad_enrolment", "is not above"),  # another district
        (lambda: station(parent="210102001001-2"), "bad_enrolment", "is not above"),  # sibling
        (lambda: hub(parent="210102001"), "bad_enrolment", "is not above"),  # below it
        (lambda: hub(endpoint="ftp://hub.example"), "bad_enrolment", "http(s) URL"),
        (lambda: hub(endpoint="hub.210102.example"), "bad_enrolment", "http(s) URL"),
        (lambda: hub(endpoint=""), "bad_enrolment", "http(s) URL"),
        (lambda: hub(endpoint=8080), "bad_enrolment", "http(s) URL"),
        (lambda: station(endpoint="https://x.example"), "bad_enrolment", "a station has no"),
        (lambda: station(seal_keys={"sfj": SEAL_SFJ.public}), "bad_enrolment", "a station"),
        (lambda: hub(seal_keys={"SFJ": SEAL_SFJ.public}), "bad_enrolment", "department code"),
        (lambda: hub(seal_keys={"1sfj": SEAL_SFJ.public}), "bad_enrolment", "department code"),
        (lambda: hub(seal_keys={"": SEAL_SFJ.public}), "bad_enrolment", "department code"),
        (lambda: hub(seal_keys={"s" * 17: SEAL_SFJ.public}), "bad_enrolment", "department"),
        (lambda: station(created="2026-11-23T09:30:00"), "bad_ts", "created"),  # no offset
        (lambda: station(created="2026-11-23 09:30:00+08:00"), "bad_ts", "created"),
        (lambda: station(created="2026-13-40T09:30:00+08:00"), "bad_ts", "created"),
        (lambda: station(created=20261123), "bad_ts", "created"),
    ],
)
def test_constructor_errors(build: Callable[[], object], reason: str, detail: str) -> None:
    with pytest.raises(LocalProtocolError) as err:
        build()
    assert err.value.reason == reason and detail in err.value.detail
    assert err.value.fault == "local"


def test_make_enrolment_needs_the_carried_key() -> None:
    with pytest.raises(LocalProtocolError) as err:
        make_enrolment(STRANGER, station())
    assert err.value.reason == "bad_enrolment" and "signing key" in err.value.detail


# -- reading a request from outside --------------------------------------------------------------


def _set(path: str, value: Any, build: Callable[[], Request] = station_request) -> Any:
    """A request with the field at dotted ``path`` set to ``value`` (not re-signed)."""

    def change() -> Request:
        request = build()
        *parents, last = path.split(".")
        target = request
        for name in parents:
            target = target[name]
        target[last] = value
        return request

    return change


def _drop(name: str) -> Callable[[], Request]:
    return lambda: {k: v for k, v in station_request().items() if k != name}


def _resigned(path: str, value: Any, build: Callable[[], Request] = station_request) -> Any:
    """Field ``path`` set to ``value`` and signed again by the carried key (valid signature)."""
    signer = HUB_KEY if build is hub_request else STATION_KEY
    return lambda: resign(_set(path, value, build)(), signer)


def _flip_sig() -> Request:
    request = station_request()
    val = request["sig"]["val"]
    request["sig"]["val"] = ("B" if val[0] == "A" else "A") + val[1:]
    return request


BAD_REQUESTS: list[tuple[str, Callable[[], Any], str]] = [
    # shape
    ("missing sig", _drop("sig"), "bad_enrolment"),
    ("missing seal_keys", _drop("seal_keys"), "bad_enrolment"),
    ("missing endpoint", _drop("endpoint"), "bad_enrolment"),
    ("extra field", lambda: {**station_request(), "note": "hi"}, "bad_enrolment"),
    ("a list", lambda: b"[]", "bad_enrolment"),
    ("a string", lambda: '"TBENROL1."', "bad_enrolment"),
    ("null", lambda: "null", "bad_enrolment"),
    ("not JSON", lambda: b"{", "bad_json"),
    ("empty", lambda: "", "bad_json"),
    ("not UTF-8", lambda: b'{"type": "\xff"}', "bad_utf8"),
    ("duplicate key", lambda: '{"v": 1, "v": 1}', "duplicate_key"),
    ("a fraction", lambda: '{"v": 1.0}', "bad_number"),
    ("wrong type", _set("type", "tongban.result"), "bad_enrolment"),
    ("wrong v", _set("v", 2), "bad_enrolment"),
    ("v as text", _set("v", "1"), "bad_enrolment"),
    ("seal_keys a list", _set("seal_keys", []), "bad_enrolment"),
    ("seal_keys null", _set("seal_keys", None), "bad_enrolment"),
    ("sig a string", _set("sig", "sig"), "bad_enrolment"),
    (
        "sig without val",
        lambda: {**station_request(), "sig": {"kid": "", "alg": ""}},
        "bad_enrolment",
    ),
    ("sig with extra", _set("sig.extra", 1), "bad_enrolment"),
    ("public not text", _set("public", 12), "bad_enrolment"),
    ("public null", _set("public", None), "bad_enrolment"),
    ("sig.val not text", _set("sig.val", ["x"]), "bad_enrolment"),
    # encodings
    ("public bad base64", _set("public", "not base64!"), "bad_key"),
    ("public padded", _set("public", STATION_KEY.public.to_text() + "="), "bad_key"),
    ("public too short", _set("public", "AAAA"), "bad_key"),
    ("public standard alphabet", _set("public", "+" * 43), "bad_key"),
    ("seal key bad base64", _set("seal_keys.sfj", "??", hub_request), "bad_key"),
    ("seal key too short", _set("seal_keys.sfj", "AAAA", hub_request), "bad_key"),
    ("sig.val bad base64", _set("sig.val", "***"), "bad_sig"),
    ("sig.val too short", _set("sig.val", "AAAA"), "bad_sig"),
    ("sig.kid not hex", _set("sig.kid", "K" * 32), "bad_sig"),
    ("sig.kid null", _set("sig.kid", None), "bad_sig"),
    ("sig.alg unknown", _set("sig.alg", "rsa"), "unknown_alg"),
    # field rules, validly signed by the carried key
    ("bad id", _resigned("id", "2101020010"), "bad_member_id"),
    ("bad role", _resigned("role", "admin"), "bad_enrolment"),
    ("empty name", _resigned("name", ""), "bad_enrolment"),
    ("bad parent", _resigned("parent", "x"), "bad_member_id"),
    ("parent is itself", _resigned("parent", "210102001001"), "bad_enrolment"),
    ("parent not above", _resigned("parent", "210103001"), "bad_enrolment"),
    ("endpoint not http", _resigned("endpoint", "ftp://x", hub_request), "bad_enrolment"),
    ("station endpoint", _resigned("endpoint", "https://x.example"), "bad_enrolment"),
    (
        "station seal keys",
        _resigned("seal_keys", {"sfj": SEAL_SFJ.public.to_text()}),
        "bad_enrolment",
    ),
    (
        "bad dept code",
        _resigned("seal_keys.SFJ", SEAL_SFJ.public.to_text(), hub_request),
        "bad_enrolment",
    ),
    ("bad created", _resigned("created", "yesterday"), "bad_ts"),
    # proof of possession
    ("tampered name", _set("name", "另一个服务站"), "bad_signature"),
    ("tampered parent", _set("parent", "210102"), "bad_signature"),
    ("tampered created", _set("created", "2026-11-23T09:31:00+08:00"), "bad_signature"),
    (
        "tampered seal key",
        _set("seal_keys.gaj", STRANGER.public.to_text(), hub_request),
        "bad_signature",
    ),
    (
        "added seal key",
        _set("seal_keys.rsj", STRANGER.public.to_text(), hub_request),
        "bad_signature",
    ),
    ("swapped public", _set("public", STRANGER.public.to_text()), "bad_signature"),
    ("flipped sig", _flip_sig, "bad_signature"),
    ("signed by another key", lambda: resign(station_request(), STRANGER), "bad_signature"),
    (
        "another key claiming the kid",
        lambda: resign(station_request(), STRANGER, kid=STATION_KEY.kid),
        "bad_signature",
    ),
    (
        "carries another key, signed by the station",
        lambda: resign(_set("public", STRANGER.public.to_text())(), STATION_KEY, STRANGER.kid),
        "bad_signature",
    ),
]


@pytest.mark.parametrize(
    ("build", "reason"), [(b, r) for _, b, r in BAD_REQUESTS], ids=[n for n, _, _ in BAD_REQUESTS]
)
def test_read_enrolment_errors(build: Callable[[], Any], reason: str) -> None:
    data = build()
    with pytest.raises(RemoteProtocolError) as err:
        read_enrolment(data)
    assert err.value.reason == reason and err.value.fault == "remote"
    assert err.value.as_dict()["error"] == reason
    if isinstance(data, dict):  # the same answer whichever way the request travels
        with pytest.raises(RemoteProtocolError) as again:
            parse_enrolment_text(enrolment_text(data))
        assert again.value.reason == reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("TBENROL1.", "bad_json"),
        ("TBENROL1.!!!", "bad_enrolment"),
        ("TBENROL1.AAA=", "bad_enrolment"),
        ("TBENROL1." + b64url_encode(b"[1, 2]"), "bad_enrolment"),
        ("TBENROL1." + b64url_encode(b"\xff\xfe"), "bad_utf8"),
        ("TBENROL2." + b64url_encode(b"{}"), "bad_json"),
        ("tbenrol1." + b64url_encode(canonical({"v": 1})), "bad_json"),
        ("garbage", "bad_json"),
        ("", "bad_json"),
        ("{}", "bad_enrolment"),
    ],
)
def test_parse_enrolment_text_errors(text: str, reason: str) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        parse_enrolment_text(text)
    assert err.value.reason == reason


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_a_flipped_byte_is_always_a_remote_error(data: st.DataObject) -> None:
    raw = bytearray(canonical(hub_request()))
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    with pytest.raises(RemoteProtocolError):
        read_enrolment(bytes(raw))


# -- found while writing these tests (see the report) ---------------------------------------------


def test_v_true_is_not_version_1() -> None:
    with pytest.raises(RemoteProtocolError) as err:
        read_enrolment(json.dumps(resign({**station_request(), "v": True}, STATION_KEY)))
    assert err.value.reason == "bad_enrolment"


def test_a_non_json_value_in_a_mapping_is_a_remote_error() -> None:
    # What aiohttp's request.json() (plain json.loads) hands over for {"v": 1.0, ...}.
    with pytest.raises(RemoteProtocolError) as err:
        read_enrolment({**station_request(), "v": 1.0})
    assert err.value.reason in {"bad_enrolment", "bad_number"}


def test_a_lone_surrogate_is_a_remote_error() -> None:
    text = json.dumps({**station_request(), "name": "\ud800"})  # "\\ud800" on the wire
    with pytest.raises(RemoteProtocolError):
        read_enrolment(text)
