"""The window's timeline wording of the authority's after-decision acts (核查, 差评回访) and
of 送达回执 from the authority and from another window."""

from __future__ import annotations

from node.services.folding import describe
from tests.hub.fed import DISTRICT, HP_MZJ, VILLAGE_A, VILLAGE_B, Chain, Fed


def test_verification_and_follow_up_read_in_chinese() -> None:
    hub = Chain(DISTRICT)
    number = "210102001001-20261123-0001"
    federation = Fed().federation()
    verified = hub.next("case.verified", case=number, body={"outcome": "false", "note": "不实"})
    assert describe(verified, federation, HP_MZJ) == "告知承诺核查：承诺不实"
    confirmed = hub.next("case.verified", case=number, body={"outcome": "confirmed", "note": "x"})
    assert describe(confirmed, federation, HP_MZJ) == "告知承诺核查：承诺属实"
    followed = hub.next("case.followed_up", case=number, body={"note": "已回访致歉"})
    assert describe(followed, federation, HP_MZJ) == "差评回访：已回访致歉"


def test_receipts_say_who_holds_the_event() -> None:
    number = "210102001001-20261123-0001"
    federation = Fed().federation()
    held = {"event": "a" * 64}
    by_hub = Chain(DISTRICT).next("case.received", case=number, to=(VILLAGE_A,), body=held)
    assert (
        describe(by_hub, federation, HP_MZJ) == "已送达审批部门（部门 210102:mzj已签收申请及材料）"
    )
    by_pickup = Chain(VILLAGE_B).next("case.received", case=number, to=(VILLAGE_A,), body=held)
    assert describe(by_pickup, federation, HP_MZJ) == "已送达站点 210102001002（已签收）"
