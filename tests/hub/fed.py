"""A signed federation for hub tests, and builders for events and hub data directories.

沈阳 2101 (city hub, 司法局 sfj) with districts 和平 210102 (hub; 民政局 mzj) and 沈河
210103 (hub; mzj). Villages below 和平 hang directly under the district hub; their codes are
illustrative. Every key is derived from a name (:func:`key`), so the hub data directories
built here (:func:`make_data_dir`) hold the very seal and member keys the config lists.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

from hub.config import HubSettings, init_data_dir
from protocol.case import submitted_to
from protocol.config import Federation, FederationConfig, SignedConfig, sign_config
from protocol.event import Event
from protocol.keys import KeyPair

CST = timezone(timedelta(hours=8))

CITY, DISTRICT, OTHER_DISTRICT = "2101", "210102", "210103"
VILLAGE_A, VILLAGE_B = "210102001001", "210102001002"  # illustrative
OTHER_VILLAGE = "210103001001"  # illustrative
STRANGER = "210102009009"  # illustrative: never enrolled

SFJ, HP_MZJ, SH_MZJ = "2101:sfj", "210102:mzj", "210103:mzj"
RELIEF = "SY-MZJ-JZ-02"  # 临时救助审批: district, 独任审批
ANNUAL = "SY-SFJ-KH-02"  # 律师执业年度考核结果备案: city, 独任审批
# 养老服务机构备案 (illustrative): district, 受理审查 → 审核 → 签发, 容缺 and 告知承诺 allowed
CHAIN = "SY-MZJ-YL-03"
REVIEWER, CITY_REVIEWER, CLERK = "hp-shenhe", "sfj-shenhe", "hp-clerk"
ACCEPTOR, APPROVER, OTHER_DEPT = "hp-shouli", "hp-qianfa", "hp-wjj-shenhe"
PASSWORD = "正确的密码-123"


@cache
def key(name: str) -> KeyPair:
    """The deterministic key pair of a name (members: their id; seals: ``seal <authority>``)."""
    return KeyPair.from_seed(hashlib.sha256(name.encode()).digest())


def sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def _grant(name: str, valid_from: str = "2025-01-01T00:00:00+08:00") -> dict[str, Any]:
    return {"public": key(name).public.to_text(), "valid_from": valid_from}


def member(id: str, parent: str | None, *roles: str, endpoint: str | None = None) -> dict[str, Any]:
    return {
        "id": id,
        "name": f"站点 {id}",
        "parent": parent,
        "roles": list(roles),
        "endpoint": endpoint,
        "keys": [_grant(id)],
    }


def staff(id: str, at: str, dept: str | None, *roles: str, active: bool = True) -> dict[str, Any]:
    return {
        "id": id,
        "name": f"工作人员 {id}",
        "member": at,
        "department": dept,
        "roles": list(roles),
        "active": active,
    }


def matter(
    code: str, dept: str, level: str, scope: str, promise: int, legal: int
) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"事项 {code}",
        "type": "01",
        "basis": "《中华人民共和国行政许可法》",
        "authority": dept,
        "level": level,
        "kind": "承诺件",
        "promise_days": promise,
        "legal_days": legal,
        "scope": scope,
        "materials": [{"id": "form", "name": "申请表"}, {"id": "idcard", "name": "身份证"}],
        "steps": [{"name": "审核", "role": "reviewer"}],
        "result": {"name": "批复", "type": "批文"},
    }


def chain_matter() -> dict[str, Any]:
    """A district matter with three steps by three roles, 容缺 and 告知承诺 allowed."""
    entry = matter(CHAIN, "mzj", "district", "district", 5, 15)
    entry["materials"] = [
        {"id": "form", "name": "申请表"},
        {"id": "idcard", "name": "身份证"},
        {"id": "fire", "name": "消防验收意见", "deferrable": True},
        {"id": "nocrime", "name": "无犯罪记录证明", "pledgeable": True},
    ]
    entry["steps"] = [
        {"name": "受理审查", "role": "acceptor"},
        {"name": "审核", "role": "reviewer"},
        {"name": "签发", "role": "approver"},
    ]
    return entry


@dataclass
class Fed:
    """A config of 沈阳 to sign; change fields before :meth:`signed` for other serials."""

    serial: int = 1
    issued: str = "2026-01-01T00:00:00+08:00"
    expires: str = "2035-01-01T00:00:00+08:00"
    endpoints: dict[str, str] = field(default_factory=dict)
    revocations: list[dict[str, Any]] = field(default_factory=list)
    extra_members: list[dict[str, Any]] = field(default_factory=list)
    peers: list[dict[str, Any]] = field(default_factory=list)
    #: Member id -> its key grants, replacing the default one (key rotation).
    keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def config_dict(self) -> dict[str, Any]:
        config = self._config_dict()
        for listed in config["members"]:
            if listed["id"] in self.keys:
                listed["keys"] = self.keys[listed["id"]]
        return config

    def _config_dict(self) -> dict[str, Any]:
        ep = self.endpoints.get
        return {
            "federation": CITY,
            "name": "沈阳市",
            "serial": self.serial,
            "issued": self.issued,
            "expires": self.expires,
            "root_keys": [_grant(f"root {CITY}")],
            "members": [
                member(CITY, None, "hub", endpoint=ep(CITY)),
                member(DISTRICT, CITY, "hub", "station", endpoint=ep(DISTRICT)),
                member(OTHER_DISTRICT, CITY, "hub", endpoint=ep(OTHER_DISTRICT)),
                member(VILLAGE_A, DISTRICT, "station"),
                member(VILLAGE_B, DISTRICT, "station"),
                member(OTHER_VILLAGE, OTHER_DISTRICT, "station"),
                *self.extra_members,
            ],
            "revocations": self.revocations,
            **({"peers": self.peers} if self.peers else {}),
            "authorities": [
                {"id": a, "name": f"部门 {a}", "seal_keys": [_grant(f"seal {a}")]}
                for a in (SFJ, HP_MZJ, SH_MZJ)
            ],
            "catalog": [
                matter(RELIEF, "mzj", "district", "district", 3, 5),
                matter(ANNUAL, "sfj", "city", "city", 5, 10),
                chain_matter(),
            ],
            "calendar": {"years": [2026], "holidays": ["2026-10-01"], "workdays": []},
            "staff": [
                staff(REVIEWER, DISTRICT, "mzj", "reviewer"),
                staff("hp-retired", DISTRICT, "mzj", "reviewer", active=False),
                staff(CLERK, DISTRICT, None, "clerk"),
                staff(CITY_REVIEWER, CITY, "sfj", "reviewer"),
                staff("sh-shenhe", OTHER_DISTRICT, "mzj", "reviewer"),
                staff(ACCEPTOR, DISTRICT, "mzj", "acceptor"),
                staff(APPROVER, DISTRICT, "mzj", "approver"),
                staff(OTHER_DEPT, DISTRICT, "wjj", "reviewer", "acceptor", "approver"),
            ],
        }

    def signed(self) -> SignedConfig:
        return sign_config(FederationConfig.parse(self.config_dict()), key(f"root {CITY}"))

    def signed_dict(self) -> dict[str, Any]:
        return self.signed().to_dict()

    def federation(self) -> Federation:
        return Federation(self.signed().config)


_DEPTS = {CITY: ["sfj"], DISTRICT: ["mzj"], OTHER_DISTRICT: ["mzj"]}


def make_data_dir(
    path: Path,
    hub_id: str,
    *,
    db: str | None = None,
    parent_url: str | None = None,
    fed: Fed | None = None,
) -> HubSettings:
    """A hub data directory holding the keys the test config lists."""
    settings = HubSettings(
        data=path,
        id=hub_id,
        name=f"枢纽 {hub_id}",
        parent_url=parent_url,
        db=db,
        root_keys=(key(f"root {CITY}").public.to_text(),),
    )
    seals = {d: key(f"seal {hub_id}:{d}") for d in _DEPTS.get(hub_id, [])}
    init_data_dir(settings, key(hub_id), seals, signed_config=(fed or Fed()).signed_dict())
    return settings


class Chain:
    """One author's chain of events, signed with the author's key."""

    def __init__(self, author: str, signer: KeyPair | None = None) -> None:
        self.author = author
        self.signer = signer or key(author)
        self.seq = 0
        self.head: str | None = None
        self.events: list[Event] = []

    def next(
        self,
        type: str = "note.added",
        *,
        case: str | None = None,
        to: tuple[str, ...] = (),
        body: dict[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> Event:
        event = self.make(self.seq + 1, self.head, type, case=case, to=to, body=body, ts=ts)
        self.seq, self.head = event.seq, event.id
        self.events.append(event)
        return event

    def make(
        self,
        seq: int,
        prev: str | None,
        type: str = "note.added",
        *,
        case: str | None = None,
        to: tuple[str, ...] = (),
        body: dict[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> Event:
        """An event at any position, without moving the chain (forks, wrong prevs)."""
        return Event.create(
            self.signer,
            author=self.author,
            seq=seq,
            prev=prev,
            ts=(ts or datetime.now(CST)).isoformat(timespec="seconds"),
            type=type,
            case=case,
            to=to,
            body=body or {},
        )


_CASE_N = itertools.count(1)


def applicant() -> dict[str, Any]:
    return {
        "name": "张三",
        "id_type": "111",
        "id_masked": "2101**********1234",
        "id_hash": sha("210102199001011234"),
        "phone": "13812345678",
    }


def submit(
    chain: Chain,
    matter: str = RELIEF,
    *,
    to: str = HP_MZJ,
    pickup: str | None = None,
    blobs: dict[str, list[str]] | None = None,
    materials: list[dict[str, Any]] | None = None,
    pledge: dict[str, Any] | None = None,
    ts: datetime | None = None,
) -> Event:
    """A valid ``case.submitted`` on ``chain`` (the window's next event)."""
    day = (ts or datetime.now(CST)).strftime("%Y%m%d")
    number = f"{chain.author}-{day}-{next(_CASE_N):04d}"
    blobs = blobs or {}
    body: dict[str, Any] = {
        "matter": matter,
        "applicant": applicant(),
        "location": chain.author,
        "pickup": pickup or chain.author,
        "materials": [
            {"id": m, "mode": "provided", "blobs": blobs.get(m, [sha(m)]), "name": m}
            for m in ("form", "idcard")
        ]
        + (materials or []),
    }
    if pledge is not None:
        body["pledge"] = pledge
    window, pickup = chain.author, body["pickup"]
    to_ = submitted_to(to, window, pickup)
    return chain.next("case.submitted", case=number, to=to_, body=body, ts=ts)


def wire(*events: Event) -> list[dict[str, Any]]:
    return [e.to_dict() for e in events]
