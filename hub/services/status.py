"""What the operator sees of this hub: health, per-destination status, alerts, backlog."""

from __future__ import annotations

from typing import Any

from protocol.http.signing import DEFAULT_WINDOW

from ..core import Hub

#: A peer's clock further off than the request window (±300 s) is flagged: it syncs only
#: because its client corrects ``created`` from our ``Date`` (protocol.http.clock).
CLOCK_FLAG_SECONDS = DEFAULT_WINDOW


async def health(hub: Hub) -> dict[str, Any]:
    """``/healthz``: the database answers; config serial and freshness; relay destinations."""
    ok = True
    try:
        serials = await hub.store.config_serials()
    except Exception as exc:  # the probe must answer even when the database does not
        return {"ok": False, "member": hub.me, "database": f"error: {type(exc).__name__}"}
    await hub.view.refresh()
    home = hub.view.home
    report: dict[str, Any] = {
        "ok": ok,
        "member": hub.me,
        "database": "ok",
        "config_serial": serials.get(hub.me[:4]),
        "config": None if home is None else home.config.freshness(hub.now()).value,
    }
    report["destinations"] = [
        {
            "destination": s.destination,
            "last_success": None if s.last_success is None else s.last_success.isoformat(),
            "last_error": s.last_error,
            "last_error_at": None if s.last_error_at is None else s.last_error_at.isoformat(),
            "backlog_count": s.backlog_count,
            "backlog_bytes": s.backlog_bytes,
        }
        for s in await hub.store.all_peer_status()
    ]
    report["clocks"] = await clocks(hub)
    return report


async def clocks(hub: Hub) -> list[dict[str, Any]]:
    """Each member's clock skew as this hub last measured it (``Tongban-Clock``), flagged
    ``skewed`` beyond the request window: the status data and the operator dashboard."""
    return [
        {
            "member": member,
            "skew_seconds": skew,
            "seen_at": seen_at.isoformat(),
            "skewed": abs(skew) > CLOCK_FLAG_SECONDS,
        }
        for member, skew, seen_at in await hub.store.peer_clocks()
    ]


async def operator_status(hub: Hub) -> dict[str, Any]:
    """Destinations, open alerts and recent quarantine, for the operator's page."""
    report = await health(hub)
    report["alerts"] = [
        {"kind": a.kind, "subject": a.subject, "detail": a.detail, "at": a.at.isoformat()}
        for a in await hub.store.alerts()
    ]
    report["quarantine"] = await hub.store.quarantined(50)
    return report
