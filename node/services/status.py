"""The sync bar (同步状态) and the quarantine list (隔离区)."""

from __future__ import annotations

import logging
from typing import Any

from protocol.config import Freshness
from protocol.http.signing import DEFAULT_WINDOW

from ..logs import log
from ..storage import ClerkRow, QuarantineRow
from .context import NodeContext
from .errors import ServiceError, not_found
from .folding import member_name

logger = logging.getLogger("node.status")

_QUARANTINE_REASONS = {
    "equivocation": "同一序号出现两条不同记录（疑似密钥被盗用）",
    "wrong_prev": "记录链不连续",
    "gap": "记录链缺失前序记录",
    "bad_signature": "签名验证失败",
    "unknown_author": "签发单位不在联邦配置中",
    "unknown_key": "签发密钥不在联邦配置中",
    "key_not_valid": "签发密钥不在有效期内",
    "key_revoked": "签发密钥已被吊销",
}


_SYNC_ERRORS = {
    "unreachable": "无法连接上级服务器",
    "unknown_key": "上级不认识本站密钥：注册申请尚未获批，或密钥已更换",
    "key_revoked": "本站密钥已被吊销，请联系运维人员",
    "stale_request": "本机时钟与上级相差过大，请校准电脑时间",
    "bad_request_signature": "请求签名验证失败",
    "replayed_nonce": "请求被判定为重放",
}


def sync_error_text(last_error: str | None) -> str | None:
    """The stored ``<reason>: <detail>`` of the last failure, in Chinese."""
    if not last_error:
        return None
    reason = last_error.split(":", 1)[0]
    if reason.startswith("http_5") or reason == "bad_response":
        return "上级服务器暂时故障"
    return _SYNC_ERRORS.get(reason, f"同步出错（{reason}）")


def config_view(ctx: NodeContext) -> dict[str, Any]:
    """Serial, validity and staleness of the config in force (never blocks acceptance)."""
    home = ctx.configs.home
    if home is None:
        return {
            "serial": None,
            "freshness": "none",
            "warning": "尚未取得联邦配置（事项目录），暂不能受理。",
        }
    config = home.config
    freshness = config.freshness(ctx.clock())
    expires = config.expires.isoformat()
    warning = None
    if freshness is Freshness.STALE:
        warning = f"联邦配置已于 {expires[:10]} 过期，仍按旧配置继续受理；请尽快恢复与上级的同步。"
    elif freshness is Freshness.EXPIRED:
        warning = (
            f"联邦配置过期已超过 {config.grace_days} 天（{expires[:10]} 到期），"
            "事项目录可能已变化；仍可受理，请立即联系运维人员。"
        )
    return {
        "serial": config.serial,
        "federation": config.federation,
        "name": config.name,
        "issued": config.issued.isoformat(),
        "expires": expires,
        "freshness": freshness.value,
        "warning": warning,
    }


async def sync_status(ctx: NodeContext) -> dict[str, Any]:
    """Everything the sync bar shows on every page."""
    state = await ctx.store.sync_state()
    backlog = await ctx.store.backlog(ctx.station.id)
    quarantined = [q for q in await ctx.store.quarantine_list() if q.released_at is None]
    runtime = ctx.probe.runtime() if ctx.probe is not None else None
    online = bool(runtime and runtime.online)
    # The last error matters while nothing has succeeded since (UTC ISO text sorts).
    failing = state.last_error_at is not None and (
        state.last_success is None or state.last_error_at >= state.last_success
    )
    if runtime is None or not runtime.running:
        label = "同步未运行"
    elif runtime.online is None:
        label = "正在连接上级"
    elif online and runtime.last_error:
        label = f"已连接上级，但同步受阻：{sync_error_text(runtime.last_error)}"
    else:
        label = "在线" if online else "离线（申请照常受理，恢复连接后自动上报）"
    return {
        "online": online,
        "label": label,
        "parent": ctx.station.parent_url,
        "last_success": state.last_success,
        "last_attempt": state.last_attempt,
        "last_error": state.last_error,
        "last_error_text": sync_error_text(state.last_error) if failing else None,
        "last_error_at": state.last_error_at,
        "next_attempt_in": None if runtime is None else runtime.next_attempt_in,
        "waiting": {
            "events": backlog.events,
            "event_bytes": backlog.event_bytes,
            "blobs": backlog.blobs,
            "blob_bytes": backlog.blob_bytes,
        },
        "quarantined": len(quarantined),
        "config": config_view(ctx),
        **clock_view(0 if runtime is None else runtime.clock_offset),
    }


#: Beyond this the station's clock would be refused without correction (the ±300 s request
#: window, protocol.http.signing.DEFAULT_WINDOW): sync goes on, the clerk is told.
CLOCK_WARN_SECONDS = DEFAULT_WINDOW


def clock_view(offset: int) -> dict[str, Any]:
    """How far this PC's clock is off the hub's, and a warning for the clerk if too far."""
    warning = None
    if abs(offset) > CLOCK_WARN_SECONDS:
        hours, rest = divmod(abs(offset), 3600)
        amount = f"{hours} 小时 {rest // 60} 分" if hours else f"{rest // 60} 分钟"
        way = "慢" if offset > 0 else "快"
        warning = f"本机时钟比上级{way} {amount}，同步照常进行，请校准系统时间"
    return {"clock_offset": offset, "clock_warning": warning}


def _quarantine_row(ctx: NodeContext, row: QuarantineRow) -> dict[str, Any]:
    label = _QUARANTINE_REASONS.get(row.reason, row.reason)
    if row.direction == "out":
        text = f"上级拒收本站记录：{label}"
    else:
        text = f"本站拒收 {member_name(ctx.configs.federation, row.author or '')} 的记录：{label}"
    return {
        "id": row.id,
        "direction": row.direction,
        "event_id": row.event_id,
        "author": row.author,
        "seq": row.seq,
        "case": row.case_no,
        "reason": row.reason,
        "detail": row.detail,
        "text": text,
        "at": row.at,
        "released_at": row.released_at,
    }


async def quarantine_list(ctx: NodeContext) -> list[dict[str, Any]]:
    """隔离区: events the hub refused (ours) and feed events we refused, with reasons."""
    return [_quarantine_row(ctx, row) for row in await ctx.store.quarantine_list()]


async def release(ctx: NodeContext, item_id: int, clerk: ClerkRow) -> dict[str, Any]:
    """Retry one of our refused events (admin only; e.g. after a config update)."""
    if clerk.role != "admin":
        raise ServiceError("forbidden", "只有管理员可以重新上报被拒收的记录。", status=403)
    row = await ctx.store.quarantine_item(item_id)
    if row is None:
        raise not_found("quarantine", "没有找到该隔离记录。")
    if row.direction != "out" or row.released_at is not None:
        raise ServiceError("not_releasable", "该记录不能重新上报。", status=409)
    released = await ctx.store.release_quarantine(item_id, ctx.stamp())
    if released is None:
        raise ServiceError("not_releasable", "该记录不能重新上报。", status=409)
    log(logger, "quarantine.released", id=item_id, event=row.event_id, by=clerk.username)
    ctx.wake()
    return _quarantine_row(ctx, released)
