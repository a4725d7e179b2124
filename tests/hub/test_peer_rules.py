"""Who may push what across the metro border (都市圈): ``hub.services.push.pusher_modes``."""

from __future__ import annotations

import pytest

from hub.services.push import pusher_modes
from protocol.errors import RemoteProtocolError
from tests.protocol.fed import CITY, FS_CITY, FS_VILLAGE, JTJ, VILLAGE, Maker, federation


def test_a_peer_relays_what_its_city_authored_into_ours() -> None:
    modes = pusher_modes(federation(), CITY, FS_CITY)
    make = Maker(f"{FS_VILLAGE}-20261102-0001")
    assert modes(make("case.submitted", FS_VILLAGE, to=(JTJ,))) == "relay"


@pytest.mark.parametrize(
    ("author", "to", "reason"),
    [
        (FS_VILLAGE, (f"{FS_CITY}:sfj",), "not_yours"),  # addressed within the peer's city
        (VILLAGE, (JTJ,), "not_your_event"),  # authored in our city, not the peer's
    ],
)
def test_a_peer_relays_nothing_else(author: str, to: tuple[str, ...], reason: str) -> None:
    modes = pusher_modes(federation(), CITY, FS_CITY)
    event = Maker(f"{author}-20261102-0001")("case.submitted", author, to=to)
    with pytest.raises(RemoteProtocolError) as caught:
        modes(event)
    assert caught.value.reason == reason


def test_a_peer_is_no_child_of_a_district_hub() -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        pusher_modes(federation(), "210102", FS_CITY)
    assert caught.value.reason == "not_a_child"
