"""The window's timeline wording of the authority's after-decision acts (核查, 差评回访)."""

from __future__ import annotations

from node.services.folding import describe
from tests.hub.fed import DISTRICT, HP_MZJ, Chain, Fed


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
