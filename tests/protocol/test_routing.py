"""Routing by division-code prefix, the competent authority, scope, and the ids helpers.

The fixed tables run over the 沈阳/抚顺 demo of :mod:`tests.protocol.strategies`::

    2101 (hub: sfj scjg jtj) ─┬─ 210102 (hub: scjg) ─┬─ 210102001 (hub: mzj) ─┬─ 210102001001
                              │                      │                        ├─ 210102001001-2
                              │                      │                        └─ 210102001002
                              │                      ├─ 210102002 (hub) ───── 210102002001
                              │                      └─ 210102003005 (village directly under)
                              ├─ 210102-2 (station)
                              ├─ 210103 (hub: scjg) ─── 210103001 (hub) ───── 210103001001
                              └─ 210104 (station)
    metro peer 2104 (hub: gaj) ─┬─ 210402 (hub: scjg) ── 210402001 (hub) ── 210402001001
                                └─ 210411 (hub)
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from protocol.config import Federation, FederationConfig
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.ids import (
    case_author,
    case_number,
    check_address,
    check_case_number,
    check_member_id,
    city_of,
    department_of,
    division,
    is_within,
    level_of,
    member_of,
)
from protocol.routing import (
    Child,
    Deliver,
    Hop,
    Parent,
    Peer,
    Unroutable,
    competent_authority,
    may_accept,
    next_hop,
    route,
)

from .strategies import Generated, config_dict, federations, fushun, member, shenyang

SY = shenyang()
FS = fushun()
FED = Federation(SY, {"2104": FS})

# -- next_hop: one table per tier -----------------------------------------------------------------

VILLAGE, TOWNSHIP, DISTRICT, CITY = "210102001001", "210102001", "210102", "2101"

NEXT_HOP: list[tuple[str, str, str, Hop | str]] = [
    # village 210102001001
    ("village: itself", VILLAGE, VILLAGE, Deliver(VILLAGE)),
    ("village: own department", VILLAGE, "210102001001:cw", Deliver("210102001001:cw")),
    ("village: station sibling", VILLAGE, "210102001001-2", Parent(TOWNSHIP)),
    ("village: sibling", VILLAGE, "210102001002", Parent(TOWNSHIP)),
    ("village: its township", VILLAGE, TOWNSHIP, Parent(TOWNSHIP)),
    ("village: township authority", VILLAGE, "210102001:mzj", Parent(TOWNSHIP)),
    ("village: cousin", VILLAGE, "210102002001", Parent(TOWNSHIP)),
    ("village: far cousin", VILLAGE, "210103001001", Parent(TOWNSHIP)),
    ("village: city authority", VILLAGE, "2101:sfj", Parent(TOWNSHIP)),
    ("village: metro city", VILLAGE, "2104:gaj", Parent(TOWNSHIP)),
    ("village: non-peer city", VILLAGE, "2102:sfj", Parent(TOWNSHIP)),
    # a suffixed station is a sibling of the unsuffixed one, never its parent or child
    ("station: itself", "210102001001-2", "210102001001-2", Deliver("210102001001-2")),
    (
        "station: own department",
        "210102001001-2",
        "210102001001-2:cw",
        Deliver("210102001001-2:cw"),
    ),
    ("station: unsuffixed sibling", "210102001001-2", VILLAGE, Parent(TOWNSHIP)),
    ("station: sibling's department", "210102001001-2", "210102001001:cw", Parent(TOWNSHIP)),
    ("station: other suffix", "210102001001-2", "210102001001-3", Parent(TOWNSHIP)),
    # township 210102001
    ("township: itself", TOWNSHIP, TOWNSHIP, Deliver(TOWNSHIP)),
    ("township: own department", TOWNSHIP, "210102001:mzj", Deliver("210102001:mzj")),
    ("township: child", TOWNSHIP, VILLAGE, Child(VILLAGE)),
    ("township: child station", TOWNSHIP, "210102001001-2", Child("210102001001-2")),
    ("township: child's department", TOWNSHIP, "210102001002:cw", Child("210102001002")),
    ("township: sibling", TOWNSHIP, "210102002", Parent(DISTRICT)),
    ("township: nephew", TOWNSHIP, "210102002001", Parent(DISTRICT)),
    ("township: cousin", TOWNSHIP, "210103001", Parent(DISTRICT)),
    ("township: district authority", TOWNSHIP, "210102:scjg", Parent(DISTRICT)),
    ("township: city authority", TOWNSHIP, "2101:sfj", Parent(DISTRICT)),
    ("township: metro city", TOWNSHIP, "210402001001", Parent(DISTRICT)),
    ("township: non-peer city", TOWNSHIP, "2102", Parent(DISTRICT)),
    ("township: no such child", TOWNSHIP, "210102001009", "no_route"),
    ("city: unnamed village below a district", "2101", "210102777001", Child(DISTRICT)),
    ("township: no such station", TOWNSHIP, "210102001001-3", "no_route"),
    # district 210102
    ("district: itself", DISTRICT, DISTRICT, Deliver(DISTRICT)),
    ("district: own department", DISTRICT, "210102:scjg", Deliver("210102:scjg")),
    ("district: child", DISTRICT, TOWNSHIP, Child(TOWNSHIP)),
    ("district: child's department", DISTRICT, "210102001:mzj", Child(TOWNSHIP)),
    ("district: grandchild", DISTRICT, VILLAGE, Child(TOWNSHIP)),
    ("district: grandchild station", DISTRICT, "210102001001-2", Child(TOWNSHIP)),
    ("district: village directly under", DISTRICT, "210102003005", Child("210102003005")),
    ("district: station sibling", DISTRICT, "210102-2", Parent(CITY)),
    ("district: sibling", DISTRICT, "210103", Parent(CITY)),
    ("district: cousin", DISTRICT, "210103001001", Parent(CITY)),
    ("district: city itself", DISTRICT, CITY, Parent(CITY)),
    ("district: city authority", DISTRICT, "2101:sfj", Parent(CITY)),
    ("district: metro city", DISTRICT, "2104:gaj", Parent(CITY)),
    ("district: non-peer city", DISTRICT, "2102:sfj", Parent(CITY)),
    ("district: no such township", DISTRICT, "210102009", "no_route"),
    ("district: no such village", DISTRICT, "210102003006", "no_route"),
    ("district: unserved department", DISTRICT, "210102009:mzj", "no_route"),
    # city 2101
    ("city: itself", CITY, CITY, Deliver(CITY)),
    ("city: own department", CITY, "2101:sfj", Deliver("2101:sfj")),
    ("city: child", CITY, DISTRICT, Child(DISTRICT)),
    ("city: child's department", CITY, "210102:scjg", Child(DISTRICT)),
    ("city: child station", CITY, "210102-2", Child("210102-2")),
    ("city: grandchild", CITY, TOWNSHIP, Child(DISTRICT)),
    ("city: great-grandchild", CITY, VILLAGE, Child(DISTRICT)),
    ("city: station district", CITY, "210104", Child("210104")),
    ("city: metro city", CITY, "2104", Peer("2104")),
    ("city: metro authority", CITY, "2104:gaj", Peer("2104")),
    ("city: metro village", CITY, "210402001001", Peer("2104")),
    ("city: unknown metro division", CITY, "210499", Peer("2104")),  # the peer decides
    ("city: non-peer city", CITY, "2102:sfj", "no_route"),
    ("city: non-peer village", CITY, "210201001001", "no_route"),
    ("city: no such district", CITY, "210199", "no_route"),
    ("city: no such district's department", CITY, "210199:sfj", "no_route"),
    ("city: suffixed city code", CITY, "2101-2", "no_route"),
    # unknown senders
    ("unknown member", "210102001009", CITY, "unknown_member"),
    ("peer member in home config", "210402001001", CITY, "unknown_member"),
]


@pytest.mark.parametrize(
    ("me", "address", "expected"), [row[1:] for row in NEXT_HOP], ids=[row[0] for row in NEXT_HOP]
)
def test_next_hop(me: str, address: str, expected: Hop | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(Unroutable) as err:
            next_hop(SY, me, address)
        assert err.value.reason == expected and err.value.fault == "remote"
        assert address in err.value.detail or me in err.value.detail
    else:
        assert next_hop(SY, me, address) == expected


# -- route: full paths ----------------------------------------------------------------------------

ROUTES: list[tuple[FederationConfig, str, str, list[Hop]]] = [
    (SY, VILLAGE, VILLAGE, [Deliver(VILLAGE)]),
    (
        SY,
        VILLAGE,
        "2101:sfj",
        [Parent(TOWNSHIP), Parent(DISTRICT), Parent(CITY), Deliver("2101:sfj")],
    ),
    (SY, VILLAGE, "210102:scjg", [Parent(TOWNSHIP), Parent(DISTRICT), Deliver("210102:scjg")]),
    (
        SY,
        VILLAGE,
        "210103001001",
        [
            Parent(TOWNSHIP),
            Parent(DISTRICT),
            Parent(CITY),
            Child("210103"),
            Child("210103001"),
            Child("210103001001"),
            Deliver("210103001001"),
        ],
    ),
    (
        SY,
        "210102001001-2",
        VILLAGE,
        [Parent(TOWNSHIP), Child(VILLAGE), Deliver(VILLAGE)],
    ),
    (
        SY,
        "210102003005",
        "210102002001",
        [Parent(DISTRICT), Child("210102002"), Child("210102002001"), Deliver("210102002001")],
    ),
    (SY, "210102-2", "210102:scjg", [Parent(CITY), Child(DISTRICT), Deliver("210102:scjg")]),
    # 都市圈通办: up to the city hub, across, then down the peer's tree
    (SY, VILLAGE, "2104:gaj", [Parent(TOWNSHIP), Parent(DISTRICT), Parent(CITY), Peer("2104")]),
    (SY, CITY, "2104:gaj", [Peer("2104")]),
    (FS, "2104", "2104:gaj", [Deliver("2104:gaj")]),
    (
        FS,
        "2104",
        "210402001001",
        [Child("210402"), Child("210402001"), Child("210402001001"), Deliver("210402001001")],
    ),
    (
        FS,
        "210402001001",
        "2101:sfj",
        [Parent("210402001"), Parent("210402"), Parent("2104"), Peer("2101")],
    ),
    (FS, "2104", VILLAGE, [Peer("2101")]),
]


@pytest.mark.parametrize(("config", "start", "address", "hops"), ROUTES)
def test_route(config: FederationConfig, start: str, address: str, hops: list[Hop]) -> None:
    assert route(config, start, address) == hops


@pytest.mark.parametrize(
    ("start", "address", "limit", "reason"),
    [
        (VILLAGE, "2101:sfj", 3, "routing_loop"),  # four hops needed
        (VILLAGE, VILLAGE, 0, "routing_loop"),
        (VILLAGE, "2102:sfj", 16, "no_route"),  # up to the city hub, then nowhere
        (VILLAGE, "210199", 16, "no_route"),
        ("210199", CITY, 16, "unknown_member"),
    ],
)
def test_route_fails(start: str, address: str, limit: int, reason: str) -> None:
    with pytest.raises(Unroutable) as err:
        route(SY, start, address, limit=limit)
    assert err.value.reason == reason


def test_cross_city_round_trip() -> None:
    """市区联办 and 都市圈通办: the application goes out and the result comes back."""
    out = route(SY, "210102002001", "2104:gaj")
    assert out[-1] == Peer("2104")
    assert route(FS, "2104", "2104:gaj") == [Deliver("2104:gaj")]
    back = route(FS, "2104", "210102002001")
    assert back == [Peer("2101")]
    assert route(SY, CITY, "210102002001")[-1] == Deliver("210102002001")


# -- competent authority (属地) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matter", "location", "expected"),
    [
        # city matters
        ("SY-SFJ-001", VILLAGE, "2101:sfj"),
        ("SY-SFJ-001", "210102001001-2", "2101:sfj"),
        ("SY-SFJ-001", "210104", "2101:sfj"),
        ("SY-SFJ-001", CITY, "2101:sfj"),
        ("SY-SFJ-001", "210402001001", "2101:sfj"),  # applicant from a metro city
        ("SY-SFJ-001", "210201001001", "2101:sfj"),  # or from anywhere else
        ("SY-JTJ-001", "210103001001", "2101:jtj"),
        # district matters: the district of the location
        ("SY-SCJG-001", VILLAGE, "210102:scjg"),
        ("SY-SCJG-001", "210102003005", "210102:scjg"),
        ("SY-SCJG-001", "210103001", "210103:scjg"),
        ("SY-SCJG-001", "210103", "210103:scjg"),
        ("SY-SCJG-001", "210102:scjg", "210102:scjg"),
        ("SY-SCJG-001", CITY, "location_too_coarse"),
        ("SY-SCJG-001", "210104001001", "no_authority"),  # 大东区 has no scjg
        ("SY-SCJG-001", "210199", "no_authority"),
        ("SY-SCJG-001", "210402001001", "out_of_area"),  # a 沈阳 district is needed
        # township matters
        ("SY-MZJ-001", "210102001002", "210102001:mzj"),
        ("SY-MZJ-001", TOWNSHIP, "210102001:mzj"),
        ("SY-MZJ-001", DISTRICT, "location_too_coarse"),
        ("SY-MZJ-001", "210103001001", "no_authority"),
        # a peer city's metro matters are decided in that city
        ("FS-GAJ-001", VILLAGE, "2104:gaj"),
        ("FS-GAJ-001", "210402001001", "2104:gaj"),
        ("FS-SCJG-001", "210402001001", "210402:scjg"),
        ("FS-SCJG-001", "210411", "no_authority"),
        ("FS-SCJG-001", VILLAGE, "out_of_area"),
        # not in our catalog, or not ours to accept
        ("FS-GAJ-002", "210402001001", "unknown_matter"),
        ("NOPE", VILLAGE, "unknown_matter"),
    ],
)
def test_competent_authority(matter: str, location: str, expected: str) -> None:
    if ":" in expected:
        assert competent_authority(FED, matter, location) == expected
        return
    with pytest.raises(RemoteProtocolError) as err:
        competent_authority(FED, matter, location)
    assert err.value.reason == expected and matter in err.value.detail


@pytest.mark.parametrize(
    ("matter", "window", "authority", "allowed"),
    [
        ("NOPE", VILLAGE, "2101:sfj", False),
        ("FS-GAJ-002", VILLAGE, "2104:gaj", False),  # peer's city-scope matter
        # metro: any window of the metro area
        ("SY-SFJ-002", "210402001001", "2101:sfj", True),
        ("SY-SFJ-002", VILLAGE, "2101:sfj", True),
        ("FS-GAJ-001", VILLAGE, "2104:gaj", True),
        # city: any window of the authority's city
        ("SY-SFJ-001", "210103001001", "2101:sfj", True),
        ("SY-SFJ-001", "210102-2", "2101:sfj", True),
        ("SY-SFJ-001", "210402001001", "2101:sfj", False),
        ("SY-SCJG-001", "210103001001", "210102:scjg", True),
        # district, district authority: windows of that district only
        ("SY-SCJG-002", VILLAGE, "210102:scjg", True),
        ("SY-SCJG-002", "210102-2", "210102:scjg", True),
        ("SY-SCJG-002", "210102003005", "210102:scjg", True),
        ("SY-SCJG-002", "210103001001", "210102:scjg", False),
        ("SY-SCJG-002", CITY, "210102:scjg", False),
        # district, township authority: windows of the township's district
        ("SY-MZJ-001", "210102002001", "210102001:mzj", True),
        ("SY-MZJ-001", "210103001001", "210102001:mzj", False),
        # district, city authority: the whole city is its district
        ("SY-SCJG-003", "210103001001", "2101:scjg", True),
        ("SY-SCJG-003", CITY, "2101:scjg", True),
        ("SY-SCJG-003", "210402001001", "2101:scjg", False),
    ],
)
def test_may_accept(matter: str, window: str, authority: str, allowed: bool) -> None:
    assert may_accept(FED, matter, window, authority) is allowed


# -- ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["2101", "210102", "210102001", "210102001001", "210102001001-2", "210102-12", "2101-999"],
)
def test_member_ids(value: str) -> None:
    assert check_member_id(value) == value
    assert check_address(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "21",
        "21010",
        "2101020",
        "2101020011",
        "2101020010011",
        "210102001001-0",
        "210102001001-1000",
        "210102001001-",
        "2101:sfj",
        "2101\n",
        " 2101",
        2101,
        None,
    ],
)
def test_bad_member_ids(value: Any) -> None:
    with pytest.raises(LocalProtocolError) as err:
        check_member_id(value, "sender")
    assert err.value.reason == "bad_member_id" and err.value.detail.startswith("sender: ")


@pytest.mark.parametrize(
    "value", ["2101:sfj", "210102:scjg_2", "210102001001-2:cw", "2101:a" + "b" * 15]
)
def test_addresses(value: str) -> None:
    assert check_address(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "2101:",
        "2101:SFJ",
        "2101:1sfj",
        "2101:sfj-x",
        "2101:a" + "b" * 16,
        "2101:sfj\n",
        "sfj",
        ":sfj",
        5,
    ],
)
def test_bad_addresses(value: Any) -> None:
    with pytest.raises(LocalProtocolError) as err:
        check_address(value)
    assert err.value.reason == "bad_address" and "is not an address" in err.value.detail


@pytest.mark.parametrize(
    ("address", "div", "member", "dept", "city"),
    [
        ("2101", "2101", "2101", None, "2101"),
        ("2101:sfj", "2101", "2101", "sfj", "2101"),
        ("210102-2", "210102", "210102-2", None, "2101"),
        ("210102001001-2:cw", "210102001001", "210102001001-2", "cw", "2101"),
        ("210402001", "210402001", "210402001", None, "2104"),
    ],
)
def test_address_parts(address: str, div: str, member: str, dept: str | None, city: str) -> None:
    assert (division(address), member_of(address), department_of(address), city_of(address)) == (
        div,
        member,
        dept,
        city,
    )


@pytest.mark.parametrize(
    ("member_id", "level"),
    [
        ("2101", "city"),
        ("210102", "district"),
        ("210102-2", "district"),
        ("210102001", "township"),
        ("210102001001", "village"),
        ("210102001001-3", "village"),
    ],
)
def test_level_of(member_id: str, level: str) -> None:
    assert level_of(member_id) == level


@pytest.mark.parametrize(
    ("address", "member_id", "inside"),
    [
        ("2101", "2101", True),
        ("2101:sfj", "2101", True),
        ("210102", "2101", True),
        ("210102:scjg", "2101", True),
        ("210102001001-2", "2101", True),
        ("210102001001", "210102001", True),
        ("210102001001-2", "210102001", True),
        ("210102001001-2", "210102001001", False),  # a station sibling
        ("210102001001", "210102001001-2", False),
        ("210102001001-2:cw", "210102001001-2", True),
        ("210102001001-3", "210102001001-2", False),
        ("2101-2", "2101", False),
        ("210103", "210102", False),
        ("2104", "2101", False),
        ("2101", "210102", False),
        ("21010", "2101", True),  # prefix only: ids are validated elsewhere
    ],
)
def test_is_within(address: str, member_id: str, inside: bool) -> None:
    assert is_within(address, member_id) is inside


def test_case_numbers() -> None:
    assert case_number("210102001001", "20261123", 7) == "210102001001-20261123-0007"
    assert case_number("210102001001-2", "20261123", 123456) == "210102001001-2-20261123-123456"
    assert case_author("210102001001-2-20261123-0007") == "210102001001-2"
    assert case_author("2101-20261123-0001") == "2101"
    assert check_case_number("210102-20261123-00001") == "210102-20261123-00001"


@pytest.mark.parametrize(
    "value",
    [
        "210102001001-20261123-007",
        "210102001001-20261123-1234567",
        "210102001001-2026112-0007",
        "21010-20261123-0007",
        "210102001001-20261123-0007\n",
        "2101:sfj-20261123-0007",
        20261123,
        None,
    ],
)
def test_bad_case_numbers(value: Any) -> None:
    with pytest.raises(LocalProtocolError, match="bad_case_number"):
        check_case_number(value)
    if isinstance(value, str):
        with pytest.raises(LocalProtocolError, match="bad_case_number"):
            case_author(value)


@pytest.mark.parametrize(
    ("author", "day", "n"),
    [("2101", "20261123", 1234567), ("21x", "20261123", 1), ("2101", "2026-11-23", 1)],
)
def test_case_number_rejects(author: str, day: str, n: int) -> None:
    with pytest.raises(LocalProtocolError, match="bad_case_number"):
        case_number(author, day, n)


# -- defects found by these tests, now fixed ----------------------------------------------------


def _config(members: list[dict[str, Any]]) -> FederationConfig:
    return FederationConfig.parse(config_dict("2101", [member("2101", None, hub=True), *members]))


def test_village_under_district_below_a_township_station() -> None:
    """A township with a window only (no hub): its villages hang under the district hub."""
    config = _config(
        [
            member("210102", "2101", hub=True),
            member("210102001", "210102"),  # a station, not a hub
            member("210102001005", "210102"),
        ]
    )
    assert route(config, "2101", "210102001005")[-1] == Deliver("210102001005")


def test_member_cannot_be_its_own_parent() -> None:
    with pytest.raises(LocalProtocolError):
        _config([member("210102", "210102", hub=True)])


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (check_member_id, "２１０１"),  # fullwidth digits look identical on a receipt
        (check_address, "２１０１:sfj"),
        (check_case_number, "210102001001-２０２６1123-0007"),
        (check_member_id, "٢١٠١"),  # Arabic-Indic digits
    ],
)
def test_ids_are_ascii_digits(check: Any, value: str) -> None:
    with pytest.raises(LocalProtocolError):
        check(value)


# -- generated federations ------------------------------------------------------------------------


def _depth(config: FederationConfig) -> int:
    """Edges on the longest path from the city hub down to a member."""

    def down(member_id: str) -> int:
        return max((1 + down(c.id) for c in config.children(member_id)), default=0)

    return down(config.federation)


def _walk(config: FederationConfig, start: str, address: str) -> tuple[list[str], Hop]:
    """Route, returning the members visited (start first) and the final hop."""
    hops = route(config, start, address)
    visited = [start] + [h.member for h in hops if isinstance(h, (Child, Parent))]
    assert len(set(visited)) == len(visited), (start, address, hops)
    return visited, hops[-1]


@settings(max_examples=60, deadline=None)
@given(fed=federations())
def test_every_member_reaches_every_authority(fed: Generated) -> None:
    for config in fed.configs():
        other = fed.other(config)
        depth = _depth(config)
        targets = [*config.authorities, config.federation]
        foreign = [] if other is None else [*other.authorities, other.federation]
        for start in config.members:
            for address in targets:
                visited, last = _walk(config, start, address)
                assert last == Deliver(address) and visited[-1] == member_of(address)
                assert len(visited) <= 2 * depth + 1
            for address in foreign:
                assert other is not None
                visited, last = _walk(config, start, address)
                assert last == Peer(other.federation) and visited[-1] == config.federation
                assert len(visited) <= depth + 1
                # the peer city's hub carries on down its own tree
                there, arrived = _walk(other, other.federation, address)
                assert arrived == Deliver(address) and there[-1] == member_of(address)
                assert len(there) <= _depth(other) + 1


@settings(max_examples=25, deadline=None)
@given(fed=federations())
def test_every_member_reaches_every_member(fed: Generated) -> None:
    """Results go back to the accepting window: member to member, suffixed stations included."""
    config = fed.home
    for start in config.members:
        for address in config.members:
            visited, last = _walk(config, start, address)
            assert last == Deliver(address) and visited[-1] == address
