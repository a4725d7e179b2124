"""Identifiers: member ids (division codes), authority addresses, case numbers.

* member id: an administrative-division code, city ``2101`` (4 digits), district ``210102``
  (6), township ``210102001`` (9), village ``210102001001`` (12), with an optional ``-n``
  suffix where one division has several stations (``210102001001-2``);
* authority address: ``<hub member id>:<department>``, e.g. ``2101:sfj`` (沈阳市司法局 at the
  city hub);
* case number (办件编号): ``<author>-<yyyymmdd>-<nnnn>``, unique without coordination because
  the author numbers its own cases.
"""

from __future__ import annotations

import re
from typing import Literal

from .errors import LocalProtocolError

Level = Literal["city", "district", "township", "village"]

_MEMBER = r"[0-9]{4}(?:[0-9]{2}(?:[0-9]{3}(?:[0-9]{3})?)?)?(?:-[1-9][0-9]{0,2})?"
_DEPT = r"[a-z][a-z0-9_]{0,15}"
MEMBER_RE = re.compile(rf"^{_MEMBER}\Z")
ADDRESS_RE = re.compile(rf"^{_MEMBER}(?::{_DEPT})?\Z")
CASE_RE = re.compile(rf"^({_MEMBER})-([0-9]{{8}})-([0-9]{{4,6}})\Z")
DEPT_RE = re.compile(rf"^{_DEPT}\Z")

_LEVELS: dict[int, Level] = {4: "city", 6: "district", 9: "township", 12: "village"}
LEVEL_ORDER: tuple[Level, ...] = ("city", "district", "township", "village")


def check_member_id(value: object, where: str = "member id") -> str:
    """Return ``value`` if it is a member id, else raise ``bad_member_id``."""
    if not isinstance(value, str) or not MEMBER_RE.match(value):
        raise LocalProtocolError(
            "bad_member_id", f"{where}: {str(value)[:40]!r} is not a member id"
        )
    return value


def check_address(value: object, where: str = "address") -> str:
    """Return ``value`` if it is a member id or an authority address."""
    if not isinstance(value, str) or not ADDRESS_RE.match(value):
        raise LocalProtocolError("bad_address", f"{where}: {str(value)[:40]!r} is not an address")
    return value


def division(address: str) -> str:
    """The bare division code of a member id or address (no station suffix, no department)."""
    return address.split(":", 1)[0].split("-", 1)[0]


def member_of(address: str) -> str:
    """The member part of an address: ``2101:sfj`` -> ``2101``."""
    return address.split(":", 1)[0]


def department_of(address: str) -> str | None:
    """The department part of an authority address, or None for a bare member id."""
    parts = address.split(":", 1)
    return parts[1] if len(parts) == 2 else None


def level_of(member_id: str) -> Level:
    """Level of a member id by the length of its division code."""
    return _LEVELS[len(division(member_id))]


def city_of(address: str) -> str:
    """The 4-digit city code an address belongs to."""
    return division(address)[:4]


def is_within(address: str, member_id: str) -> bool:
    """True when ``address`` lies in the subtree rooted at ``member_id``.

    The subtree of a member is itself, its departments and every division below its own code.
    Stations sharing one division (``…001`` and ``…001-2``) are siblings, not parent and child,
    and a suffixed station has no subtree beyond itself.
    """
    if member_of(address) == member_id:
        return True
    if "-" in member_id:
        return False
    div = division(address)
    return div != member_id and div.startswith(member_id)


def case_number(author: str, day: str, n: int) -> str:
    """Compose a case number; ``day`` is ``yyyymmdd``."""
    number = f"{author}-{day}-{n:04d}"
    check_case_number(number)
    return number


def check_case_number(value: object) -> str:
    """Return ``value`` if it is a case number, else raise ``bad_case_number``."""
    if not isinstance(value, str) or not CASE_RE.match(value):
        raise LocalProtocolError("bad_case_number", f"{str(value)[:60]!r} is not a case number")
    return value


def case_author(number: str) -> str:
    """The member that opened a case (the accepting window)."""
    match = CASE_RE.match(number)
    if match is None:
        raise LocalProtocolError("bad_case_number", f"{number[:60]!r} is not a case number")
    return match.group(1)
