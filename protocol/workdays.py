"""Working-day arithmetic for time limits (承诺期限, 法定期限).

Time limits run in working days (工作日). A day is a working day when it is Monday to Friday,
unless the calendar lists it as a statutory holiday (法定节假日, which also covers the weekdays
taken off around a festival), or it is a weekend day the calendar lists as a make-up working
day (调休, e.g. the Saturday before Spring Festival). The calendar is data passed in by the
caller (the federation config, built by an ops command from the ``chinese-calendar``
package); this module never reads the clock, the environment or the disk.

A calendar covers some ``years`` authoritatively. For any other year it falls back to Monday
to Friday, and every answer that relied on the fallback says so (``assumed_years``), so that
the caller can show a warning such as "calendar for 2027 unknown, counting Mon–Fri".

Counting follows Chinese practice: the day of acceptance is not counted, counting starts the
next day, and the deadline is the n-th working day counted. Days inside a :class:`Pause`
(待补办 awaiting supplement, 特别程序 suspended) are not counted.

Nothing loops over days: the number of Monday-to-Friday days up to a date has a closed form
(ordinal 1, 0001-01-01, is a Monday), the calendar only corrects it by its exceptions (found
by bisection), and a deadline is found by bisecting over dates.
"""

from __future__ import annotations

import datetime as _dt
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError

_MAX = date.max.toordinal()
_OPEN = _MAX + 2  # end ordinal of a pause that is still open: past every countable day
_FIELDS = frozenset({"years", "holidays", "workdays"})


def _is_date(value: object) -> bool:
    # A datetime is a date subclass, but a day count must not carry a time of day.
    return isinstance(value, date) and not isinstance(value, _dt.datetime)


def _weekdays_through(ordinal: int) -> int:
    """Monday-to-Friday days with ordinal in [1, ordinal]."""
    weeks, rest = divmod(ordinal, 7)
    return weeks * 5 + min(rest, 5)


@dataclass(frozen=True)
class Pause:
    """Calendar days [start, end) during which the clock stands still; end None: still paused."""

    start: date
    end: date | None = None

    def __post_init__(self) -> None:
        if not _is_date(self.start) or not (self.end is None or _is_date(self.end)):
            raise LocalProtocolError("bad_pause", "a pause runs between dates")
        if self.end is not None and self.end < self.start:
            raise LocalProtocolError("bad_pause", f"pause ends {self.end} before it starts")


@dataclass(frozen=True)
class Deadline:
    """The date of the last working day allowed (None while the clock is paused)."""

    date: _dt.date | None
    assumed_years: tuple[int, ...] = ()  # years counted Mon–Fri because the calendar lacks them


def _spans(pauses: Sequence[Pause]) -> list[tuple[int, int]]:
    """Pauses as merged, sorted half-open ordinal intervals; overlaps must not count twice."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(
        (p.start.toordinal(), _OPEN if p.end is None else p.end.toordinal()) for p in pauses
    ):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


@dataclass(frozen=True)
class Calendar:
    """Statutory holidays and make-up working days for the ``years`` it covers."""

    years: frozenset[int]
    holidays: frozenset[date]
    workdays: frozenset[date]
    _off: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _on: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("years", "holidays", "workdays"):
            if not isinstance(getattr(self, name), frozenset):
                raise LocalProtocolError("bad_calendar", f"{name} must be a frozenset")
        for year in self.years:
            if type(year) is not int or not _dt.MINYEAR <= year <= _dt.MAXYEAR:
                raise LocalProtocolError("bad_calendar", f"{str(year)[:20]!r} is not a year")
        for day in self.holidays | self.workdays:
            if not _is_date(day):
                raise LocalProtocolError("bad_calendar", f"{str(day)[:20]!r} is not a date")
            if day.year not in self.years:
                raise LocalProtocolError("bad_calendar", f"{day} is outside the years covered")
        both = self.holidays & self.workdays
        if both:
            raise LocalProtocolError("bad_calendar", f"{min(both)} is both holiday and workday")
        # Only exceptions that change the Mon–Fri answer matter for counting.
        off = sorted(d.toordinal() for d in self.holidays if d.weekday() < 5)
        on = sorted(d.toordinal() for d in self.workdays if d.weekday() >= 5)
        object.__setattr__(self, "_off", tuple(off))
        object.__setattr__(self, "_on", tuple(on))

    @classmethod
    def from_dict(cls, obj: Any) -> Calendar:
        """Decode received calendar data; any problem is a :class:`RemoteProtocolError`."""
        try:
            return cls._from_dict(obj)
        except ProtocolError as exc:
            raise RemoteProtocolError(exc.reason, exc.detail) from None

    @classmethod
    def _from_dict(cls, obj: Any) -> Calendar:
        if not isinstance(obj, dict) or set(obj) != _FIELDS:
            raise LocalProtocolError("bad_calendar", "expected exactly years, holidays, workdays")
        if not all(isinstance(obj[k], list) for k in _FIELDS):
            raise LocalProtocolError("bad_calendar", "years, holidays and workdays are lists")
        return cls(
            years=frozenset(obj["years"]),
            holidays=frozenset(_parse_day(v) for v in obj["holidays"]),
            workdays=frozenset(_parse_day(v) for v in obj["workdays"]),
        )

    def to_dict(self) -> dict[str, list[Any]]:
        """The JSON form: sorted years and sorted ISO dates."""
        return {
            "years": sorted(self.years),
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
            "workdays": [d.isoformat() for d in sorted(self.workdays)],
        }

    def knows(self, year: int) -> bool:
        """True when the calendar covers ``year`` (otherwise it counts Mon–Fri)."""
        return year in self.years

    def unknown_years(self, start: date, end: date) -> list[int]:
        """Years touched by [start, end] that the calendar does not cover."""
        return [y for y in range(start.year, end.year + 1) if y not in self.years]

    def is_workday(self, day: date) -> bool:
        """True when ``day`` is a working day (Mon–Fri for years the calendar lacks)."""
        if day in self.holidays:
            return False
        return day in self.workdays or day.weekday() < 5

    def count_workdays(self, start: date, end: date, pauses: Sequence[Pause] = ()) -> int:
        """Working days in (start, end] outside every pause; 0 when end <= start."""
        if end <= start:
            return 0
        return self._count(start.toordinal(), end.toordinal(), _spans(pauses))

    def add_workdays(self, start: date, n: int, pauses: Sequence[Pause] = ()) -> Deadline:
        """The deadline ``n`` working days after acceptance on ``start``.

        ``start`` itself is not counted; the deadline is the n-th working day after it that
        lies outside every pause, and ``n == 0`` gives ``start`` (即办 decided at once). While
        a pause is open (end None) and the n-th day is not reached before it began, no
        deadline exists yet: the result has ``date`` None.
        """
        if type(n) is not int or n < 0:
            raise LocalProtocolError("bad_workdays", f"{n!r} is not a count of working days")
        if n == 0:
            return Deadline(start)
        first, spans = start.toordinal(), _spans(pauses)
        if self._count(first, _MAX, spans) < n:
            if spans and spans[-1][1] == _OPEN:
                return Deadline(None, self._assumed(first, spans[-1][0] - 1))
            raise LocalProtocolError("deadline_out_of_range", f"{n} working days after {start}")
        lo, hi = first, _MAX  # invariant: count(lo) < n <= count(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._count(first, mid, spans) >= n:
                hi = mid
            else:
                lo = mid
        return Deadline(date.fromordinal(hi), self._assumed(first, hi))

    def _assumed(self, first: int, last: int) -> tuple[int, ...]:
        """Unknown years among the days (first, last] that were counted."""
        if last <= first:
            return ()
        return tuple(self.unknown_years(date.fromordinal(first + 1), date.fromordinal(last)))

    def _count(self, a: int, b: int, spans: Sequence[tuple[int, int]]) -> int:
        """Working days with ordinal in (a, b] outside ``spans``."""
        total = self._plain(a, b)
        for start, end in spans:
            left, right = max(a, start - 1), min(b, end - 1)
            if right > left:
                total -= self._plain(left, right)
        return total

    def _plain(self, a: int, b: int) -> int:
        """Working days with ordinal in (a, b], ignoring pauses."""
        removed = bisect_right(self._off, b) - bisect_right(self._off, a)
        added = bisect_right(self._on, b) - bisect_right(self._on, a)
        return _weekdays_through(b) - _weekdays_through(a) - removed + added


def _parse_day(value: object) -> date:
    """A canonical ISO date string (``2026-01-01``) as a date."""
    try:
        day = date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        day = None
    if day is None or day.isoformat() != value:
        raise LocalProtocolError("bad_calendar", f"{str(value)[:20]!r} is not an ISO date")
    return day
