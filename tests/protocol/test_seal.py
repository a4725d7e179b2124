"""Sealed results (电子签章): seal, verify against a signed federation, every verdict, QR text.

Verification is for people holding a paper or a QR code, so it never raises: whatever it is
given, it answers with a :class:`SealCheck`. The Hypothesis tests at the end hold it to that.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.config import (
    Federation,
    FederationConfig,
    accept_config,
    parse_signed,
    sign_config,
)
from protocol.encoding import b64url_decode, b64url_encode, canonical
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.keys import KeyPair
from protocol.seal import (
    REQUIRED,
    SealCheck,
    parse_result_text,
    result_text,
    seal_result,
    verify_result,
)

from .strategies import (
    CST,
    FS_ROOT,
    FS_SEAL,
    KEYS_FROM,
    REVOKED_AT,
    ROOT,
    SEAL_1,
    SEAL_2,
    SEAL_HD,
    fushun_dict,
    grant,
    iso,
    key,
    shenyang_dict,
)

SEAL_OLD = key(23)  # 2101:jtj, retired at OLD_UNTIL
STRANGER = key(24)  # listed nowhere
OLD_UNTIL = datetime(2026, 3, 1, tzinfo=CST)
ISSUED = datetime(2026, 11, 24, 10, 0, tzinfo=CST)
SECOND = timedelta(seconds=1)


def _trusted(obj: dict[str, Any], root: KeyPair) -> FederationConfig:
    """A config as a member holds it: signed by the root, sent as JSON, verified and accepted."""
    signed = sign_config(FederationConfig.parse(obj), root)
    received = parse_signed(json.loads(json.dumps(signed.to_dict())))
    return accept_config(None, received, [root.public]).config


def _shenyang() -> dict[str, Any]:
    obj = shenyang_dict()
    for authority in obj["authorities"]:
        if authority["id"] == "2101:jtj":
            authority["seal_keys"] = [grant(SEAL_OLD, KEYS_FROM, OLD_UNTIL)]
    return obj


FED = Federation(_trusted(_shenyang(), ROOT), {"2104": _trusted(fushun_dict(), FS_ROOT)})


def document(authority: str = "2101:sfj", issued: datetime = ISSUED) -> dict[str, Any]:
    return {
        "case": "210102001001-20261123-0007",
        "matter": "SY-SFJ-0003",
        "matter_name": "律师执业年度考核结果备案",
        "applicant": {"name": "张三", "id_masked": "2101**********1234"},
        "result_code": 0,
        "decision": "准予",
        "licence_no": "21010120261124001",
        "valid_until": "2027-11-22",
        "authority": authority,
        "authority_name": "沈阳市司法局",
        "issued": iso(issued),
    }


def sealed(authority: str = "2101:sfj", seal: KeyPair = SEAL_1, issued: datetime = ISSUED) -> Any:
    return seal_result(document(authority, issued), seal)


GENUINE = sealed()


# -- sealing ---------------------------------------------------------------------------------------


def test_seal_result_shape() -> None:
    doc = document()
    result = seal_result(doc, SEAL_1)
    assert doc == document()  # the input is not touched
    assert {k: v for k, v in result.items() if k not in ("type", "v", "seal")} == doc
    assert (result["type"], result["v"]) == ("tongban.result", 1)
    assert set(result["seal"]) == {"kid", "alg", "val"}
    assert result["seal"]["kid"] == SEAL_1.kid and result["seal"]["alg"] == "ed25519"
    unsealed = {k: v for k, v in result.items() if k != "seal"}
    assert SEAL_1.public.verify(b64url_decode(result["seal"]["val"]), canonical(unsealed))


def test_resealing_replaces_seal_type_and_v() -> None:
    stale = {**GENUINE, "type": "other", "v": 7, "seal": {"kid": "x"}}
    assert seal_result(stale, SEAL_1) == GENUINE


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        *((lambda d, k=k: d.pop(k), "bad_result") for k in REQUIRED),
        (lambda d: d.update(case="0007"), "bad_case_number"),
        (lambda d: d.update(authority="sfj"), "bad_address"),
        (lambda d: d.update(issued="2026-11-24"), "bad_ts"),
        (lambda d: d.update(result_code=0.5), "bad_number"),
        (lambda d: d.update(result_code=2**60), "bad_number"),
        (lambda d: d.update(applicant={1: "x"}), "bad_type"),
    ],
)
def test_seal_result_refuses_a_bad_document(
    change: Callable[[dict[str, Any]], object], reason: str
) -> None:
    doc = document()
    change(doc)
    with pytest.raises(LocalProtocolError) as err:
        seal_result(doc, SEAL_1)
    assert err.value.reason == reason


# -- verification against the federation -------------------------------------------------------


@pytest.mark.parametrize(
    ("authority", "seal", "issued", "reason"),
    [
        ("2101:sfj", SEAL_1, ISSUED, "genuine"),
        ("2101:sfj", SEAL_1, KEYS_FROM, "genuine"),
        ("2101:sfj", SEAL_1, KEYS_FROM - SECOND, "key_not_valid"),  # before its validity
        ("2101:jtj", SEAL_OLD, OLD_UNTIL - SECOND, "genuine"),
        ("2101:jtj", SEAL_OLD, OLD_UNTIL, "key_not_valid"),  # validity ended at issued
        ("2101:jtj", SEAL_OLD, ISSUED, "key_not_valid"),  # validity ended before issued
        ("2101:sfj", SEAL_2, REVOKED_AT - SECOND, "genuine"),  # sealed before the revocation
        ("2101:sfj", SEAL_2, REVOKED_AT, "key_revoked"),  # the hub's key id revoked
        ("2101:sfj", SEAL_2, ISSUED, "key_revoked"),
        ("210103:scjg", SEAL_HD, REVOKED_AT - SECOND, "genuine"),
        ("210103:scjg", SEAL_HD, ISSUED, "key_revoked"),  # the whole hosting member revoked
        ("2101:sfj", STRANGER, ISSUED, "unknown_key"),  # listed nowhere
        ("2101:sfj", SEAL_HD, ISSUED, "unknown_key"),  # another authority's seal
        ("2101:scjg", SEAL_1, ISSUED, "unknown_key"),  # an authority without seal keys
        ("2104:gaj", FS_SEAL, ISSUED, "genuine"),  # a metro peer's authority
        ("2104:gaj", SEAL_1, ISSUED, "unknown_key"),
        ("2101:xyz", SEAL_1, ISSUED, "unknown_authority"),
        ("2104:sfj", FS_SEAL, ISSUED, "unknown_authority"),
        ("2102:sfj", SEAL_1, ISSUED, "unknown_authority"),  # a city we do not know
        ("2101", SEAL_1, ISSUED, "unknown_authority"),  # a member, not an authority
    ],
)
def test_verify_result(authority: str, seal: KeyPair, issued: datetime, reason: str) -> None:
    check = verify_result(sealed(authority, seal, issued), FED)
    assert check.reason == reason and check.genuine == (reason == "genuine")
    assert check.authority == authority
    if check.genuine:
        name = f"部门 {authority}"  # the name in the config, not the one in the document
        assert (check.authority_name, check.kid) == (name, seal.kid)
        assert check.detail == f"sealed by {name}"
    else:
        assert check.authority_name is None and check.kid is None and check.detail


def _flip_char(text: str) -> str:
    return ("B" if text[0] == "A" else "A") + text[1:]


def _flip_seal_byte(doc: dict[str, Any]) -> None:
    raw = bytearray(b64url_decode(doc["seal"]["val"]))
    raw[17] ^= 0x01
    doc["seal"]["val"] = b64url_encode(bytes(raw))


def _seal_of_another_key(doc: dict[str, Any]) -> None:
    doc["seal"]["val"] = seal_result(doc, SEAL_2)["seal"]["val"]  # kid still SEAL_1's


TAMPERING: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
    ("result_code", lambda d: d.update(result_code=1)),
    ("decision", lambda d: d.update(decision="不予准予")),
    ("applicant name", lambda d: d["applicant"].update(name="李四")),
    ("id_masked", lambda d: d["applicant"].update(id_masked="2101**********1235")),
    ("valid_until", lambda d: d.update(valid_until="2037-11-22")),
    ("authority_name", lambda d: d.update(authority_name="沈阳市公安局")),
    ("case", lambda d: d.update(case="210102001001-20261123-0008")),
    ("issued", lambda d: d.update(issued="2026-11-24T10:00:01+08:00")),
    ("issued offset", lambda d: d.update(issued="2026-11-24T02:00:00Z")),  # same instant
    ("field added", lambda d: d.update(note="已核实")),
    ("field removed", lambda d: d.pop("licence_no")),
    ("licence_no byte", lambda d: d.update(licence_no=_flip_char(d["licence_no"]))),
    ("seal byte", _flip_seal_byte),
    ("seal of another listed key", _seal_of_another_key),
]


@pytest.mark.parametrize("change", [c for _, c in TAMPERING], ids=[n for n, _ in TAMPERING])
def test_tampering_breaks_the_seal(change: Callable[[dict[str, Any]], object]) -> None:
    doc = copy.deepcopy(GENUINE)
    change(doc)
    check = verify_result(doc, FED)
    assert (check.genuine, check.reason, check.authority) == (False, "bad_seal", "2101:sfj")
    assert check.kid is None and check.authority_name is None


def _with(**fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(GENUINE), **fields}


def _without(name: str) -> dict[str, Any]:
    return {k: v for k, v in GENUINE.items() if k != name}


SEAL = GENUINE["seal"]
MALFORMED: list[tuple[str, Any, str]] = [
    ("a list", [GENUINE], "bad_result"),
    ("a string", result_text(GENUINE), "bad_result"),
    ("null", None, "bad_result"),
    ("a number", 7, "bad_result"),
    ("unsealed", _without("seal"), "unsealed"),
    ("seal null", _with(seal=None), "unsealed"),
    ("seal a string", _with(seal=SEAL["val"]), "unsealed"),
    ("seal a list", _with(seal=list(SEAL.values())), "unsealed"),
    ("seal without val", _with(seal={"kid": SEAL["kid"], "alg": "ed25519"}), "unsealed"),
    ("seal with extra", _with(seal={**SEAL, "by": "x"}), "unsealed"),
    ("seal val not text", _with(seal={**SEAL, "val": 1}), "unsealed"),
    ("seal val bad base64", _with(seal={**SEAL, "val": "=="}), "bad_sig"),
    ("seal val short", _with(seal={**SEAL, "val": SEAL["val"][:40]}), "bad_sig"),
    ("seal kid not hex", _with(seal={**SEAL, "kid": "Z" * 32}), "bad_sig"),
    ("seal kid null", _with(seal={**SEAL, "kid": None}), "bad_sig"),
    ("seal alg unknown", _with(seal={**SEAL, "alg": "sm2"}), "unknown_alg"),
    *((f"missing {k}", _without(k), "bad_result") for k in REQUIRED),
    ("missing type", _without("type"), "bad_result"),
    ("missing v", _without("v"), "bad_result"),
    ("wrong type", _with(type="tongban.enrolment"), "bad_result"),
    ("wrong v", _with(v=2), "bad_result"),
    ("v as text", _with(v="1"), "bad_result"),
    ("bad case number", _with(case="210102001001-2026-0007"), "bad_case_number"),
    ("case not text", _with(case=7), "bad_case_number"),
    ("bad authority", _with(authority="2101:SFJ"), "bad_address"),
    ("authority not text", _with(authority=["2101:sfj"]), "bad_address"),
    ("issued without offset", _with(issued="2026-11-24T10:00:00"), "bad_ts"),
    ("issued impossible", _with(issued="2026-02-30T10:00:00+08:00"), "bad_ts"),
    ("issued not text", _with(issued=1764000000), "bad_ts"),
    ("a fraction", _with(result_code=0.0), "bad_number"),
    ("a huge integer", _with(result_code=2**53), "bad_number"),
    ("a non-text key", _with(applicant={0: "张三"}), "bad_type"),
    ("a tuple", _with(applicant=("张三",)), "bad_type"),
]


@pytest.mark.parametrize(
    ("doc", "reason"), [(d, r) for _, d, r in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_malformed_documents(doc: Any, reason: str) -> None:
    check = verify_result(doc, FED)
    assert isinstance(check, SealCheck) and not check.genuine
    assert check.reason == reason and check.detail
    authority = doc.get("authority") if isinstance(doc, dict) else None
    assert check.authority == (authority if isinstance(authority, str) else None)


# -- printed and QR text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "render",
    [
        result_text,
        lambda d: f"  {result_text(d)}\n",
        lambda d: json.dumps(d, ensure_ascii=False),
        lambda d: f"\n{json.dumps(d, indent=2)}\n",
    ],
    ids=["TBRES1.", "TBRES1. pasted", "plain JSON", "indented JSON"],
)
def test_result_text_round_trip(render: Callable[[Any], str]) -> None:
    doc = parse_result_text(render(GENUINE))
    assert doc == GENUINE and verify_result(doc, FED).genuine


def test_result_text_form() -> None:
    text = result_text(GENUINE)
    assert text.startswith("TBRES1.") and text.isascii() and text.isprintable()
    assert b64url_decode(text.removeprefix("TBRES1.")) == canonical(GENUINE)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("TBRES1.!!", "bad_result"),
        ("TBRES1.AA==", "bad_result"),
        ("TBRES1.", "bad_json"),
        ("TBRES1." + b64url_encode(b"not json"), "bad_json"),
        ("TBRES1." + b64url_encode(b"\xc3\x28"), "bad_utf8"),
        ("TBRES1." + b64url_encode(b'{"a": 1, "a": 2}'), "duplicate_key"),
        ("TBRES1." + b64url_encode(b'{"result_code": 1e3}'), "bad_number"),
        ("TBRES2." + b64url_encode(b"{}"), "bad_json"),
        ("https://example.gov.cn/verify", "bad_json"),
        ('{"result_code": NaN}', "bad_number"),
        ("[" * 5000, "too_deep"),
        ("", "bad_json"),
    ],
)
def test_parse_result_text_garbage(text: str, reason: str) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        parse_result_text(text)
    assert err.value.reason == reason


@pytest.mark.parametrize("text", ["TBRES1." + b64url_encode(b"[]"), "42", '"x"', "null"])
def test_parsed_non_documents_are_not_genuine(text: str) -> None:
    check = verify_result(parse_result_text(text), FED)
    assert (check.genuine, check.reason) == (False, "bad_result")


# -- verification never raises -----------------------------------------------------------------

# Surrogates are left out: they make verify_result raise (see test_a_lone_surrogate_...).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # including ones beyond 2**53
    st.floats(allow_nan=True),
    TEXT,
    st.sampled_from(
        [
            "tongban.result",
            "2101:sfj",
            "2104:gaj",
            "210102001001-20261123-0007",
            "2026-11-24T10:00:00+08:00",
            SEAL_1.kid,
            "ed25519",
            SEAL["val"],
        ]
    ),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.one_of(TEXT, st.sampled_from(sorted(GENUINE))), inner, max_size=5)
    ),
    max_leaves=12,
)


@given(JSONISH)
@settings(max_examples=200, deadline=None)
def test_verify_never_raises_for_random_values(doc: Any) -> None:
    check = verify_result(doc, FED)
    assert not check.genuine and check.reason != "genuine"


@given(st.dictionaries(st.sampled_from(sorted(GENUINE)), JSONISH, min_size=1, max_size=3))
@settings(max_examples=200, deadline=None)
def test_verify_never_raises_for_random_documents(fields: dict[str, Any]) -> None:
    check = verify_result({**GENUINE, **fields}, FED)
    assert not check.genuine or all(_same(v, GENUINE[k]) for k, v in fields.items())


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON (``True == 1`` in Python, not on the wire)."""
    try:
        return canonical(a) == canonical(b)
    except (LocalProtocolError, ValueError):
        return False


@st.composite
def mutations(draw: st.DrawFn) -> Any:
    """The genuine document with one random change somewhere inside it."""
    doc = copy.deepcopy(GENUINE)
    parent: Any = doc
    while True:
        keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
        at = draw(st.sampled_from(keys))
        child = parent[at]
        if isinstance(child, (dict, list)) and child and draw(st.booleans()):
            parent = child
            continue
        break
    action = draw(st.sampled_from(["replace", "delete", "add", "flip"]))
    if action == "replace":
        parent[at] = draw(JSONISH)
    elif action == "delete":
        del parent[at]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(TEXT)] = draw(JSONISH)
    elif action == "add":
        parent.insert(at, draw(JSONISH))
    elif isinstance(child, str) and child:
        i = draw(st.integers(0, len(child) - 1))
        parent[at] = child[:i] + chr(ord(child[i]) ^ draw(st.integers(1, 0x7F))) + child[i + 1 :]
    else:
        parent[at] = not child if isinstance(child, bool) else str(child)
    return doc


@given(mutations())
@settings(max_examples=400, deadline=None)
def test_verify_never_raises_for_mutations(doc: Any) -> None:
    check = verify_result(doc, FED)
    assert check.genuine == _same(doc, GENUINE)


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_a_flipped_byte_of_the_text_is_never_genuine(data: st.DataObject) -> None:
    raw = bytearray(canonical(GENUINE))
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    try:
        doc = parse_result_text("TBRES1." + b64url_encode(bytes(raw)))
    except RemoteProtocolError:
        return
    assert not verify_result(doc, FED).genuine


# -- found while writing these tests (see the report) -------------------------------------------


def test_v_true_is_not_version_1() -> None:
    assert verify_result(_with(v=True), FED).reason == "bad_result"


def test_a_lone_surrogate_is_refused_at_parse_and_not_genuine() -> None:
    with pytest.raises(RemoteProtocolError) as err:
        parse_result_text(json.dumps(_with(matter_name="\ud800")))  # "\\ud800" in a QR code
    assert err.value.reason == "bad_utf8"
    check = verify_result(_with(matter_name="\ud800"), FED)
    assert (check.genuine, check.reason) == (False, "bad_utf8")
