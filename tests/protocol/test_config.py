"""Federation config: wire round trip, root signatures, acceptance, freshness, key validity,
every validation error, and the metro :class:`Federation` view."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from protocol.config import (
    Authority,
    Federation,
    FederationConfig,
    Freshness,
    KeyGrant,
    Matter,
    Member,
    Peer,
    SignedConfig,
    accept_config,
    divisions_between,
    parse_signed,
    sign_config,
)
from protocol.encoding import b64url_encode, canonical
from protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from protocol.event import Signature
from protocol.keys import KeyPair
from protocol.workdays import Calendar

from .strategies import (
    CST,
    EXPIRES,
    FS_ROOT,
    FS_SEAL,
    FS_VILLAGE_K,
    ISSUED,
    K1_UNTIL,
    K2_FROM,
    KEYS_FROM,
    OTHER,
    REVOKED_AT,
    ROOT,
    ROOT2,
    SEAL_1,
    SEAL_2,
    SEAL_HD,
    VILLAGE2_K,
    VILLAGE_K1,
    VILLAGE_K2,
    authority,
    config_dict,
    fushun,
    fushun_dict,
    grant,
    iso,
    matter,
    member,
    minimal_dict,
    peer,
    shenyang,
    shenyang_dict,
)

US = timedelta(microseconds=1)
SY = shenyang()
FS = fushun()


def signed(obj: dict[str, Any], root: KeyPair = ROOT) -> SignedConfig:
    return sign_config(FederationConfig.parse(obj), root)


def over_the_wire(config: SignedConfig) -> SignedConfig:
    return parse_signed(json.loads(json.dumps(config.to_dict())))


# -- wire form -----------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [shenyang_dict, fushun_dict, minimal_dict])
def test_parse_to_dict_round_trip(build: Callable[[], dict[str, Any]]) -> None:
    config = FederationConfig.parse(build())
    again = FederationConfig.parse(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.to_dict() == config.to_dict()


def test_parse_defaults() -> None:
    obj = minimal_dict()
    for name in ("authorities", "catalog", "peers"):
        del obj[name]
    config = FederationConfig.parse(obj)
    assert config.grace_days == 30
    assert config.calendar == Calendar(frozenset(), frozenset(), frozenset())
    assert config.catalog == {} and config.revocations == () and config.staff == {}


def test_demo_fields() -> None:
    lawyer = SY.catalog["SY-SFJ-001"]
    assert lawyer.fee == "不收费"  # an empty fee means free
    assert lawyer.result_name == "律师执业证" and not lawyer.single_reviewer
    pledge = lawyer.material("nocrime")
    assert pledge is not None and pledge.pledgeable and not pledge.deferrable
    assert lawyer.material("none") is None
    assert SY.catalog["SY-SFJ-002"].single_reviewer
    assert SY.catalog["SY-JTJ-001"].promise_unit == "自然日"
    certificate = SY.catalog["SY-MZJ-001"]
    assert certificate.delegated("210102001001") and certificate.delegated("210103001001")
    assert not certificate.delegated("210102001") and not certificate.delegated("2101")
    assert SY.members["210102"].level == "district" and SY.members["210102"].is_hub
    assert not SY.members["210102001001"].is_hub
    seal = SY.authorities["2101:sfj"]
    assert (seal.member, seal.department) == ("2101", "sfj")
    assert [m.id for m in SY.children("210102001")] == [
        "210102001001",
        "210102001001-2",
        "210102001002",
    ]
    assert SY.children("210102001001") == []
    assert SY.bundles["SY-QYKB"].matters == ("SY-SCJG-001", "SY-SCJG-002")
    assert not SY.staff["s-002"].active and SY.staff["s-002"].department is None


@pytest.mark.parametrize(
    ("member_id", "divisions"),
    [
        ("2101", ["2101"]),
        ("210102", ["2101", "210102"]),
        ("210102001", ["2101", "210102", "210102001"]),
        ("210102001001-2", ["2101", "210102", "210102001", "210102001001"]),
    ],
)
def test_divisions_between(member_id: str, divisions: list[str]) -> None:
    assert divisions_between(member_id) == divisions


# -- signatures ----------------------------------------------------------------------------------


def test_sign_parse_verify() -> None:
    config = sign_config(SY, ROOT)
    again = over_the_wire(config)
    assert again.config == SY and again.signed_bytes == config.signed_bytes
    assert again.sig == config.sig and again.serial == 1
    again.verify([ROOT.public])
    again.verify([OTHER.public, ROOT.public])
    for roots in ([], [OTHER.public], [FS_ROOT.public]):
        with pytest.raises(RemoteProtocolError) as err:
            again.verify(roots)
        assert err.value.reason == "bad_config_signature"


def test_verify_rejects_tampered_bytes_under_the_right_kid() -> None:
    config = sign_config(SY, ROOT)
    tampered = SignedConfig(
        config.config, config.sig, config.signed_bytes.replace(b"2101", b"2104", 1)
    )
    with pytest.raises(RemoteProtocolError, match="bad_config_signature"):
        tampered.verify([ROOT.public])


def test_sign_with_a_key_that_is_not_a_root() -> None:
    with pytest.raises(LocalProtocolError) as err:
        sign_config(SY, OTHER)
    assert err.value.reason == "unknown_key"


def test_sign_with_a_root_key_outside_its_validity() -> None:
    config = FederationConfig.parse(
        minimal_dict(root_keys=[grant(ROOT, KEYS_FROM, ISSUED - timedelta(days=1))])
    )
    with pytest.raises(LocalProtocolError) as err:
        sign_config(config, ROOT)
    assert err.value.reason == "key_not_valid"


def test_parse_signed_keeps_the_received_bytes() -> None:
    """Unknown fields are signed and kept, so a newer producer's config still verifies."""
    obj = minimal_dict(future_field={"x": 1})
    data = canonical(obj)
    wire = {"config": obj, "sig": Signature(ROOT.kid, "ed25519", ROOT.sign(data)).to_dict()}
    config = parse_signed(wire)
    config.verify([ROOT.public])
    assert config.signed_bytes == data and config.to_dict()["config"]["future_field"] == {"x": 1}


GOOD_SIGNED = sign_config(SY, ROOT).to_dict()


def _signed_wire(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    obj = copy.deepcopy(GOOD_SIGNED)
    change(obj)
    return obj


@pytest.mark.parametrize(
    ("wire", "reason", "detail"),
    [
        ([], "bad_config", "signed config must be an object"),
        (_signed_wire(lambda o: o.update(extra=1)), "bad_config", "exactly 'config' and 'sig'"),
        (_signed_wire(lambda o: o.pop("sig")), "bad_config", "exactly"),
        (_signed_wire(lambda o: o.update(sig="x")), "bad_config", "sig must be an object"),
        (_signed_wire(lambda o: o["sig"].pop("alg")), "bad_sig", "kid, alg and val"),
        (_signed_wire(lambda o: o["sig"].update(val=5)), "bad_sig", "kid, alg and val"),
        (_signed_wire(lambda o: o["sig"].update(val="a=")), "bad_sig", "base64url"),
        (_signed_wire(lambda o: o["sig"].update(val="AAAA")), "bad_sig", "64-byte"),
        (_signed_wire(lambda o: o["sig"].update(kid="XYZ")), "bad_sig", "32 lowercase hex"),
        (_signed_wire(lambda o: o["sig"].update(alg="sm2")), "unknown_alg", "sm2"),
        (_signed_wire(lambda o: o["config"].update(serial=0)), "bad_config", "serial"),
        (_signed_wire(lambda o: o["config"].update(extra=0.5)), "bad_number", "fractions"),
    ],
)
def test_parse_signed_errors(wire: Any, reason: str, detail: str) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        parse_signed(wire)
    assert err.value.reason == reason and detail in err.value.detail


# -- acceptance ----------------------------------------------------------------------------------

V1 = signed(shenyang_dict())
V2 = signed(shenyang_dict(serial=2))
V1_OTHER = signed(shenyang_dict(name="沈阳市 (改)"))


def test_accept_first_config_via_trust_anchor() -> None:
    assert accept_config(None, V1, [ROOT.public]) is V1
    assert accept_config(None, V1, [OTHER.public, ROOT.public]) is V1


def test_accept_newer_and_same() -> None:
    assert accept_config(V1, V2) is V2
    assert accept_config(V1, over_the_wire(V1)) is V1  # the same config again: keep ours
    assert accept_config(V2, V2) is V2


def test_root_key_rotation() -> None:
    """N lists old and new root and is signed by the old; N+1 lists only the new one."""
    n = signed(shenyang_dict(serial=2, root_keys=[grant(ROOT), grant(ROOT2)]), ROOT)
    n1 = signed(shenyang_dict(serial=3, root_keys=[grant(ROOT2)]), ROOT2)
    assert accept_config(V1, n) is n
    assert accept_config(n, n1) is n1
    with pytest.raises(RemoteProtocolError, match="bad_config_signature"):
        accept_config(V1, n1)  # the new root is not trusted before N lists it
    old_again = signed(shenyang_dict(serial=4, root_keys=[grant(ROOT), grant(ROOT2)]), ROOT)
    with pytest.raises(RemoteProtocolError, match="bad_config_signature"):
        accept_config(n1, old_again)  # the retired root no longer signs


def test_a_retired_root_key_cannot_sign_and_issue_time_never_goes_back() -> None:
    later = ISSUED + timedelta(days=40)
    n = signed(shenyang_dict(serial=2, root_keys=[grant(ROOT, KEYS_FROM, later), grant(ROOT2)]))
    # Signed by ROOT after its valid_until: refused although ROOT is still listed.
    leaked = signed(
        {**shenyang_dict(serial=3, root_keys=[grant(ROOT), grant(ROOT2)]), "issued": iso(later)}
    )
    with pytest.raises(RemoteProtocolError, match="bad_config_signature"):
        accept_config(n, leaked)
    # Issued before the held config: refused even when a valid root key signed it.
    held = signed({**shenyang_dict(serial=3), "issued": iso(ISSUED + timedelta(days=1))})
    backdated = signed({**shenyang_dict(serial=4), "issued": iso(ISSUED)})
    with pytest.raises(RemoteProtocolError, match="stale_serial"):
        accept_config(held, backdated)


def _signed_by_member() -> SignedConfig:
    data = canonical(SY.to_dict())
    return SignedConfig(SY, Signature(VILLAGE_K1.kid, "ed25519", VILLAGE_K1.sign(data)), data)


@pytest.mark.parametrize(
    ("current", "offered", "anchor", "reason"),
    [
        (None, V1, [], "bad_config_signature"),
        (None, V1, [OTHER.public], "bad_config_signature"),
        (V2, V1, [], "stale_serial"),
        (V1, V1_OTHER, [], "serial_conflict"),
        (
            V1,
            signed(config_dict("2104", [member("2104", None, hub=True)], serial=5)),
            [],
            "wrong_federation",
        ),
        (V1, signed(fushun_dict(serial=5), FS_ROOT), [], "bad_config_signature"),
        (V1, _signed_by_member(), [], "bad_config_signature"),
        (None, _signed_by_member(), [ROOT.public], "bad_config_signature"),
    ],
)
def test_accept_config_rejects(
    current: SignedConfig | None, offered: SignedConfig, anchor: list[Any], reason: str
) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        accept_config(current, offered, anchor)
    assert err.value.reason == reason


def test_accept_ignores_the_anchor_once_a_config_is_held() -> None:
    other_root = signed(shenyang_dict(serial=2, root_keys=[grant(OTHER)]), OTHER)
    with pytest.raises(RemoteProtocolError, match="bad_config_signature"):
        accept_config(V1, other_root, [OTHER.public])


# -- freshness -----------------------------------------------------------------------------------

GRACE = timedelta(days=30)


@pytest.mark.parametrize(
    ("grace_days", "at", "expected"),
    [
        (30, ISSUED, Freshness.FRESH),
        (30, EXPIRES - US, Freshness.FRESH),
        (30, EXPIRES, Freshness.STALE),
        (30, EXPIRES + GRACE - US, Freshness.STALE),
        (30, EXPIRES + GRACE, Freshness.EXPIRED),
        (30, EXPIRES + 100 * GRACE, Freshness.EXPIRED),
        (0, EXPIRES - US, Freshness.FRESH),
        (0, EXPIRES, Freshness.EXPIRED),
    ],
)
def test_freshness(grace_days: int, at: datetime, expected: Freshness) -> None:
    assert FederationConfig.parse(minimal_dict(grace_days=grace_days)).freshness(at) is expected


# -- key validity: "was key K valid for member M at time T" --------------------------------------

BEFORE_REVOKE = REVOKED_AT - US


@pytest.mark.parametrize(
    ("member_id", "pair", "at", "reason"),
    [
        ("210102001001", VILLAGE_K1, KEYS_FROM, None),
        ("210102001001", VILLAGE_K1, KEYS_FROM - US, "key_not_valid"),
        ("210102001001", VILLAGE_K1, K1_UNTIL - US, None),
        ("210102001001", VILLAGE_K1, K1_UNTIL, "key_not_valid"),
        ("210102001001", VILLAGE_K1, K1_UNTIL + GRACE, "key_not_valid"),
        ("210102001001", VILLAGE_K1, REVOKED_AT, None),  # per-key revocation spares K1
        ("210102001001", VILLAGE_K2, K2_FROM - US, "key_not_valid"),
        ("210102001001", VILLAGE_K2, K2_FROM, None),
        ("210102001001", VILLAGE_K2, BEFORE_REVOKE, None),  # history before revoked_at verifies
        ("210102001001", VILLAGE_K2, REVOKED_AT, "key_revoked"),
        ("210102001001", VILLAGE_K2, EXPIRES, "key_revoked"),
        ("210102001002", VILLAGE2_K, BEFORE_REVOKE, None),
        ("210102001002", VILLAGE2_K, REVOKED_AT, "key_revoked"),  # member-wide
        ("210102001001", VILLAGE2_K, KEYS_FROM, "unknown_key"),  # another member's key
        ("210102001009", VILLAGE_K1, KEYS_FROM, "unknown_author"),
        ("210402001001", FS_VILLAGE_K, KEYS_FROM, "unknown_author"),  # a peer city's member
    ],
)
def test_member_key(member_id: str, pair: KeyPair, at: datetime, reason: str | None) -> None:
    if reason is None:
        assert SY.member_key(member_id, pair.kid, at) == pair.public
        return
    with pytest.raises(RemoteProtocolError) as err:
        SY.member_key(member_id, pair.kid, at)
    assert err.value.reason == reason and member_id in err.value.detail


@pytest.mark.parametrize(
    ("authority_id", "pair", "at", "reason"),
    [
        ("2101:sfj", SEAL_1, KEYS_FROM, None),
        ("2101:sfj", SEAL_1, KEYS_FROM - US, "key_not_valid"),
        ("2101:sfj", SEAL_1, EXPIRES, None),
        ("2101:sfj", SEAL_2, BEFORE_REVOKE, None),
        ("2101:sfj", SEAL_2, REVOKED_AT, "key_revoked"),  # per-kid, under the hub's member id
        ("210103:scjg", SEAL_HD, BEFORE_REVOKE, None),
        ("210103:scjg", SEAL_HD, REVOKED_AT, "key_revoked"),  # its hub revoked member-wide
        ("2101:sfj", SEAL_HD, KEYS_FROM, "unknown_key"),
        ("2101:jtj", SEAL_1, KEYS_FROM, "unknown_key"),
        ("2101:xyz", SEAL_1, KEYS_FROM, "unknown_authority"),
    ],
)
def test_seal_key(authority_id: str, pair: KeyPair, at: datetime, reason: str | None) -> None:
    if reason is None:
        assert SY.seal_key(authority_id, pair.kid, at) == pair.public
        return
    with pytest.raises(RemoteProtocolError) as err:
        SY.seal_key(authority_id, pair.kid, at)
    assert err.value.reason == reason and authority_id in err.value.detail


def test_revoked_returns_the_revocation() -> None:
    found = SY.revoked("210102001001", VILLAGE_K2.kid, REVOKED_AT)
    assert found is not None and found.reason == "丢失"
    assert SY.revoked("210102001001", VILLAGE_K1.kid, REVOKED_AT) is None
    assert SY.revoked("210102001001", VILLAGE_K2.kid, BEFORE_REVOKE) is None


def test_root_key() -> None:
    config = FederationConfig.parse(
        minimal_dict(root_keys=[grant(ROOT, ISSUED, EXPIRES), grant(ROOT2, EXPIRES)])
    )
    assert config.root_key(ROOT.kid) == ROOT.public
    assert config.root_key(ROOT.kid, ISSUED) == ROOT.public
    assert config.root_key(ROOT.kid, EXPIRES) is None
    assert config.root_key(ROOT2.kid, ISSUED) is None
    assert config.root_key(ROOT2.kid, EXPIRES) == ROOT2.public
    assert config.root_key(OTHER.kid) is None


# -- validation: one row per error ---------------------------------------------------------------


def _mutate(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    obj = shenyang_dict()
    change(obj)
    return obj


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set ``value`` at a dotted path such as ``members.0.id``, or delete it (``...``)."""

    def change(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = obj
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        elif value is ...:
            del target[last]
        else:
            target[last] = value

    return change


def _append(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj.setdefault(key, []).append(value)


M_LAWYER = 0  # catalog index of SY-SFJ-001 (materials, steps, result)
M_TOWNSHIP = 6  # catalog index of SY-MZJ-001 (即办件)


def _append_material(item: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj["catalog"][M_LAWYER]["materials"].append(item)


PARSE_ERRORS: list[tuple[str, Callable[[dict[str, Any]], object], str, str]] = [
    # config and the type helpers (_str, _int, _list, _ts, _grants)
    (
        "federation missing",
        _set("federation", ...),
        "bad_config",
        "config.federation must be a non-empty",
    ),
    ("federation empty", _set("federation", ""), "bad_config", "config.federation"),
    ("federation too long", _set("federation", "21010"), "bad_config", "≤4 chars"),
    ("federation 3 digits", _set("federation", "210"), "bad_config", "4-digit city code"),
    ("federation letters", _set("federation", "abcd"), "bad_config", "4-digit city code"),
    ("name not a string", _set("name", 5), "bad_config", "config.name"),
    ("serial 0", _set("serial", 0), "bad_config", "config.serial must be an integer ≥ 1"),
    ("serial bool", _set("serial", True), "bad_config", "config.serial"),
    ("serial string", _set("serial", "2"), "bad_config", "config.serial"),
    ("issued missing", _set("issued", ...), "bad_ts", "config.issued"),
    ("issued no offset", _set("issued", "2026-01-01T00:00:00"), "bad_ts", "config.issued"),
    ("issued no time", _set("issued", "2026-01-01"), "bad_ts", "config.issued"),
    ("issued impossible", _set("issued", "2026-02-30T00:00:00+08:00"), "bad_ts", "config.issued"),
    (
        "expires before issued",
        _set("expires", iso(ISSUED - US)),
        "bad_config",
        "expires must come after",
    ),
    ("expires equal issued", _set("expires", iso(ISSUED)), "bad_config", "expires must come after"),
    (
        "grace negative",
        _set("grace_days", -1),
        "bad_config",
        "config.grace_days must be an integer ≥ 0",
    ),
    ("members not a list", _set("members", {}), "bad_config", "config.members must be a list"),
    ("no root key", _set("root_keys", []), "bad_config", "at least one root key"),
    ("root key twice", _set("root_keys", [grant(ROOT), grant(ROOT)]), "duplicate", "config: key"),
    (
        "root key not object",
        _set("root_keys", ["k"]),
        "bad_config",
        "config.root_keys[0] must be an object",
    ),
    ("root key bad text", _set("root_keys.0.public", "!!"), "bad_key", "config.root_keys[0]"),
    ("root key short", _set("root_keys.0.public", "AAAA"), "bad_key", "32 bytes"),
    (
        "root key missing",
        _set("root_keys.0.public", ...),
        "bad_config",
        "config.root_keys[0].public",
    ),
    ("root key alg", _set("root_keys.0.alg", "sm2"), "unknown_alg", "config.root_keys[0]"),
    ("root key from", _set("root_keys.0.valid_from", None), "bad_ts", "root_keys[0].valid_from"),
    (
        "root key until",
        _set("root_keys.0.valid_until", "soon"),
        "bad_ts",
        "root_keys[0].valid_until",
    ),
    (
        "root key until ≤ from",
        _set("root_keys.0.valid_until", iso(KEYS_FROM)),
        "bad_config",
        "valid_until must come after",
    ),
    ("calendar shape", _set("calendar", {"years": []}), "bad_calendar", "calendar:"),
    ("calendar day", _set("calendar.holidays", ["2027-01-01"]), "bad_calendar", "calendar:"),
    # members
    (
        "member not object",
        _set("members.1", "210102"),
        "bad_config",
        "members[1] must be an object",
    ),
    ("member id bad", _set("members.1.id", "21x"), "bad_member_id", "'21x'"),
    ("member id too long", _set("members.1.id", "2" * 21), "bad_config", "members[1].id"),
    ("member id missing", _set("members.1.id", ...), "bad_config", "members[1].id"),
    ("member name empty", _set("members.1.name", ""), "bad_config", "members[1].name"),
    ("parent bad", _set("members.1.parent", 2101), "bad_member_id", "210102.parent"),
    ("parent not above", _set("members.1.parent", "210103"), "bad_parent", "not above it"),
    (
        "parent a sibling station",
        _set("members.5.parent", "210102001001"),
        "bad_parent",
        "not above",
    ),
    ("parent missing", _set("members.1.parent", None), "bad_parent", "210102 needs a parent"),
    (
        "parent unknown",
        _set("members.9.parent", "210102003"),
        "bad_parent",
        "parent 210102003 is not",
    ),
    (
        "parent a station",
        _append("members", member("210104001", "210104")),
        "bad_parent",
        "parent 210104 is not a hub",
    ),
    (
        "parent of removed hub",
        lambda o: o["members"].pop(3),
        "bad_parent",
        "parent 210102001 is not a hub",
    ),
    (
        "city hub missing",
        lambda o: o["members"].pop(0),
        "bad_config",
        "city hub 2101 must be a member",
    ),
    ("city hub its own parent", _set("members.0.parent", "2101"), "bad_parent", "not above it"),
    (
        "member of another city",
        _append("members", member("2104", None)),
        "bad_config",
        "outside city 2101",
    ),
    ("member twice", _append("members", member("210102", "2101")), "duplicate", "member '210102'"),
    (
        "roles not a list",
        _set("members.1.roles", "hub"),
        "bad_config",
        "members[1].roles must be a list",
    ),
    ("roles not strings", _set("members.1.roles", [1]), "bad_config", "roles must be strings"),
    ("roles empty", _set("members.1.roles", []), "bad_config", "roles must be among"),
    ("roles unknown", _set("members.1.roles", ["admin"]), "bad_config", "roles must be among"),
    ("endpoint", _set("members.1.endpoint", 80), "bad_config", "endpoint must be a URL or null"),
    ("keys not list", _set("members.4.keys", {}), "bad_config", "members[4].keys must be a list"),
    (
        "member key twice",
        _set("members.4.keys", [grant(VILLAGE_K1), grant(VILLAGE_K1)]),
        "duplicate",
        "members[4]: key",
    ),
    # revocations
    ("revocation not object", _set("revocations.0", None), "bad_config", "revocations[0] must be"),
    ("revocation kid", _set("revocations.0.kid", 5), "bad_config", "kid must be a key id or null"),
    (
        "revocation member",
        _set("revocations.0.member", "x"),
        "bad_member_id",
        "revocations[0].member",
    ),
    ("revocation at", _set("revocations.0.revoked_at", ...), "bad_ts", "revocations[0].revoked_at"),
    (
        "revocation reason",
        _set("revocations.0.reason", 5),
        "bad_config",
        "reason must be a string of",
    ),
    ("revocation reason long", _set("revocations.0.reason", "x" * 2001), "bad_config", "≤2000"),
    (
        "revocation unknown member",
        _set("revocations.0.member", "210199"),
        "bad_config",
        "unknown member 210199",
    ),
    # authorities
    (
        "authority no dept",
        _set("authorities.1.id", "2101"),
        "bad_config",
        "must be <member>:<department>",
    ),
    ("authority bad dept", _set("authorities.1.id", "2101:SCJG"), "bad_address", "authority"),
    ("authority id long", _set("authorities.1.id", "2101:" + "a" * 40), "bad_config", "≤40"),
    ("authority no hub", _set("authorities.1.id", "210199:scjg"), "bad_config", "not at a hub"),
    ("authority at station", _set("authorities.1.id", "210104:scjg"), "bad_config", "not at a hub"),
    (
        "authority twice",
        _append("authorities", authority("2101:jtj")),
        "duplicate",
        "authority '2101:jtj'",
    ),
    (
        "seal twice",
        _set("authorities.0.seal_keys.1", grant(SEAL_1)),
        "duplicate",
        "authorities[0]: key",
    ),
    # catalog (Matter)
    ("matter not object", _set("catalog.0", []), "bad_config", "catalog[0] must be an object"),
    ("code missing", _set("catalog.0.code", ...), "bad_config", "catalog[0].code"),
    ("code long", _set("catalog.0.code", "x" * 51), "bad_config", "≤50"),
    ("type 21", _set("catalog.0.type", "21"), "bad_matter", "type must be 01..20"),
    ("type 00", _set("catalog.0.type", "00"), "bad_matter", "type must be 01..20"),
    ("type long", _set("catalog.0.type", "001"), "bad_config", "catalog[0].type"),
    ("basis missing", _set("catalog.0.basis", ...), "bad_config", "catalog[0].basis"),
    ("authority upper", _set("catalog.0.authority", "SFJ"), "bad_matter", "department code"),
    ("level village", _set("catalog.0.level", "village"), "bad_matter", "level must be one of"),
    ("kind", _set("catalog.0.kind", "即时件"), "bad_matter", "kind must be 即办件 or 承诺件"),
    ("scope", _set("catalog.0.scope", "province"), "bad_matter", "scope must be one of"),
    ("unit", _set("catalog.0.promise_unit", "月"), "bad_matter", "promise_unit"),
    ("unit not string", _set("catalog.0.promise_unit", 1), "bad_matter", "promise_unit"),
    ("promise negative", _set("catalog.0.promise_days", -1), "bad_config", "promise_days must be"),
    ("legal missing", _set("catalog.0.legal_days", ...), "bad_config", "legal_days must be"),
    (
        "legal < promise",
        _set("catalog.0.legal_days", 19),
        "bad_matter",
        "promise_days ≤ legal_days",
    ),
    (
        "即办件 with days",
        _set(f"catalog.{M_TOWNSHIP}.promise_days", 1),
        "bad_matter",
        "即办件 has promise_days 0",
    ),
    (
        "material twice",
        _append_material({"id": "idcard", "name": "身份证复印件"}),
        "duplicate",
        "material 'idcard'",
    ),
    (
        "material not object",
        _set("catalog.0.materials.0", "idcard"),
        "bad_config",
        "materials[0] must be",
    ),
    ("material name", _set("catalog.0.materials.0.name", ""), "bad_config", "materials[0].name"),
    (
        "material bool",
        _set("catalog.0.materials.0.required", "yes"),
        "bad_config",
        "must be true or false",
    ),
    (
        "material licence",
        _set("catalog.0.materials.0.licence_type", "x" * 51),
        "bad_config",
        "licence_type",
    ),
    (
        "materials not list",
        _set("catalog.0.materials", {}),
        "bad_config",
        "materials must be a list",
    ),
    (
        "step not object",
        _set("catalog.0.steps.0", "审核"),
        "bad_config",
        "steps[0] must be an object",
    ),
    ("step role", _set("catalog.0.steps.1.role", ""), "bad_config", "steps[1].role"),
    (
        "delegated not strings",
        _set(f"catalog.{M_TOWNSHIP}.delegated_to", [1]),
        "bad_matter",
        "must be strings",
    ),
    (
        "delegated level",
        _set(f"catalog.{M_TOWNSHIP}.delegated_to", ["province"]),
        "bad_member_id",
        "delegated_to",
    ),
    (
        "delegated id",
        _set(f"catalog.{M_TOWNSHIP}.delegated_to", ["21010"]),
        "bad_member_id",
        "'21010'",
    ),
    (
        "result not object",
        _set("catalog.0.result", "证"),
        "bad_config",
        "catalog[0].result must be",
    ),
    ("result name", _set("catalog.0.result.name", 5), "bad_config", "catalog[0].result.name"),
    ("fee", _set("catalog.0.fee", 0), "bad_config", "catalog[0].fee"),
    ("theme long", _set("catalog.0.theme", "x" * 101), "bad_config", "≤100"),
    (
        "no authority at level",
        _set("catalog.0.level", "township"),
        "bad_matter",
        "no township authority",
    ),
    ("no such department", _set("catalog.0.authority", "wsj"), "bad_matter", "of wsj"),
    (
        "matter twice",
        _append("catalog", matter("SY-SFJ-001", "sfj", "city", "city")),
        "duplicate",
        "matter",
    ),
    # bundles
    (
        "bundle not object",
        _set("bundles.0", "SY-QYKB"),
        "bad_config",
        "bundles[0] must be an object",
    ),
    ("bundle one matter", _set("bundles.0.matters", ["SY-SCJG-001"]), "bad_config", "at least two"),
    ("bundle not strings", _set("bundles.0.matters", [1, 2]), "bad_config", "at least two"),
    ("bundle code", _set("bundles.0.code", ""), "bad_config", "bundles[0].code"),
    (
        "bundle unknown matter",
        _set("bundles.0.matters.1", "NOPE"),
        "bad_config",
        "unknown matter NOPE",
    ),
    (
        "bundle twice",
        _append(
            "bundles", {"code": "SY-QYKB", "name": "x", "matters": ["SY-SFJ-001", "SY-SFJ-002"]}
        ),
        "duplicate",
        "bundle 'SY-QYKB'",
    ),
    # peers
    ("peer not object", _set("peers.0", "2104"), "bad_config", "peers[0] must be an object"),
    ("peer city short", _set("peers.0.city", "21"), "bad_member_id", "peer city"),
    ("peer city long", _set("peers.0.city", "210402"), "bad_config", "peers[0].city"),
    ("peer is self", _set("peers.0.city", "2101"), "bad_config", "cannot be its own peer"),
    ("peer endpoint", _set("peers.0.endpoint", ...), "bad_config", "peers[0].endpoint"),
    (
        "peer root twice",
        _set("peers.0.root_keys", [grant(FS_ROOT)] * 2),
        "duplicate",
        "peers[0]: key",
    ),
    ("peer twice", _append("peers", peer("2104", FS_ROOT)), "duplicate", "peer '2104'"),
    # staff
    ("staff not object", _set("staff.0", 1), "bad_config", "staff[0] must be an object"),
    (
        "staff dept upper",
        _set("staff.0.department", "SFJ"),
        "bad_config",
        "department code or null",
    ),
    ("staff dept type", _set("staff.0.department", 5), "bad_config", "department code or null"),
    ("staff roles", _set("staff.0.roles", [None]), "bad_config", "staff[0].roles must be strings"),
    ("staff member", _set("staff.0.member", None), "bad_member_id", "staff[0].member"),
    (
        "staff active",
        _set("staff.0.active", 1),
        "bad_config",
        "staff[0].active must be true or false",
    ),
    ("staff id", _set("staff.0.id", "x" * 51), "bad_config", "staff[0].id"),
    (
        "staff unknown member",
        _set("staff.0.member", "210199"),
        "bad_config",
        "unknown member 210199",
    ),
    ("staff twice", _set("staff.1.id", "s-001"), "duplicate", "staff 's-001'"),
    (
        "staff active but disabled_at",
        _set("staff.0.disabled_at", "2026-11-20T09:00:00+08:00"),
        "bad_config",
        "an active account has no disabled_at",
    ),
    ("staff disabled_at ts", _set("staff.0.disabled_at", "yesterday"), "bad_ts", "disabled_at"),
    ("staff reset type", _set("staff.0.password_reset", 3), "bad_config", "must be an object"),
    (
        "staff reset hash",
        _set("staff.0.password_reset", {"at": "2026-11-20T09:00:00+08:00", "hash": "plain"}),
        "bad_config",
        "must be an argon2 hash",
    ),
]


@pytest.mark.parametrize(
    ("change", "reason", "detail"),
    [row[1:] for row in PARSE_ERRORS],
    ids=[row[0] for row in PARSE_ERRORS],
)
def test_parse_errors(change: Callable[[dict[str, Any]], object], reason: str, detail: str) -> None:
    with pytest.raises(ProtocolError) as err:
        FederationConfig.parse(_mutate(change))
    assert (err.value.reason, err.value.fault) == (reason, "local"), err.value
    assert detail in err.value.detail


def test_parse_rejects_a_non_object() -> None:
    with pytest.raises(LocalProtocolError, match="config must be an object"):
        FederationConfig.parse([])


KG = KeyGrant(ROOT.public, ISSUED)
HUB = Member("2101", "沈阳", None, (), frozenset({"hub"}))


def _config(**over: Any) -> FederationConfig:
    fields: dict[str, Any] = {
        "federation": "2101",
        "name": "沈阳市",
        "serial": 1,
        "issued": ISSUED,
        "expires": EXPIRES,
        "root_keys": (KG,),
        "members": {"2101": HUB},
    }
    fields.update(over)
    return FederationConfig(**fields)


def _matter(**over: Any) -> Matter:
    fields: dict[str, Any] = {
        "code": "SY-1",
        "name": "事项",
        "type": "01",
        "basis": "依据",
        "authority": "sfj",
        "level": "city",
        "kind": "承诺件",
        "promise_days": 5,
        "legal_days": 10,
        "scope": "city",
    }
    fields.update(over)
    return Matter(**fields)


@pytest.mark.parametrize(
    ("build", "reason", "detail"),
    [
        (
            lambda: KeyGrant(ROOT.public, ISSUED, ISSUED),
            "bad_config",
            "valid_until must come after",
        ),
        (
            lambda: Member("2101-2", "x", None, (), frozenset({"x"})),
            "bad_config",
            "roles must be among",
        ),
        (
            lambda: Member("210102", "x", "2101-2", (), frozenset({"hub"})),
            "bad_parent",
            "not above it",
        ),
        (lambda: Authority("2101:sfj:x", "x", ()), "bad_address", "authority"),
        (lambda: _matter(code=""), "bad_matter", "code is 1 to 50"),
        (lambda: _matter(code="x" * 51), "bad_matter", "code is 1 to 50"),
        (lambda: _matter(promise_days=-1), "bad_matter", "0 ≤ promise_days"),
        (lambda: _matter(kind="即办件"), "bad_matter", "即办件 has promise_days 0"),
        (lambda: _matter(delegated_to=("210102001001-0",)), "bad_member_id", "delegated_to"),
        (lambda: Peer("210102", "x", "https://x", ()), "bad_config", "4-digit city code"),
        (lambda: Peer("21", "x", "https://x", ()), "bad_member_id", "peer city"),
        (lambda: _config(federation="210102"), "bad_config", "4-digit city code"),
        (lambda: _config(serial=0), "bad_config", "serial starts at 1"),
        (lambda: _config(grace_days=-1), "bad_config", "grace_days"),
        (lambda: _config(root_keys=()), "bad_config", "at least one root key"),
        (lambda: _config(members={}), "bad_config", "city hub 2101"),
    ],
)
def test_constructor_errors(build: Callable[[], object], reason: str, detail: str) -> None:
    with pytest.raises(LocalProtocolError) as err:
        build()
    assert err.value.reason == reason and detail in err.value.detail


def test_constructor_accepts_valid_values() -> None:
    assert _matter(delegated_to=("city", "village", "210102001001-2")).delegated("210102001001-2")
    assert _matter(kind="即办件", promise_days=0, legal_days=0).promise_days == 0
    assert _config().children("2101") == []


# -- the metro view ------------------------------------------------------------------------------

FED = Federation(SY, {"2104": FS})


def test_federation_lookups() -> None:
    assert FED.city("210102001001-2") is SY and FED.city("2101:sfj") is SY
    assert FED.city("2104:gaj") is FS and FED.city("210402001001") is FS
    assert FED.city("2102") is None
    assert list(FED.configs()) == [SY, FS]
    member = FED.member("210402")
    assert member is not None and member.parent == "2104"
    assert FED.member("210102001001-2") is SY.members["210102001001-2"]
    assert FED.member("210499") is None and FED.member("210201") is None
    assert FED.authority("2104:gaj") is FS.authorities["2104:gaj"]
    assert FED.authority("2101:jtj") is SY.authorities["2101:jtj"]
    assert FED.authority("2104:sfj") is None and FED.authority("2102:sfj") is None


@pytest.mark.parametrize(
    ("code", "city"),
    [
        ("SY-SFJ-001", "2101"),  # own catalog first, even where a peer uses the same code
        ("SY-SCJG-002", "2101"),  # own matters whatever their scope
        ("FS-GAJ-001", "2104"),  # peer matter with scope metro
        ("FS-SCJG-001", "2104"),
        ("FS-GAJ-002", None),  # peer matter with scope city: not ours to accept
        ("NOPE", None),
    ],
)
def test_federation_matter(code: str, city: str | None) -> None:
    found = FED.matter(code)
    if city is None:
        assert found is None
        return
    assert found is not None
    config, matter = found
    assert config.federation == city and matter is config.catalog[code]


def test_federation_matter_alone() -> None:
    alone = Federation(SY)
    assert alone.matter("FS-GAJ-001") is None and alone.city("2104") is None


@pytest.mark.parametrize(
    ("kind", "who", "pair", "at", "reason"),
    [
        ("member", "210402001001", FS_VILLAGE_K, KEYS_FROM, None),
        ("member", "210102001001", VILLAGE_K1, KEYS_FROM, None),
        ("member", "210102001001", VILLAGE_K2, REVOKED_AT, "key_revoked"),
        ("member", "210402001001", VILLAGE_K1, KEYS_FROM, "unknown_key"),
        ("member", "210499", FS_VILLAGE_K, KEYS_FROM, "unknown_author"),
        ("member", "210201001001", FS_VILLAGE_K, KEYS_FROM, "unknown_author"),  # not a peer city
        ("seal", "2104:gaj", FS_SEAL, KEYS_FROM, None),
        ("seal", "2101:sfj", SEAL_1, KEYS_FROM, None),
        ("seal", "2104:gaj", SEAL_1, KEYS_FROM, "unknown_key"),
        ("seal", "2104:sfj", FS_SEAL, KEYS_FROM, "unknown_authority"),
        ("seal", "2102:gaj", FS_SEAL, KEYS_FROM, "unknown_authority"),
    ],
)
def test_federation_keys(
    kind: str, who: str, pair: KeyPair, at: datetime, reason: str | None
) -> None:
    lookup = FED.member_key if kind == "member" else FED.seal_key
    if reason is None:
        assert lookup(who, pair.kid, at) == pair.public
        return
    with pytest.raises(RemoteProtocolError) as err:
        lookup(who, pair.kid, at)
    assert err.value.reason == reason and who in err.value.detail


DALIAN = FederationConfig.parse(config_dict("2102", [member("2102", None, hub=True)]))


@pytest.mark.parametrize(
    "peers",
    [
        {"2102": DALIAN},  # not listed as a peer of 沈阳
        {"2104": SY},  # filed under a peer's code but another city's config
        {"2104": DALIAN},
    ],
)
def test_federation_rejects_non_peers(peers: dict[str, FederationConfig]) -> None:
    with pytest.raises(LocalProtocolError) as err:
        Federation(SY, peers)
    assert err.value.reason == "bad_config" and "is not a metro peer of 2101" in err.value.detail


def test_timestamps_keep_their_offset() -> None:
    assert SY.issued.utcoffset() == CST.utcoffset(None)
    assert SY.to_dict()["issued"] == "2026-01-01T00:00:00+08:00"
    assert b64url_encode(ROOT.public.raw) == SY.to_dict()["root_keys"][0]["public"]


def test_staff_validity_is_time_aware_and_resets_round_trip() -> None:
    obj = shenyang_dict()
    obj["staff"][0].update(
        active=False,
        disabled_at="2026-11-20T09:00:00+08:00",
        password_reset={"at": "2026-11-19T09:00:00+08:00", "hash": "$argon2id$v=19$x"},
    )
    staff = FederationConfig.parse(obj).staff[obj["staff"][0]["id"]]
    cut = datetime(2026, 11, 20, 9, 0, tzinfo=CST)
    assert staff.active_at(cut - timedelta(seconds=1)) and not staff.active_at(cut)
    assert staff.password_reset is not None and staff.password_reset.at < cut
    again = FederationConfig.parse({**obj, "staff": [staff.to_dict()]}).staff[staff.id]
    assert again == staff
    # An account disabled by an older config (no disabled_at) was never active.
    retired = SY.staff["s-002"]
    assert (
        not retired.active_at(cut - timedelta(days=3650)) and "disabled_at" not in retired.to_dict()
    )
    assert SY.staff["s-001"].active_at(cut)
