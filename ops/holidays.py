"""Where the working-day calendar comes from: the ``chinese-calendar`` package or a file.

Each year the State Council (国务院办公厅) publishes the holiday arrangement (放假安排) for the
next year, usually in November or December; ``chinese-calendar`` ships it in a release soon
after. For a year the installed package does not know yet, the operator types the published
arrangement into a small YAML file::

    year: 2027
    holidays: [2027-01-01, 2027-02-06, ...]   # statutory days off, weekends inside a block too
    workdays: [2027-02-14, ...]               # 调休: weekend days that are working days
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from importlib.metadata import PackageNotFoundError, version

import chinese_calendar
import yaml


class CalendarSourceError(Exception):
    """The requested year or file cannot give a calendar (message for the operator)."""


@dataclass(frozen=True)
class YearCalendar:
    """One year's statutory holidays and make-up working days."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    source: str


def package_version() -> str:
    try:
        return version("chinese_calendar")
    except PackageNotFoundError:  # pragma: no cover - installed with tongban
        return "?"


def known_years() -> list[int]:
    """Years the installed ``chinese-calendar`` has an official arrangement for."""
    return sorted(
        {d.year for d in chinese_calendar.holidays} | {d.year for d in chinese_calendar.workdays}
    )


def from_package(year: int) -> YearCalendar:
    """The arrangement of ``year`` from ``chinese-calendar`` (error when it lacks the year)."""
    years = known_years()
    if year not in years:
        raise CalendarSourceError(
            f"chinese-calendar {package_version()} 没有 {year} 年的放假安排"
            f" (只有 {years[0]}–{years[-1]} 年): 请按国务院办公厅公布的安排写一个文件,"
            f" 用 `calendar set --year {year} --file holidays.yaml` 导入"
            " (格式见 ops/examples/holidays-2027.yaml)"
        )
    return YearCalendar(
        year,
        frozenset(d for d in chinese_calendar.holidays if d.year == year),
        frozenset(d for d in chinese_calendar.workdays if d.year == year),
        f"chinese-calendar {package_version()}",
    )


def _days(value: object, key: str, name: str) -> frozenset[date]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise CalendarSourceError(f"{name}: {key} 应为日期列表")
    out = set()
    for item in value:
        if isinstance(item, date):
            out.add(item)
            continue
        try:
            out.add(date.fromisoformat(str(item)))
        except ValueError:
            raise CalendarSourceError(
                f"{name}: {key} 中的 {item!r} 不是日期 (YYYY-MM-DD)"
            ) from None
    return frozenset(out)


def from_file(text: str, year: int, name: str) -> YearCalendar:
    """One year read from a holidays file (see the module docstring)."""
    try:
        obj = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CalendarSourceError(f"{name}: 不是有效的 YAML: {exc}") from None
    if not isinstance(obj, dict):
        raise CalendarSourceError(f"{name}: 应包含 holidays: 和 workdays: 两个列表")
    unknown = set(obj) - {"year", "holidays", "workdays"}
    if unknown:
        raise CalendarSourceError(f"{name}: 未知字段 {', '.join(sorted(map(str, unknown)))}")
    if "year" in obj and obj["year"] != year:
        raise CalendarSourceError(f"{name} 写的是 {obj['year']} 年, 命令给的是 --year {year}")
    if "holidays" not in obj:
        raise CalendarSourceError(f"{name}: 缺少 holidays: (法定节假日列表)")
    holidays = _days(obj.get("holidays"), "holidays", name)
    workdays = _days(obj.get("workdays"), "workdays", name)
    for day in sorted(holidays | workdays):
        if day.year != year:
            raise CalendarSourceError(f"{name}: {day} 不在 {year} 年内")
    for day in sorted(workdays):
        if day.weekday() < 5:
            raise CalendarSourceError(f"{name}: 调休上班日 {day} 本来就是工作日 (周一至周五)")
    both = holidays & workdays
    if both:
        raise CalendarSourceError(f"{name}: {min(both)} 既是节假日又是上班日")
    return YearCalendar(year, holidays, workdays, name)
