"""A readable difference between two federation configs (signed ``config`` objects or drafts).

Used by ``config diff`` and by every command that changes the draft (to show what changed,
or with ``--dry-run`` what would). Lines start with ``+`` (added), ``-`` (removed) or ``~``
(changed), grouped by section; collections are compared by their ids, so reordering is no
change, and keys are compared by key id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from protocol.encoding import canonical

#: (field, id of an item, section title) for the collections of a config.
COLLECTIONS: tuple[tuple[str, str, str], ...] = (
    ("root_keys", "kid", "根密钥 root keys"),
    ("members", "id", "成员 members"),
    ("revocations", "", "吊销 revocations"),
    ("authorities", "id", "部门 authorities"),
    ("catalog", "code", "事项 catalog"),
    ("bundles", "code", "一件事 bundles"),
    ("peers", "city", "都市圈伙伴 peers"),
    ("staff", "id", "工作人员 staff"),
)
SCALARS = ("federation", "name", "serial", "issued", "expires", "grace_days")
KEY_LISTS = frozenset({"keys", "seal_keys", "root_keys"})
LABELS = {"members": "name", "authorities": "name", "catalog": "name", "bundles": "name"}


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else canonical(value).decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kids(grants: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(g.get("kid") or g.get("public")): g for g in grants}


def _field_changes(name: str, old: Any, new: Any) -> list[str]:
    """What changed in one field of an item, as short phrases."""
    if name in KEY_LISTS and isinstance(old, list) and isinstance(new, list):
        before, after = _kids(old), _kids(new)
        out = [f"+key {k[:12]}" for k in after if k not in before]
        out += [f"-key {k[:12]}" for k in before if k not in after]
        out += [f"~key {k[:12]}" for k in after if k in before and after[k] != before[k]]
        return out
    if name in {"materials", "steps"} and isinstance(old, list) and isinstance(new, list):
        ident = "id" if name == "materials" else "name"
        before = {str(m.get(ident)): m for m in old if isinstance(m, dict)}
        after = {str(m.get(ident)): m for m in new if isinstance(m, dict)}
        out = [f"+{name[:-1]} {k}" for k in after if k not in before]
        out += [f"-{name[:-1]} {k}" for k in before if k not in after]
        out += [f"~{name[:-1]} {k}" for k in after if k in before and after[k] != before[k]]
        if not out:  # same items, new order
            out.append(f"{name} 顺序")
        return out
    return [f"{name}: {_short(old)} → {_short(new)}"]


def _item_label(field: str, item: Mapping[str, Any]) -> str:
    label = item.get(LABELS.get(field, ""), "")
    return f" {label}" if isinstance(label, str) and label else ""


def _diff_collection(field: str, ident: str, old: Sequence[Any], new: Sequence[Any]) -> list[str]:
    if not ident:  # revocations have no id of their own: compare whole entries
        old_set = {canonical(x): x for x in old}
        new_set = {canonical(x): x for x in new}
        lines = [f"+ {_short(new_set[k], 120)}" for k in new_set if k not in old_set]
        return lines + [f"- {_short(old_set[k], 120)}" for k in old_set if k not in new_set]
    before = {str(x.get(ident)): x for x in old if isinstance(x, dict)}
    after = {str(x.get(ident)): x for x in new if isinstance(x, dict)}
    lines = [f"+ {k}{_item_label(field, after[k])}" for k in after if k not in before]
    lines += [f"- {k}{_item_label(field, before[k])}" for k in before if k not in after]
    for k in after:
        if k not in before or after[k] == before[k]:
            continue
        a, b = before[k], after[k]
        changes: list[str] = []
        for name in [*a, *(n for n in b if n not in a)]:
            if a.get(name) != b.get(name):
                changes += _field_changes(name, a.get(name), b.get(name))
        lines.append(f"~ {k}{_item_label(field, b)}: {'; '.join(changes)}")
    return lines


def _diff_calendar(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for key, title in (("years", "年份"), ("holidays", "节假日"), ("workdays", "调休上班日")):
        before, after = set(old.get(key, [])), set(new.get(key, []))
        for sign, days in (("+", sorted(after - before)), ("-", sorted(before - after))):
            if days:
                lines.append(f"{sign} {title} {_dates(days)}")
    return lines


def _dates(days: Sequence[Any]) -> str:
    """A list of days, shortened when long (a whole year of holidays is one line)."""
    if len(days) <= 8:
        return ", ".join(map(str, days))
    return f"{len(days)} 天: {days[0]}, {days[1]}, … {days[-1]}"


def diff_configs(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """Readable lines describing how ``new`` differs from ``old`` (empty: no difference)."""
    base: Mapping[str, Any] = old or {}
    lines: list[str] = []
    for name in SCALARS:
        if name not in base and name in new:
            lines.append(f"+ {name}: {_short(new[name])}")
        elif name in base and name not in new:
            lines.append(f"- {name}: {_short(base[name])}")
        elif base.get(name) != new.get(name):
            lines.append(f"~ {name}: {_short(base.get(name))} → {_short(new.get(name))}")
    for field, ident, title in COLLECTIONS:
        section = _diff_collection(field, ident, base.get(field, []), new.get(field, []))
        if section:
            lines.append(f"{title}:")
            lines += [f"  {line}" for line in section]
    calendar = _diff_calendar(base.get("calendar", {}), new.get("calendar", {}))
    if calendar:
        lines.append("日历 calendar:")
        lines += [f"  {line}" for line in calendar]
    return lines
