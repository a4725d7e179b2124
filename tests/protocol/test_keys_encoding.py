"""Keys and the strict JSON / base64url encodings."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from protocol.encoding import (
    b64url_decode,
    b64url_encode,
    canonical,
    check_json_value,
    loads_strict,
)
from protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError, blame
from protocol.keys import KeyPair, PublicKey, key_id

SEED = bytes(range(32))


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def test_key_roundtrip_through_file_bytes() -> None:
    key = KeyPair.from_seed(SEED)
    assert KeyPair.from_file_bytes(key.to_file_bytes()).public == key.public
    locked = key.to_file_bytes(b"passphrase")
    assert b"ENCRYPTED" in locked
    assert KeyPair.from_file_bytes(locked, b"passphrase").kid == key.kid
    with pytest.raises(LocalProtocolError) as err:
        KeyPair.from_file_bytes(locked, b"wrong")
    assert err.value.reason == "bad_key_file"


def test_key_file_of_another_algorithm_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    with pytest.raises(LocalProtocolError, match="not an Ed25519"):
        KeyPair.from_file_bytes(pem)


def test_generate_and_sign_verify() -> None:
    key = KeyPair.generate(bytes(32))
    sig = key.sign(b"msg")
    assert key.public.verify(sig, b"msg")
    assert not key.public.verify(sig, b"other")
    assert key.kid == key_id(key.public.raw) and len(key.kid) == 32
    assert PublicKey.from_text(key.public.to_text()) == key.public


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: KeyPair.from_seed(b"short"), "bad_key"),
        (lambda: PublicKey(b"x" * 31), "bad_key"),
        (lambda: PublicKey(b"x" * 32, "sm2"), "unknown_alg"),
        (lambda: PublicKey.from_text("not base64!"), "bad_key"),
    ],
)
def test_bad_keys(build: Any, reason: str) -> None:
    with pytest.raises(ProtocolError) as err:
        build()
    assert err.value.reason == reason


def test_b64url_roundtrip_and_rejections() -> None:
    assert b64url_decode(b64url_encode(b"\xff\xfe")) == b"\xff\xfe"
    for bad in ["AA==", "A", "é", "AB", "+/"]:
        with pytest.raises(RemoteProtocolError):
            b64url_decode(bad)
    with pytest.raises(RemoteProtocolError):
        b64url_decode(123)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1.5, "bad_number"),
        (2**53, "bad_number"),
        (-(2**53), "bad_number"),
        ({1: "a"}, "bad_type"),
        (b"bytes", "bad_type"),
        ("\ud800", "bad_utf8"),
        (_nested(40), "too_deep"),
    ],
)
def test_check_json_value_rejects(value: Any, reason: str) -> None:
    with pytest.raises(LocalProtocolError) as err:
        check_json_value(value)
    assert err.value.reason == reason


def test_canonical_is_rfc8785() -> None:
    assert canonical({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()


# Strict JSON values, with keys and strings that stress escaping and key order: controls,
# quotes, BMP characters above the surrogates (U+E000…U+FFFF) and beyond the BMP, which JCS
# orders by UTF-16 code units and Python by code points.
_TEXT = st.text(
    st.one_of(
        st.sampled_from(
            [
                "a",
                "B",
                "\x00",
                "\x1f",
                '"',
                "\\",
                "\x7f",
                "é",
                "\u2028",
                "\b",
                "\f",
                "\n",
                "\r",
                "\t",
                "/",
            ]
        ),
        st.sampled_from(["\ue000", "\uffff", "\U0001f600", "\U00010000", "办"]),
    ),
    max_size=4,
)
_STRICT = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=20,
)


@given(_STRICT)
def test_canonical_matches_the_reference_implementation(value: Any) -> None:
    assert canonical(value) == rfc8785.dumps(value)


def test_canonical_orders_keys_by_utf16_beyond_the_bmp() -> None:
    # U+1F600 is D83D DE00 in UTF-16, so it sorts before U+E000 (code points say otherwise).
    assert canonical({"\ue000": 1, "\U0001f600": 2}) == '{"😀":2,"\ue000":1}'.encode()


def test_check_json_value_accepts_subclasses_of_json_types() -> None:
    class Code(str):
        pass

    class Count(int):
        pass

    check_json_value({"a": [Code("x"), Count(3)], "b": {"c": Code("y")}})
    check_json_value([{"a": Count(1)}, [Code("z")]])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff", "bad_utf8"),
        (b'{"a":1.0}', "bad_number"),
        (b'{"a":1e3}', "bad_number"),
        (b'{"a":NaN}', "bad_number"),
        (b'{"a":Infinity}', "bad_number"),
        (b'{"a":9007199254740992}', "bad_number"),
        (b'{"a":1,"a":2}', "duplicate_key"),
        (b'{"a":', "bad_json"),
        (b"[" * 100000 + b"]" * 100000, "too_deep"),
        (b"[" * 40 + b"]" * 40, "too_deep"),
    ],
)
def test_loads_strict_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        loads_strict(data)
    assert err.value.reason == reason


def test_loads_strict_accepts_text_and_bytes() -> None:
    assert loads_strict('{"a":[1,-2]}') == {"a": [1, -2]}
    assert loads_strict(b'"\\u00e9"') == "é"


def test_error_forms() -> None:
    err = LocalProtocolError("bad_seq", "seq must be positive")
    assert err.as_dict() == {"error": "bad_seq", "detail": "seq must be positive", "fault": "local"}
    assert str(err) == "bad_seq: seq must be positive"
    assert str(RemoteProtocolError("x")) == "x"
    remote = blame(err, "remote")
    assert isinstance(remote, RemoteProtocolError) and remote.reason == "bad_seq"
    assert isinstance(blame(remote, "local"), LocalProtocolError)
