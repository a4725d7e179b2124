"""Test helpers for the station: a federation config that lists the station's real key,
a settable clock, valid ID numbers, hub-signed events."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from protocol.config import FederationConfig, SignedConfig, sign_config
from protocol.event import Event
from protocol.keys import KeyPair, PublicKey
from protocol.seal import seal_result
from tests.protocol.fed import VILLAGE, key, shenyang_dict

CST = timezone(timedelta(hours=8))
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=CST)
ROOT = key("root 2101")
CITY_HUB = key("2101")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(first17: str = "21010219900101123") -> str:
    """A 居民身份证 number with a correct check character."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def config_dict(station: PublicKey, serial: int = 1, **changes: Any) -> dict[str, Any]:
    """沈阳's config (tests.protocol.fed) with the village station holding ``station``."""
    obj = shenyang_dict()
    obj["serial"] = serial
    for member in obj["members"]:
        if member["id"] == VILLAGE:
            member["keys"] = [
                {"public": station.to_text(), "valid_from": "2025-01-01T00:00:00+08:00"}
            ]
    obj.update(changes)
    return obj


def signed_config(station: PublicKey, serial: int = 1, **changes: Any) -> SignedConfig:
    return sign_config(FederationConfig.parse(config_dict(station, serial, **changes)), ROOT)


@dataclass
class Clock:
    """A settable clock (tests never sleep to let time pass)."""

    at: datetime = MONDAY

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HubSigner:
    """Signs events as the city hub 2101 (the authority 2101:sfj lives there)."""

    key: KeyPair = CITY_HUB
    author: str = "2101"
    seq: int = 0
    prev: str | None = None
    events: list[Event] = field(default_factory=list)

    def sign(
        self, type: str, case: str, body: dict[str, Any], to: list[str], ts: datetime
    ) -> Event:
        self.seq += 1
        event = Event.create(
            self.key,
            author=self.author,
            seq=self.seq,
            prev=self.prev,
            ts=ts.isoformat(timespec="seconds"),
            type=type,
            case=case,
            to=to,
            body=body,
        )
        self.prev = event.id
        self.events.append(event)
        return event

    def accept_and_approve(
        self, case: str, window: str, ts: datetime, matter: str = "SY-SFJ-KH-02"
    ) -> list[Event]:
        """受理 then 办结 (approved, with a sealed result) of an 独任 sfj matter."""
        accepted = self.sign("case.accepted", case, {"by": "sfj-shouli"}, [window], ts)
        document = seal_result(
            {
                "case": case,
                "matter": matter,
                "matter_name": f"事项 {matter}",
                "applicant": {"name": "张三", "id_masked": "2101**********1234"},
                "result_code": 0,
                "decision": "准予备案",
                "authority": "2101:sfj",
                "authority_name": "部门 2101:sfj",
                "issued": (ts + timedelta(minutes=5)).isoformat(timespec="seconds"),
            },
            key("seal 2101:sfj"),
        )
        decided = self.sign(
            "case.decided",
            case,
            {"by": "sfj-shenhe", "result_code": 0, "opinion": "同意", "result": document},
            [window],
            ts + timedelta(minutes=5),
        )
        return [accepted, decided]
