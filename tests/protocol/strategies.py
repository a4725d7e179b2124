"""Federation configs for protocol tests: wire-form builders, a fixed demo, Hypothesis strategies.

The builders return the JSON ``config`` object (what :meth:`FederationConfig.parse` reads), so
tests can mutate one field and check the error. The fixed demo is 沈阳 (2101) with metro peer
抚顺 (2104); district codes are real, township and village codes below them are illustrative.

:func:`federations` generates random valid federations for routing properties: a city with
1-4 districts, each with 0-3 townships (hubs with villages, or plain stations), villages hung
directly under the district, ``-n`` suffixed stations, authorities at the city and district
hubs, and optionally a metro peer city with its own generated config.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

from hypothesis import strategies as st

from protocol.config import FederationConfig
from protocol.keys import KeyPair

CST = timezone(timedelta(hours=8))
ISSUED = datetime(2026, 1, 1, tzinfo=CST)
EXPIRES = datetime(2026, 12, 31, tzinfo=CST)
KEYS_FROM = datetime(2025, 1, 1, tzinfo=CST)


@cache
def key(n: int) -> KeyPair:
    """The deterministic key pair number ``n`` (seed: 32 bytes of ``n``)."""
    return KeyPair.from_seed(bytes([n]) * 32)


ROOT = key(1)  # 沈阳 root
ROOT2 = key(2)  # 沈阳 next root (rotation)
FS_ROOT = key(3)  # 抚顺 root
OTHER = key(4)  # nobody's root
VILLAGE_K1 = key(10)  # 210102001001, long-lived
VILLAGE_K2 = key(11)  # 210102001001, revoked per key
VILLAGE2_K = key(12)  # 210102001002, revoked member-wide
SEAL_1 = key(20)  # 2101:sfj
SEAL_2 = key(21)  # 2101:sfj, revoked per key
SEAL_HD = key(22)  # 210103:scjg; hub 210103 is revoked member-wide at REVOKED_AT
FS_VILLAGE_K = key(30)  # 210402001001
FS_SEAL = key(31)  # 2104:gaj

K1_UNTIL = datetime(2026, 9, 1, tzinfo=CST)
K2_FROM = datetime(2026, 3, 1, tzinfo=CST)
REVOKED_AT = datetime(2026, 6, 1, 12, 0, tzinfo=CST)


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def grant(
    pair: KeyPair, valid_from: datetime = KEYS_FROM, valid_until: datetime | None = None
) -> dict[str, Any]:
    """A key grant in wire form."""
    return {
        "alg": "ed25519",
        "public": pair.public.to_text(),
        "valid_from": iso(valid_from),
        "valid_until": iso(valid_until),
    }


def member(
    id: str,
    parent: str | None,
    *,
    hub: bool = False,
    keys: Sequence[dict[str, Any]] = (),
    endpoint: str | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "name": f"站点 {id}",
        "parent": parent,
        "roles": ["hub"] if hub else ["station"],
        "endpoint": endpoint,
        "keys": list(keys),
    }


def authority(id: str, seals: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"id": id, "name": f"部门 {id}", "seal_keys": list(seals)}


def matter(
    code: str,
    dept: str,
    level: str,
    scope: str,
    *,
    kind: str = "承诺件",
    days: int = 20,
    **extra: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "code": code,
        "name": f"事项 {code}",
        "type": "01",
        "basis": "《中华人民共和国行政许可法》",
        "authority": dept,
        "level": level,
        "kind": kind,
        "promise_days": 0 if kind == "即办件" else days,
        "legal_days": days,
        "scope": scope,
    }
    obj.update(extra)
    return obj


def peer(city: str, root: KeyPair) -> dict[str, Any]:
    return {
        "city": city,
        "name": f"城市 {city}",
        "endpoint": f"https://hub.{city}.example",
        "root_keys": [grant(root)],
    }


def config_dict(
    city: str,
    members: Iterable[dict[str, Any]],
    *,
    serial: int = 1,
    roots: Sequence[KeyPair] = (ROOT,),
    authorities: Iterable[dict[str, Any]] = (),
    catalog: Iterable[dict[str, Any]] = (),
    peers: Iterable[dict[str, Any]] = (),
    **extra: Any,
) -> dict[str, Any]:
    """The ``config`` object of a city; ``extra`` adds or overrides top-level fields."""
    obj: dict[str, Any] = {
        "federation": city,
        "name": f"城市 {city}",
        "serial": serial,
        "issued": iso(ISSUED),
        "expires": iso(EXPIRES),
        "root_keys": [grant(r) for r in roots],
        "members": list(members),
        "authorities": list(authorities),
        "catalog": list(catalog),
        "peers": list(peers),
    }
    obj.update(extra)
    return obj


def minimal_dict(city: str = "2101", **extra: Any) -> dict[str, Any]:
    """A city with only its hub."""
    return config_dict(city, [member(city, None, hub=True)], **extra)


# -- the fixed demo: 沈阳 2101 with metro peer 抚顺 2104 -----------------------------------------


def shenyang_dict(**extra: Any) -> dict[str, Any]:
    """沈阳 (2101): every tier, suffixed stations, a village directly under its district."""
    members = [
        member("2101", None, hub=True, endpoint="https://hub.2101.example"),
        member("210102", "2101", hub=True),  # 和平区
        member("210102-2", "2101"),  # a second district-level station (政务服务中心分厅)
        member("210102001", "210102", hub=True),
        member(
            "210102001001",
            "210102001",
            keys=[grant(VILLAGE_K1, KEYS_FROM, K1_UNTIL), grant(VILLAGE_K2, K2_FROM)],
        ),
        member("210102001001-2", "210102001"),
        member("210102001002", "210102001", keys=[grant(VILLAGE2_K)]),
        member("210102002", "210102", hub=True),
        member("210102002001", "210102002"),
        member("210102003005", "210102"),  # township 210102003 has no station
        member("210103", "2101", hub=True),  # 沈河区
        member("210103001", "210103", hub=True),
        member("210103001001", "210103001"),
        member("210104", "2101"),  # 大东区: a station only, no hub, no authority
    ]
    authorities = [
        authority("2101:sfj", [grant(SEAL_1), grant(SEAL_2)]),  # 沈阳市司法局
        authority("2101:scjg"),
        authority("2101:jtj"),
        authority("210102:scjg"),
        authority("210103:scjg", [grant(SEAL_HD)]),
        authority("210102001:mzj"),
    ]
    catalog = [
        matter(
            "SY-SFJ-001",
            "sfj",
            "city",
            "city",
            materials=[
                {"id": "idcard", "name": "身份证", "originals": True},
                {"id": "nocrime", "name": "无犯罪记录证明", "pledgeable": True},
                {"id": "photo", "name": "照片", "required": False, "deferrable": True},
                {"id": "degree", "name": "学历证书", "licence_type": "学历证书"},
            ],
            steps=[
                {"name": "受理审查", "role": "clerk"},
                {"name": "审核", "role": "reviewer"},
                {"name": "签发", "role": "leader"},
            ],
            result={"name": "律师执业证", "type": "证照"},
            fee="",
            theme="律师",
            conditions="通过法律职业资格考试",
            place="沈阳市政务服务中心",
        ),
        matter("SY-SFJ-002", "sfj", "city", "metro", kind="即办件", days=5),
        matter("SY-JTJ-001", "jtj", "city", "city", promise_unit="自然日", fee="50元"),
        matter("SY-SCJG-001", "scjg", "district", "city"),
        matter("SY-SCJG-002", "scjg", "district", "district"),
        matter("SY-SCJG-003", "scjg", "city", "district"),
        matter(
            "SY-MZJ-001",
            "mzj",
            "township",
            "district",
            kind="即办件",
            days=1,
            delegated_to=["village", "210103001001"],
        ),
    ]
    obj = config_dict(
        "2101",
        members,
        authorities=authorities,
        catalog=catalog,
        peers=[peer("2104", FS_ROOT)],
        grace_days=30,
        revocations=[
            {
                "member": "210102001001",
                "kid": VILLAGE_K2.kid,
                "revoked_at": iso(REVOKED_AT),
                "reason": "丢失",
            },
            {
                "member": "210102001002",
                "kid": None,
                "revoked_at": iso(REVOKED_AT),
                "reason": "撤站",
            },
            {"member": "2101", "kid": SEAL_2.kid, "revoked_at": iso(REVOKED_AT)},
            {"member": "210103", "revoked_at": iso(REVOKED_AT)},
        ],
        bundles=[
            {"code": "SY-QYKB", "name": "企业开办", "matters": ["SY-SCJG-001", "SY-SCJG-002"]}
        ],
        staff=[
            {
                "id": "s-001",
                "name": "张三",
                "member": "2101",
                "department": "sfj",
                "roles": ["reviewer"],
            },
            {
                "id": "s-002",
                "name": "李四",
                "member": "210102001001",
                "roles": ["clerk"],
                "active": False,
            },
        ],
        calendar={"years": [2026], "holidays": ["2026-10-01"], "workdays": ["2026-09-20"]},
    )
    obj.update(extra)
    return obj


def fushun_dict(**extra: Any) -> dict[str, Any]:
    """抚顺 (2104), a metro peer of 沈阳."""
    members = [
        member("2104", None, hub=True),
        member("210402", "2104", hub=True),  # 新抚区
        member("210402001", "210402", hub=True),
        member("210402001001", "210402001", keys=[grant(FS_VILLAGE_K)]),
        member("210411", "2104", hub=True),  # 顺城区
    ]
    catalog = [
        matter("FS-GAJ-001", "gaj", "city", "metro"),  # 保安员证核发
        matter("FS-GAJ-002", "gaj", "city", "city"),
        matter("FS-SCJG-001", "scjg", "district", "metro"),
        matter("SY-SFJ-001", "gaj", "city", "metro"),  # same code as a 沈阳 matter
    ]
    obj = config_dict(
        "2104",
        members,
        roots=(FS_ROOT,),
        authorities=[authority("2104:gaj", [grant(FS_SEAL)]), authority("210402:scjg")],
        catalog=catalog,
        peers=[peer("2101", ROOT)],
    )
    obj.update(extra)
    return obj


def shenyang() -> FederationConfig:
    return FederationConfig.parse(shenyang_dict())


def fushun() -> FederationConfig:
    return FederationConfig.parse(fushun_dict())


# -- generated federations -----------------------------------------------------------------------

METRO = ("2101", "2103", "2104", "2105", "2109", "2110", "2112")
DEPARTMENTS = ("sfj", "gaj", "jtj", "scjg", "mzj", "rsj")


@dataclass(frozen=True)
class Generated:
    """A generated home city and, optionally, its generated metro peer."""

    home: FederationConfig
    peer: FederationConfig | None

    def configs(self) -> list[FederationConfig]:
        return [self.home] if self.peer is None else [self.home, self.peer]

    def other(self, config: FederationConfig) -> FederationConfig | None:
        """The other city of the pair, if there is one."""
        if self.peer is None:
            return None
        return self.peer if config is self.home else self.home


def _codes(
    draw: st.DrawFn, width: int, low: int, high: int, most: int, least: int = 0
) -> list[str]:
    numbers = draw(st.lists(st.integers(low, high), min_size=least, max_size=most, unique=True))
    return [f"{n:0{width}d}" for n in sorted(numbers)]


def _suffixed(draw: st.DrawFn, base: str, parent: str) -> list[dict[str, Any]]:
    """Zero to two extra stations ``base-2``, ``base-3`` sharing ``base``'s parent."""
    count = draw(st.integers(0, 2))
    return [member(f"{base}-{n}", parent) for n in range(2, 2 + count)]


@st.composite
def city_dicts(draw: st.DrawFn, city: str, root: KeyPair) -> dict[str, Any]:
    """The ``config`` object of one generated city (without peers)."""
    members = [member(city, None, hub=True)]
    authorities = [
        authority(f"{city}:{d}")
        for d in draw(st.sets(st.sampled_from(DEPARTMENTS), min_size=1, max_size=3))
    ]
    for dd in _codes(draw, 2, 1, 20, most=4, least=1):
        district = city + dd
        members.append(member(district, city, hub=True))
        members += _suffixed(draw, district, city)
        for dept in draw(st.sets(st.sampled_from(DEPARTMENTS), max_size=2)):
            authorities.append(authority(f"{district}:{dept}"))
        for ttt in _codes(draw, 3, 1, 9, most=3):
            township = district + ttt
            is_hub = draw(st.booleans())
            members.append(member(township, district, hub=is_hub))
            members += _suffixed(draw, township, district)
            if not is_hub:
                continue  # a township with a window only: nothing hangs below it
            for vvv in _codes(draw, 3, 1, 9, most=3):
                village = township + vvv
                members.append(member(village, township))
                members += _suffixed(draw, village, township)
        # Villages hung directly under the district sit in townships (010-019) that have no
        # station of their own (see test_routing: a village under the district whose code
        # lies below an existing township member is misrouted).
        for ttt in _codes(draw, 3, 10, 19, most=2):
            village = f"{district}{ttt}{draw(st.integers(1, 9)):03d}"
            members.append(member(village, district))
            members += _suffixed(draw, village, district)
    return config_dict(city, members, roots=(root,), authorities=authorities)


@st.composite
def federations(draw: st.DrawFn) -> Generated:
    """A valid generated city and, half the time, a generated metro peer city."""
    home_city, peer_city = draw(
        st.lists(st.sampled_from(METRO), min_size=2, max_size=2, unique=True)
    )
    home = draw(city_dicts(home_city, ROOT))
    if not draw(st.booleans()):
        return Generated(FederationConfig.parse(home), None)
    other = draw(city_dicts(peer_city, FS_ROOT))
    home["peers"] = [peer(peer_city, FS_ROOT)]
    other["peers"] = [peer(home_city, ROOT)]
    return Generated(FederationConfig.parse(home), FederationConfig.parse(other))
