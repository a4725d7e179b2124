"""A small signed federation for case-fold tests, and an event maker.

沈阳 2101 (city hub; 司法局 sfj, 市场监管局 scjgj, 交通局 jtj) with districts 和平 210102
(民政局 mzj) and 沈河 210103 (mzj); metro peer 抚顺 2104 with its own signed config. District
codes are real; township and village codes below them are illustrative. The calendar covers
2026 with the National Day block (9-25, 10-1..10-7 off; 9-20 and 10-10 worked).
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

from protocol.config import Federation, FederationConfig, SignedConfig, accept_config, sign_config
from protocol.event import Event
from protocol.keys import KeyPair

CST = timezone(timedelta(hours=8))

# members
CITY, HEPING, SHENHE = "2101", "210102", "210103"
TOWNSHIP = "210102001"  # illustrative
VILLAGE = "210102001001"  # illustrative
VILLAGE_2 = "210102001001-2"  # a second station in the same village
NEIGHBOUR = "210102001002"  # illustrative
SHENHE_VILLAGE = "210103001001"  # illustrative
FS_CITY, FS_DISTRICT, FS_VILLAGE = "2104", "210402", "210402001001"

# authorities
SFJ, SCJGJ, JTJ = "2101:sfj", "2101:scjgj", "2101:jtj"
HP_MZJ, SH_MZJ, FS_SFJ = "210102:mzj", "210103:mzj", "2104:sfj"

# matters
LAWYER = "SY-SFJ-LS-01"  # 律师执业申请: 承诺件, 受理审查 → 审核 → 签发, 告知承诺 allowed
ANNUAL = "SY-SFJ-KH-02"  # 律师执业年度考核结果备案: 独任审批
DIBAO = "SY-MZJ-DB-01"  # 城乡居民最低生活保障待遇证明: 即办件 delegated to villages
FOOD = "SY-SCJ-SP-01"  # 食品经营许可: 容缺 and 告知承诺 materials
RELIEF = "SY-MZJ-JZ-02"  # 临时救助审批: district scope
RIDE = "SY-JTJ-WY-01"  # 网约车驾驶员从业资格证核发: metro scope
FS_METRO = "FS-SFJ-01"  # 抚顺 matter, metro scope
FS_LOCAL = "FS-SFJ-02"  # 抚顺 matter, city scope: invisible from 沈阳

# Spring Festival (Feb 15–23), Mid-autumn and National Day 2026, with their 调休 days
HOLIDAYS_2026 = [
    *(f"2026-02-{d}" for d in range(15, 24)),
    "2026-09-25",
    *(f"2026-10-0{d}" for d in range(1, 8)),
]
WORKDAYS_2026 = ["2026-02-14", "2026-02-28", "2026-09-20", "2026-10-10"]


@cache
def key(name: str) -> KeyPair:
    """The deterministic key pair of a name."""
    return KeyPair.from_seed(hashlib.sha256(name.encode()).digest())


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _grant(name: str) -> dict[str, Any]:
    return {"public": key(name).public.to_text(), "valid_from": "2025-01-01T00:00:00+08:00"}


def _member(id: str, parent: str | None, *roles: str) -> dict[str, Any]:
    return {
        "id": id,
        "name": f"站点 {id}",
        "parent": parent,
        "roles": list(roles),
        "keys": [_grant(id)],
    }


def _authority(id: str) -> dict[str, Any]:
    return {"id": id, "name": f"部门 {id}", "seal_keys": [_grant(f"seal {id}")]}


def _staff(
    id: str, member: str, dept: str | None, *roles: str, active: bool = True
) -> dict[str, Any]:
    return {
        "id": id,
        "name": f"工作人员 {id}",
        "member": member,
        "department": dept,
        "roles": list(roles),
        "active": active,
    }


def _matter(
    code: str, dept: str, level: str, scope: str, promise: int, legal: int, **extra: Any
) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"事项 {code}",
        "type": "01",
        "basis": "《中华人民共和国行政许可法》",
        "authority": dept,
        "level": level,
        "kind": "即办件" if promise == 0 else "承诺件",
        "promise_days": promise,
        "legal_days": legal,
        "scope": scope,
        "materials": [{"id": "form", "name": "申请表"}],
        **extra,
    }


ONE_STEP = [{"name": "审核", "role": "reviewer"}]
THREE_STEPS = [
    {"name": "受理审查", "role": "acceptor"},
    {"name": "审核", "role": "reviewer"},
    {"name": "签发", "role": "signer"},
]


def _config(city: str, **fields: Any) -> dict[str, Any]:
    return {
        "federation": city,
        "name": f"城市 {city}",
        "serial": 1,
        "issued": "2026-01-01T00:00:00+08:00",
        "expires": "2027-01-01T00:00:00+08:00",
        "root_keys": [_grant(f"root {city}")],
        "calendar": {"years": [2026], "holidays": HOLIDAYS_2026, "workdays": WORKDAYS_2026},
        **fields,
    }


def shenyang_dict() -> dict[str, Any]:
    """The ``config`` object of 沈阳 (2101)."""
    return _config(
        CITY,
        members=[
            _member(CITY, None, "hub"),
            _member(HEPING, CITY, "hub", "station"),  # district hall has windows
            _member(TOWNSHIP, HEPING, "hub", "station"),
            _member(VILLAGE, TOWNSHIP, "station"),
            _member(VILLAGE_2, TOWNSHIP, "station"),
            _member(NEIGHBOUR, TOWNSHIP, "station"),
            _member(SHENHE, CITY, "hub"),
            _member(SHENHE_VILLAGE, SHENHE, "station"),
        ],
        authorities=[_authority(a) for a in (SFJ, SCJGJ, JTJ, HP_MZJ, SH_MZJ)],
        catalog=[
            _matter(
                LAWYER,
                "sfj",
                "city",
                "city",
                10,
                20,
                materials=[
                    {"id": "form", "name": "申请表"},
                    {"id": "idcard", "name": "身份证", "originals": True},
                    {"id": "nocrime", "name": "无犯罪记录证明", "pledgeable": True},
                    {"id": "photo", "name": "照片", "required": False},
                ],
                steps=THREE_STEPS,
            ),
            _matter(ANNUAL, "sfj", "city", "city", 5, 10, steps=ONE_STEP),
            _matter(DIBAO, "mzj", "district", "district", 0, 0, delegated_to=["village"]),
            _matter(
                FOOD,
                "scjgj",
                "city",
                "city",
                10,
                20,
                materials=[
                    {"id": "form", "name": "申请表"},
                    {"id": "health", "name": "健康证明", "deferrable": True},
                    {"id": "premises", "name": "经营场所证明", "pledgeable": True},
                ],
                steps=ONE_STEP,
            ),
            _matter(RELIEF, "mzj", "district", "district", 3, 5, steps=ONE_STEP),
            _matter(RIDE, "jtj", "city", "metro", 5, 20, steps=ONE_STEP),
        ],
        peers=[
            {
                "city": FS_CITY,
                "name": "抚顺市",
                "endpoint": "https://hub.2104.example",
                "root_keys": [_grant(f"root {FS_CITY}")],
            }
        ],
        staff=[
            _staff("sfj-shouli", CITY, "sfj", "acceptor"),
            _staff("sfj-shenhe", CITY, "sfj", "reviewer"),
            _staff("sfj-qianfa", CITY, "sfj", "signer"),
            _staff("sfj-retired", CITY, "sfj", "acceptor", "reviewer", "signer", active=False),
            _staff("scj-shenhe", CITY, "scjgj", "reviewer"),
            _staff("jtj-shenhe", CITY, "jtj", "reviewer"),
            _staff("hp-mzj", HEPING, "mzj", "reviewer"),
            _staff("sh-mzj", SHENHE, "mzj", "reviewer"),
            _staff("v-clerk", VILLAGE, None, "clerk"),
            _staff("n-clerk", NEIGHBOUR, None, "clerk"),
        ],
    )


def fushun_dict() -> dict[str, Any]:
    """The ``config`` object of 抚顺 (2104), a metro peer."""
    return _config(
        FS_CITY,
        members=[
            _member(FS_CITY, None, "hub"),
            _member(FS_DISTRICT, FS_CITY, "hub"),
            _member(FS_VILLAGE, FS_DISTRICT, "station"),
        ],
        authorities=[_authority(FS_SFJ)],
        catalog=[
            _matter(FS_METRO, "sfj", "city", "metro", 5, 10, steps=ONE_STEP),
            _matter(FS_LOCAL, "sfj", "city", "city", 5, 10, steps=ONE_STEP),
        ],
        peers=[
            {
                "city": CITY,
                "name": "沈阳市",
                "endpoint": "https://hub.2101.example",
                "root_keys": [_grant(f"root {CITY}")],
            }
        ],
        staff=[_staff("fs-sfj", FS_CITY, "sfj", "reviewer")],
    )


def _signed(obj: dict[str, Any], city: str) -> SignedConfig:
    signed = sign_config(FederationConfig.parse(obj), key(f"root {city}"))
    return accept_config(None, signed, [key(f"root {city}").public])


@cache
def federation() -> Federation:
    """沈阳's view: its own signed config plus 抚顺's, both verified against their root keys."""
    home = _signed(shenyang_dict(), CITY).config
    return Federation(home, {FS_CITY: _signed(fushun_dict(), FS_CITY).config})


# -- events ------------------------------------------------------------------------------

_SEQ = itertools.count(2)
_PREV = "0" * 64
NUMBER = f"{VILLAGE}-20261102-0001"
SAME = "<this case>"
START = datetime(2026, 11, 2, 9, 0, tzinfo=CST)  # Monday


class Maker:
    """Builds events of one case; each has a fresh seq so no two ids collide.

    ``ts`` defaults to one minute after the previous event; a bare date means 09:00 that day.
    """

    def __init__(self, number: str = NUMBER, start: datetime = START) -> None:
        self.number = number
        self.now = start

    def __call__(
        self,
        type: str,
        author: str,
        body: dict[str, Any] | None = None,
        *,
        ts: str | None = None,
        to: tuple[str, ...] = (),
        case: str | None = SAME,
    ) -> Event:
        if ts is None:
            self.now += timedelta(minutes=1)
        elif len(ts) == 10:
            self.now = datetime.fromisoformat(ts).replace(hour=9, tzinfo=CST)
        else:
            self.now = datetime.fromisoformat(ts)
        return Event.create(
            key(author),
            author=author,
            seq=next(_SEQ),
            prev=_PREV,
            ts=self.now.isoformat(),
            type=type,
            case=self.number if case == SAME else case,
            to=to,
            body={} if body is None else body,
        )


def applicant() -> dict[str, Any]:
    return {
        "name": "张三",
        "id_type": "111",
        "id_masked": "2101**********1234",
        "id_hash": sha("210102199001011234"),
    }


def provided(*ids: str) -> list[dict[str, Any]]:
    return [{"id": i, "mode": "provided", "blobs": [sha(i)], "name": i} for i in ids]


def submission(matter: str, location: str = VILLAGE, **extra: Any) -> dict[str, Any]:
    """A valid ``case.submitted`` body for a matter whose materials are all provided."""
    found = federation().matter(matter)
    assert found is not None
    spec = found[1]
    body: dict[str, Any] = {
        "matter": matter,
        "applicant": applicant(),
        "location": location,
        "materials": provided(*(m.id for m in spec.materials if m.required)),
    }
    body.update(extra)
    return body
