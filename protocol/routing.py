"""Routing by division-code prefix (DESIGN.md §5), and the competent authority of a matter.

Every hop decides with the header alone (``to``), never the body, so a body encrypted to the
receiving authority still routes. From member ``me`` an address is

* mine (my id, or one of my departments) -> :class:`Deliver`;
* below me -> the :class:`Child` on the way down (by the member's parent chain in the config;
  for an address the config does not name, the child whose code is its longest prefix);
* outside my subtree, in my city -> :class:`Parent` (a city hub has none: ``Unroutable``);
* in another city -> :class:`Parent` up to the city hub, which sends it to the metro
  :class:`Peer` (only a peer listed in the config; anything else is ``Unroutable``).

Routes are found over the config tree, so a loop would need a cycle of parents, which the
config forbids (every parent's code is a strict prefix of its child's).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Federation, FederationConfig, Matter
from .errors import RemoteProtocolError
from .ids import city_of, division, is_within, level_of, member_of


@dataclass(frozen=True)
class Deliver:
    """The address is this member or one of its departments."""

    address: str


@dataclass(frozen=True)
class Child:
    """Put the event into this child's feed."""

    member: str


@dataclass(frozen=True)
class Parent:
    """Push the event up to this member's parent."""

    member: str


@dataclass(frozen=True)
class Peer:
    """Push the event across to this metro peer city's hub."""

    city: str


Hop = Deliver | Child | Parent | Peer


class Unroutable(RemoteProtocolError):
    """No route exists from this member to the address."""


def next_hop(config: FederationConfig, me: str, address: str) -> Hop:
    """The next hop from member ``me`` of ``config`` towards ``address``."""
    member = config.members.get(me)
    if member is None:
        raise Unroutable("unknown_member", f"{me} is not a member of {config.federation}")
    if member_of(address) == me:
        return Deliver(address)
    target = config.members.get(member_of(address))
    if target is not None:
        # A known member: follow its parent chain, which the config fixes (a village may
        # hang under its district even where its township has a station of its own).
        below = target.id
        while (parent := config.members[below].parent) is not None:
            if parent == me:
                return Child(below)
            below = parent
    elif is_within(address, me):
        # An address no config names (yet): the child with the longest matching code.
        holders = [c for c in config.children(me) if is_within(address, c.id)]
        if holders:
            return Child(max(holders, key=lambda c: len(c.id)).id)
        raise Unroutable("no_route", f"no member under {me} serves {address}")
    if member.parent is not None:
        return Parent(member.parent)
    city = city_of(address)
    if city != config.federation and city in config.peers:
        return Peer(city)
    raise Unroutable("no_route", f"{address} is outside {config.federation} and its metro peers")


def route(config: FederationConfig, start: str, address: str, *, limit: int = 16) -> list[Hop]:
    """Every hop from ``start`` to ``address`` within one city (ends in Deliver or Peer)."""
    hops: list[Hop] = []
    here = start
    for _ in range(limit):
        hop = next_hop(config, here, address)
        hops.append(hop)
        if isinstance(hop, (Deliver, Peer)):
            return hops
        here = hop.member
    raise Unroutable("routing_loop", f"no delivery of {address} from {start} in {limit} hops")


def competent_authority(federation: Federation, matter_code: str, location: str) -> str:
    """Which authority decides ``matter_code`` for an applicant located in division ``location``.

    The authority sits at the matter's level above the applicant's location (属地): a city
    matter goes to ``<city>:<dept>``, a district matter to ``<district>:<dept>``. A matter
    of another metro city is decided in that city, whatever the applicant's location.
    """
    found = federation.matter(matter_code)
    if found is None:
        raise RemoteProtocolError("unknown_matter", f"matter {matter_code} is not in the catalog")
    config, matter = found
    div = division(location)
    if city_of(div) != config.federation:
        # 都市圈通办: the applicant lives in another city. Only a city-level matter has an
        # authority there that does not depend on where in that city they live.
        if matter.level != "city":
            raise RemoteProtocolError(
                "out_of_area",
                f"matter {matter.code} is decided by a {matter.level} of {config.federation}; "
                f"the applicant's location {div} is outside it",
            )
        div = config.federation
    return _authority_for(config, matter, div)


def _authority_for(config: FederationConfig, matter: Matter, div: str) -> str:
    width = {"city": 4, "district": 6, "township": 9}[matter.level]
    if len(div) < width:
        raise RemoteProtocolError(
            "location_too_coarse",
            f"matter {matter.code} needs a {matter.level} location, got {div}",
        )
    authority = f"{div[:width]}:{matter.authority}"
    if authority not in config.authorities:
        raise RemoteProtocolError(
            "no_authority", f"no authority {authority} for matter {matter.code}"
        )
    return authority


def may_accept(federation: Federation, matter_code: str, window: str, authority: str) -> bool:
    """Whether the catalog's ``scope`` lets ``window`` accept a matter decided by ``authority``.

    district: only windows in the authority's district; city: any window of its city;
    metro: any window of any city in the metro area that knows the matter.
    """
    found = federation.matter(matter_code)
    if found is None:
        return False
    matter = found[1]
    if matter.scope == "metro":
        return True
    if matter.scope == "city":
        return city_of(window) == city_of(authority)
    region = (
        division(authority)[:6] if level_of(member_of(authority)) != "city" else division(authority)
    )
    return division(window).startswith(region)
