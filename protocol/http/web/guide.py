"""办事指南 (the 五统一 guide) as plain data for the public pages of nodes and hubs.

Built only from the cached, signed federation config: a station shows the guide offline.
"""

from __future__ import annotations

from typing import Any, Final

from protocol.config import Federation, FederationConfig, Matter

SCOPE_TEXT: Final = {
    "district": "仅限审批部门所在区县的窗口办理",
    "city": "全市各综合窗口均可办理（市区通办）",
    "metro": "沈阳都市圈各城市的综合窗口均可办理（都市圈通办）",
}
LEVEL_TEXT: Final = {"city": "市级", "district": "区县级", "township": "乡镇（街道）级"}
LEVELS: Final = ("city", "district", "township")


def _configs(federation: Federation) -> list[FederationConfig]:
    return [federation.home, *federation.peers.values()]


def _visible(federation: Federation) -> list[tuple[FederationConfig, Matter]]:
    """Own catalog, plus peers' matters that may be applied for here (scope metro)."""
    out = [(federation.home, m) for m in federation.home.catalog.values()]
    for config in federation.peers.values():
        out.extend((config, m) for m in config.catalog.values() if m.scope == "metro")
    return out


def catalog(federation: Federation, query: str = "", level: str = "") -> dict[str, Any]:
    """The catalog grouped by theme (主题), filtered by a search text and a level."""
    query = query.strip()[:50]
    themes: dict[str, list[dict[str, Any]]] = {}
    for config, matter in _visible(federation):
        if level and matter.level != level:
            continue
        if query and query not in matter.name and query not in matter.code:
            continue
        themes.setdefault(matter.theme or "其他", []).append(
            {
                "code": matter.code,
                "name": matter.name,
                "city": config.name,
                "peer": config is not federation.home,
                "level": LEVEL_TEXT.get(matter.level, matter.level),
                "kind": matter.kind,
                "promise": _promise(matter),
            }
        )
    groups: list[dict[str, Any]] = [
        {"theme": theme, "matters": sorted(items, key=lambda m: m["name"])}
        for theme, items in sorted(themes.items())
    ]
    return {
        "groups": groups,
        "count": sum(len(items) for items in themes.values()),
        "query": query,
        "level": level if level in LEVELS else "",
        "levels": [{"key": k, "label": LEVEL_TEXT[k]} for k in LEVELS],
    }


def _promise(matter: Matter) -> str:
    if matter.kind == "即办件" or matter.promise_days == 0:
        return "即办（当场办结）"
    return f"{matter.promise_days} 个{matter.promise_unit}"


def _authority_name(config: FederationConfig, matter: Matter) -> str:
    names = sorted(
        {a.name for a in config.authorities.values() if a.id.split(":")[-1] == matter.authority}
    )
    level = LEVEL_TEXT.get(matter.level, matter.level)
    if len(names) == 1:
        return names[0]
    example = f"，如{names[0]}" if names else ""
    return f"申请人属地的{level}主管部门（{matter.authority}{example}）"


def _delegation(config: FederationConfig, matter: Matter) -> str:
    if not matter.delegated_to:
        return ""
    parts = []
    for target in matter.delegated_to:
        if target in LEVEL_TEXT:
            parts.append(f"{LEVEL_TEXT[target]}窗口")
        else:
            member = config.members.get(target)
            parts.append(member.name if member is not None else target)
    return "、".join(parts)


def matter_guide(federation: Federation, code: str) -> dict[str, Any] | None:
    """One matter's 五统一 and the rest of its guide, or None if it is not in the catalog."""
    found = federation.matter(code)
    if found is None:
        return None
    config, matter = found
    return {
        "code": matter.code,
        "name": matter.name,
        "city": config.name,
        "theme": matter.theme or "其他",
        "basis": matter.basis,
        "conditions": matter.conditions,
        "kind": matter.kind,
        "level": LEVEL_TEXT.get(matter.level, matter.level),
        "steps": [{"name": s.name, "role": s.role} for s in matter.steps],
        "materials": [
            {
                "name": m.name,
                "required": m.required,
                "originals": m.originals,
                "deferrable": m.deferrable,
                "pledgeable": m.pledgeable,
            }
            for m in matter.materials
        ],
        "promise": _promise(matter),
        "legal": f"{matter.legal_days} 个{matter.promise_unit}",
        "fee": matter.fee or "不收费",
        "scope": SCOPE_TEXT.get(matter.scope, matter.scope),
        "authority": _authority_name(config, matter),
        "place": matter.place,
        "delegated": _delegation(config, matter),
        "result": matter.result_name,
    }
