"""Working-day arithmetic: hand-checked 2026 deadlines, pauses, unknown years, properties."""

from __future__ import annotations

import datetime as dt
from datetime import date, timedelta
from typing import Any

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.workdays import Calendar, Deadline, Pause

D = date.fromisoformat


def _calendar_from_package(year: int) -> Calendar:
    """The year's calendar as the ops command builds it from ``chinese_calendar``."""
    holidays, workdays = set(), set()
    day = date(year, 1, 1)
    while day.year == year:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        if on_holiday and name is not None:
            holidays.add(day)
        elif not on_holiday and day.weekday() >= 5:
            workdays.add(day)
        day += timedelta(days=1)
    return Calendar(frozenset({year}), frozenset(holidays), frozenset(workdays))


CAL = _calendar_from_package(2026)
EMPTY = Calendar(frozenset(), frozenset(), frozenset())


def _naive_count(cal: Calendar, start: date, end: date, pauses: tuple[Pause, ...] = ()) -> int:
    """Reference: walk day by day."""
    total, day = 0, start + timedelta(days=1)
    while day <= end:
        paused = any(p.start <= day and (p.end is None or day < p.end) for p in pauses)
        total += cal.is_workday(day) and not paused
        day += timedelta(days=1)
    return total


# -- the 2026 schedule as the package states it ------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2026-02-14", True),  # Sat, 调休 before Spring Festival
        ("2026-02-15", False),
        ("2026-02-16", False),
        ("2026-02-23", False),  # Mon, last day of the festival
        ("2026-02-24", True),
        ("2026-02-28", True),  # Sat, 调休 after Spring Festival
        ("2026-09-20", True),  # Sun, 调休 before National Day
        ("2026-09-25", False),  # Fri, Mid-autumn
        ("2026-10-01", False),
        ("2026-10-07", False),
        ("2026-10-08", True),
        ("2026-10-10", True),  # Sat, 调休 after National Day
        ("2026-10-11", False),
    ],
)
def test_schedule_2026(day: str, working: bool) -> None:
    assert chinese_calendar.is_workday(D(day)) is working
    assert CAL.is_workday(D(day)) is working


def test_calendar_agrees_with_package_every_day_of_2026() -> None:
    day = date(2026, 1, 1)
    while day.year == 2026:
        assert CAL.is_workday(day) is chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        ("2026-02-13", 0, "2026-02-13"),  # 即办: the day of acceptance
        ("2026-02-12", 1, "2026-02-13"),
        ("2026-02-12", 2, "2026-02-14"),  # the 调休 Saturday counts
        ("2026-02-13", 1, "2026-02-14"),
        ("2026-02-13", 2, "2026-02-24"),  # Feb 15–23 off
        ("2026-02-13", 5, "2026-02-27"),
        ("2026-02-13", 6, "2026-02-28"),  # 调休 Saturday
        ("2026-02-14", 1, "2026-02-24"),
        ("2026-09-18", 1, "2026-09-20"),  # 调休 Sunday
        ("2026-09-24", 1, "2026-09-28"),  # Mid-autumn Friday off
        ("2026-09-30", 1, "2026-10-08"),  # Oct 1–7 off
        ("2026-09-30", 3, "2026-10-10"),  # 调休 Saturday
        ("2026-09-21", 10, "2026-10-12"),
        ("2026-12-31", 0, "2026-12-31"),
    ],
)
def test_deadlines_2026(start: str, n: int, expected: str) -> None:
    deadline = CAL.add_workdays(D(start), n)
    assert deadline == Deadline(D(expected), ())
    assert CAL.count_workdays(D(start), D(expected)) == n


def test_deadlines_agree_with_package() -> None:
    start = date(2026, 1, 1)
    while start < date(2026, 11, 1):
        day = start
        for n in range(1, 31):
            while True:
                day += timedelta(days=1)
                if chinese_calendar.is_workday(day):
                    break
            assert CAL.add_workdays(start, n).date == day, (start, n)
        start += timedelta(days=1)


CAL_2025 = _calendar_from_package(2025)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        # Spring Festival 2025: Jan 28 – Feb 4 off, 调休 Sunday Jan 26 and Saturday Feb 8
        ("2025-01-24", 1, "2025-01-26"),
        ("2025-01-24", 2, "2025-01-27"),
        ("2025-01-24", 3, "2025-02-05"),
        ("2025-01-24", 6, "2025-02-08"),
        ("2025-01-24", 7, "2025-02-10"),
        # National Day 2025 (with Mid-autumn): Oct 1–8 off, 调休 Sunday Sep 28 and Saturday Oct 11
        ("2025-09-26", 1, "2025-09-28"),
        ("2025-09-26", 3, "2025-09-30"),
        ("2025-09-26", 4, "2025-10-09"),
        ("2025-09-26", 6, "2025-10-11"),
        ("2025-09-26", 7, "2025-10-13"),
    ],
)
def test_festivals_of_2025_with_their_调休_days(start: str, n: int, expected: str) -> None:
    assert CAL_2025.add_workdays(D(start), n) == Deadline(D(expected))
    assert CAL_2025.count_workdays(D(start), D(expected)) == n


def test_ten_working_days_across_spring_festival_2026_count_both_调休_saturdays() -> None:
    # Feb 11, 12, 13, 14 (Sat, 调休), 24, 25, 26, 27, 28 (Sat, 调休), Mar 2
    assert CAL.add_workdays(D("2026-02-10"), 10) == Deadline(D("2026-03-02"))
    assert [d for d in (D("2026-02-14"), D("2026-02-28")) if CAL.is_workday(d)] == [
        D("2026-02-14"),
        D("2026-02-28"),
    ]


# -- pauses --------------------------------------------------------------------------------------


def test_pause_across_spring_festival_skips_only_the_working_days_inside() -> None:
    start, n = D("2026-02-10"), 10
    pause = Pause(D("2026-02-13"), D("2026-02-25"))  # 特别程序 from Feb 13, resumed Feb 25
    # Feb 13, the 调休 Saturday Feb 14 and Feb 24 are lost; the festival itself costs nothing
    assert CAL.count_workdays(D("2026-02-12"), D("2026-02-24")) == 3
    assert CAL.add_workdays(start, n, [pause]) == Deadline(D("2026-03-05"))
    assert CAL.count_workdays(start, D("2026-03-05"), [pause]) == n
    still_paused = CAL.add_workdays(start, n, [Pause(D("2026-02-13"))])
    assert still_paused == Deadline(None)


def test_pause_across_national_day_shifts_by_working_days_inside() -> None:
    start, n = D("2026-09-21"), 10
    pause = Pause(D("2026-09-28"), D("2026-10-09"))  # paused Sep 28 .. Oct 8, resumed Oct 9
    inside = CAL.count_workdays(D("2026-09-27"), D("2026-10-08"))
    assert inside == 4  # Sep 28, 29, 30 and Oct 8; Oct 1–7 are holidays anyway
    plain = CAL.add_workdays(start, n).date
    paused = CAL.add_workdays(start, n, [pause]).date
    assert plain == D("2026-10-12")
    assert paused == D("2026-10-16")
    assert plain is not None
    assert paused == CAL.add_workdays(plain, inside).date
    assert CAL.count_workdays(start, D("2026-10-16"), [pause]) == n


@pytest.mark.parametrize(
    ("pauses", "expected"),
    [
        ([], "2026-10-12"),
        ([("2026-09-22", "2026-09-22")], "2026-10-12"),  # empty pause
        ([("2026-09-01", "2026-09-22")], "2026-10-12"),  # ended before counting starts
        ([("2026-10-13", "2026-10-20")], "2026-10-12"),  # starts after the deadline
        ([("2026-10-13", None)], "2026-10-12"),  # still open, but after the deadline
        ([("2026-09-22", "2026-09-23")], "2026-10-13"),
        ([("2026-09-22", "2026-09-24"), ("2026-09-23", "2026-09-25")], "2026-10-15"),  # overlap
        ([("2026-09-23", "2026-09-25"), ("2026-09-22", "2026-09-24")], "2026-10-15"),  # unsorted
        ([("2026-09-22", "2026-09-23"), ("2026-09-23", "2026-09-24")], "2026-10-14"),  # adjacent
        ([("2026-09-22", "2026-09-24"), ("2026-09-22", "2026-09-23")], "2026-10-14"),  # inside
        ([("2026-10-12", None)], None),  # open on the deadline itself
        ([("2026-09-01", None)], None),
        ([("2026-09-22", "2026-09-23"), ("2026-09-24", None)], None),
    ],
)
def test_pause_table(pauses: list[tuple[str, str | None]], expected: str | None) -> None:
    parsed = [Pause(D(a), None if b is None else D(b)) for a, b in pauses]
    deadline = CAL.add_workdays(D("2026-09-21"), 10, parsed)
    assert deadline.date == (None if expected is None else D(expected))
    assert deadline.assumed_years == ()


def test_open_pause_reports_unknown_years_counted_before_it() -> None:
    deadline = CAL.add_workdays(D("2026-12-30"), 20, [Pause(D("2027-01-05"))])
    assert deadline == Deadline(None, (2027,))
    assert EMPTY.add_workdays(D("2026-12-30"), 5, [Pause(D("2026-12-31"))]).assumed_years == ()


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (D("2026-10-02"), D("2026-10-01")),
        (dt.datetime(2026, 10, 1, 9, 0), None),
        (D("2026-10-01"), dt.datetime(2026, 10, 2, 9, 0)),
        ("2026-10-01", None),
    ],
)
def test_bad_pause(start: Any, end: Any) -> None:
    with pytest.raises(LocalProtocolError) as err:
        Pause(start, end)
    assert err.value.reason == "bad_pause"


# -- years the calendar does not know ---------------------------------------------------------


def test_deadline_into_unknown_2027_counts_mon_to_fri() -> None:
    assert not CAL.knows(2027)
    assert CAL.knows(2026)
    deadline = CAL.add_workdays(D("2026-12-28"), 10)
    # Dec 29–31, then Fri 2027-01-01 counts (no data says it is a holiday), Jan 4–8, Jan 11.
    assert deadline == Deadline(D("2027-01-11"), (2027,))
    assert CAL.is_workday(D("2027-01-01"))
    assert CAL.unknown_years(D("2026-12-28"), D("2028-01-01")) == [2027, 2028]
    assert CAL.unknown_years(D("2026-01-01"), D("2026-12-31")) == []
    assert CAL.unknown_years(D("2027-01-01"), D("2026-01-01")) == []
    assert CAL.add_workdays(D("2026-12-28"), 3).assumed_years == ()


def test_large_n_is_fast_and_exact() -> None:
    start = D("2026-01-01")
    deadline = CAL.add_workdays(start, 365)
    assert deadline.date is not None
    assert deadline.assumed_years == (2027,)
    assert CAL.count_workdays(start, deadline.date) == 365
    far = EMPTY.add_workdays(start, 1_000_000)
    assert far.date is not None
    assert EMPTY.count_workdays(start, far.date) == 1_000_000
    assert len(far.assumed_years) == far.date.year - 2026 + 1


def test_deadline_past_the_end_of_time() -> None:
    with pytest.raises(LocalProtocolError) as err:
        CAL.add_workdays(D("2026-01-01"), 10_000_000)
    assert err.value.reason == "deadline_out_of_range"
    assert CAL.add_workdays(D("2026-01-01"), 10_000_000, [Pause(D("2030-01-01"))]).date is None


@pytest.mark.parametrize("n", [-1, True, 1.0, "3"])
def test_bad_n(n: Any) -> None:
    with pytest.raises(LocalProtocolError) as err:
        CAL.add_workdays(D("2026-01-01"), n)
    assert err.value.reason == "bad_workdays"


def test_count_empty_range() -> None:
    assert CAL.count_workdays(D("2026-10-09"), D("2026-10-09")) == 0
    assert CAL.count_workdays(D("2026-10-09"), D("2026-10-01")) == 0


# -- calendar data ------------------------------------------------------------------------------


def test_dict_round_trip() -> None:
    data = CAL.to_dict()
    assert data["years"] == [2026]
    assert data["holidays"][:2] == ["2026-01-01", "2026-01-02"]
    assert data["workdays"] == [
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    ]
    assert data["holidays"] == sorted(data["holidays"])
    assert Calendar.from_dict(data) == CAL


Y = frozenset({2026})


@pytest.mark.parametrize(
    ("years", "holidays", "workdays"),
    [
        ({2026}, frozenset(), frozenset()),  # a set, not a frozenset
        (Y, [D("2026-10-01")], frozenset()),
        (frozenset({True}), frozenset(), frozenset()),
        (frozenset({"2026"}), frozenset(), frozenset()),
        (frozenset({0}), frozenset(), frozenset()),
        (frozenset({10_000}), frozenset(), frozenset()),
        (Y, frozenset({"2026-10-01"}), frozenset()),
        (Y, frozenset(), frozenset({dt.datetime(2026, 10, 10)})),
        (Y, frozenset({D("2027-01-01")}), frozenset()),  # outside the years covered
        (Y, frozenset(), frozenset({D("2025-12-28")})),
        (Y, frozenset({D("2026-10-10")}), frozenset({D("2026-10-10")})),  # both
    ],
)
def test_bad_calendar(years: Any, holidays: Any, workdays: Any) -> None:
    with pytest.raises(LocalProtocolError) as err:
        Calendar(years, holidays, workdays)
    assert err.value.reason == "bad_calendar"


GOOD: dict[str, Any] = {"years": [2026], "holidays": ["2026-10-01"], "workdays": ["2026-10-10"]}


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"years": [2026], "holidays": []},
        {**GOOD, "extra": []},
        {**GOOD, "years": 2026},
        {**GOOD, "holidays": "2026-10-01"},
        {**GOOD, "years": ["2026"]},
        {**GOOD, "holidays": ["2026-1-1"]},
        {**GOOD, "holidays": ["20261001"]},  # ISO basic form is not canonical
        {**GOOD, "holidays": ["2026-02-30"]},
        {**GOOD, "holidays": [20261001]},
        {**GOOD, "workdays": ["2027-01-09"]},
        {**GOOD, "workdays": ["2026-10-01"]},
    ],
)
def test_from_dict_rejects(obj: Any) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        Calendar.from_dict(obj)
    assert err.value.reason == "bad_calendar"
    assert err.value.fault == "remote"


def test_from_dict_accepts_good() -> None:
    cal = Calendar.from_dict(GOOD)
    assert cal.holidays == {D("2026-10-01")}
    assert cal.to_dict() == GOOD


# -- properties --------------------------------------------------------------------------------

days = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    years = draw(st.frozensets(st.sampled_from([2025, 2026, 2027])))
    if not years:
        return EMPTY
    in_years = days.filter(lambda d: d.year in years)
    holidays = draw(st.frozensets(in_years, max_size=40))
    workdays = draw(st.frozensets(in_years, max_size=20)) - holidays
    return Calendar(years, holidays, workdays)


@st.composite
def pause_lists(draw: st.DrawFn) -> tuple[Pause, ...]:
    result = []
    for start in draw(st.lists(days, max_size=3)):
        length = draw(st.none() | st.integers(0, 60))
        result.append(Pause(start, None if length is None else start + timedelta(days=length)))
    return tuple(result)


calendars_any = st.one_of(st.just(CAL), calendars())


@settings(max_examples=300, deadline=None)
@given(calendars_any, days, st.integers(0, 400))
def test_add_and_count_are_inverse(cal: Calendar, start: date, n: int) -> None:
    deadline = cal.add_workdays(start, n)
    assert deadline.date is not None
    assert cal.count_workdays(start, deadline.date) == n
    if n:
        assert cal.is_workday(deadline.date)
        assert cal.count_workdays(start, deadline.date - timedelta(days=1)) == n - 1
    unknown = cal.unknown_years(start + timedelta(days=1), deadline.date) if n else []
    assert list(deadline.assumed_years) == unknown


@settings(max_examples=300, deadline=None)
@given(calendars_any, days, st.integers(0, 200))
def test_monotone_in_n(cal: Calendar, start: date, n: int) -> None:
    this, after = cal.add_workdays(start, n).date, cal.add_workdays(start, n + 1).date
    assert this is not None
    assert after is not None
    assert this < after


@settings(max_examples=300, deadline=None)
@given(calendars_any, days, st.integers(0, 120), pause_lists())
def test_pauses_never_make_deadline_earlier(
    cal: Calendar, start: date, n: int, pauses: tuple[Pause, ...]
) -> None:
    plain = cal.add_workdays(start, n).date
    paused = cal.add_workdays(start, n, pauses).date
    assert plain is not None
    if paused is None:
        assert n > 0
        assert any(p.end is None for p in pauses)
    else:
        assert paused >= plain
        assert cal.count_workdays(start, paused, pauses) == n
        assert _naive_count(cal, start, paused, pauses) == n


@settings(max_examples=300, deadline=None)
@given(calendars_any, days, st.integers(0, 200), pause_lists())
def test_count_matches_day_by_day(
    cal: Calendar, start: date, span: int, pauses: tuple[Pause, ...]
) -> None:
    end = start + timedelta(days=span)
    assert cal.count_workdays(start, end, pauses) == _naive_count(cal, start, end, pauses)


@given(calendars(), st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_unknown_years_are_mon_to_fri(cal: Calendar, day: date) -> None:
    if not cal.knows(day.year):
        assert cal.is_workday(day) is (day.weekday() < 5)
        assert EMPTY.is_workday(day) is (day.weekday() < 5)


@given(calendars())
def test_dict_round_trip_property(cal: Calendar) -> None:
    assert Calendar.from_dict(cal.to_dict()) == cal
