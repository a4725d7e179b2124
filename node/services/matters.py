"""事项: the matters this window may accept, from the cached catalog."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from protocol.config import Federation, Matter
from protocol.errors import ProtocolError
from protocol.ids import division
from protocol.routing import competent_authority, may_accept

from .context import NodeContext
from .errors import ServiceError
from .folding import member_name
from .messages import LEVEL_LABELS, SCOPE_LABELS


def _visible(federation: Federation) -> Iterator[Matter]:
    """Own catalog, then metro matters of peer cities (as Federation.matter sees them)."""
    yield from federation.home.catalog.values()
    for config in federation.peers.values():
        yield from (m for m in config.catalog.values() if m.scope == "metro")


def authority_here(federation: Federation, matter: Matter, window: str) -> str | None:
    """The competent authority for an applicant at the window's own location, if this
    window may accept the matter for them; else None."""
    try:
        authority = competent_authority(federation, matter.code, division(window))
    except ProtocolError:
        return None
    return authority if may_accept(federation, matter.code, window, authority) else None


def matter_summary(federation: Federation, matter: Matter, authority: str) -> dict[str, Any]:
    """What a pick list shows of a matter."""
    return {
        "code": matter.code,
        "name": matter.name,
        "kind": matter.kind,
        "type": matter.type,
        "promise_days": matter.promise_days,
        "promise_unit": matter.promise_unit,
        "level": matter.level,
        "level_label": LEVEL_LABELS.get(matter.level, matter.level),
        "scope": matter.scope,
        "scope_label": SCOPE_LABELS.get(matter.scope, matter.scope),
        "authority": {"id": authority, "name": member_name(federation, authority)},
        "fee": matter.fee,
    }


def matter_detail_dict(federation: Federation, matter: Matter, authority: str) -> dict[str, Any]:
    """The 办事指南 of a matter: summary plus materials checklist, conditions, basis."""
    out = matter_summary(federation, matter, authority)
    out.update(
        basis=matter.basis,
        legal_days=matter.legal_days,
        conditions=matter.conditions,
        place=matter.place,
        result={"name": matter.result_name, "type": matter.result_type},
        steps=[s.to_dict() for s in matter.steps],
        materials=[m.to_dict() for m in matter.materials],
    )
    return out


def search_matters(ctx: NodeContext, query: str = "", limit: int = 50) -> list[dict[str, Any]]:
    """Matters this window may accept whose code or name contains ``query``."""
    federation = ctx.configs.require()
    needle = query.strip().lower()
    found: list[dict[str, Any]] = []
    for matter in _visible(federation):
        if needle and needle not in matter.code.lower() and needle not in matter.name.lower():
            continue
        authority = authority_here(federation, matter, ctx.station.id)
        if authority is None:
            continue
        found.append(
            {
                **matter_summary(federation, matter, authority),
                "decide_here": matter.delegated(ctx.station.id),
            }
        )
        if len(found) >= limit:
            break
    return found


def matter_detail(ctx: NodeContext, code: str) -> dict[str, Any]:
    """The 办事指南 of one matter, or a clear refusal if this window may not accept it."""
    federation = ctx.configs.require()
    found = federation.matter(code)
    if found is None:
        raise ServiceError("no_such_matter", "事项目录中没有该事项。", status=404)
    matter = found[1]
    authority = authority_here(federation, matter, ctx.station.id)
    if authority is None:
        raise ServiceError(
            "out_of_scope",
            f"本窗口不在事项「{matter.name}」的受理范围内（{SCOPE_LABELS[matter.scope]}）。",
            status=422,
        )
    out = matter_detail_dict(federation, matter, authority)
    out["decide_here"] = matter.delegated(ctx.station.id)  # 即办: this window decides it
    return out
