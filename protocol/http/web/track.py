"""进度查询 pieces both apps use: the query code (drawn at the window, only a salted
SHA-256 of it travels in the signed ``case.submitted`` body as ``body.track``), the
wrong-code rate limit, and the plain words of case states.

Pure: the clock is injected; nothing here reads the disk or the network.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

#: No 0/O, 1/I/L: read aloud over the phone without doubt.
ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH: Final = 6
MAX_WRONG: Final = 5  # the 6th wrong try within WINDOW seconds is refused
WINDOW: Final = 60.0
PENDING_TTL: Final = 30 * 60.0
QR_PREFIX: Final = "TB"


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(code: str) -> str:
    return "".join(code.split()).upper()[:20]


def code_hash(number: str, code: str, salt: str) -> str:
    data = f"{number}\n{normalize_code(code)}\n{salt}".encode()
    return hashlib.sha256(data).hexdigest()


def track_body(number: str, code: str) -> dict[str, str]:
    """What goes into ``case.submitted`` as ``body.track``."""
    salt = secrets.token_hex(8)
    return {"salt": salt, "hash": code_hash(number, code, salt)}


def code_matches(body: Mapping[str, Any], number: str, code: str) -> bool:
    track = body.get("track")
    if not isinstance(track, Mapping):
        return False
    salt, want = track.get("salt"), track.get("hash")
    if not isinstance(salt, str) or not isinstance(want, str):
        return False
    return hmac.compare_digest(code_hash(number, code, salt), want)


def qr_text(number: str, code: str) -> str:
    return f"{QR_PREFIX}:{number}:{normalize_code(code)}"


def parse_qr(text: str) -> tuple[str, str] | None:
    """``TB:<number>:<code>`` → (number, code)."""
    parts = text.strip().split(":")
    if len(parts) != 3 or parts[0] != QR_PREFIX:
        return None
    return parts[1], parts[2]


@dataclass
class Attempts:
    """Wrong-code counters per client and per case (in memory: a restart forgives)."""

    clock: Callable[[], float] = time.monotonic
    _wrong: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str) -> deque[float]:
        now = self.clock()
        seen = self._wrong.setdefault(key, deque())
        while seen and seen[0] <= now - WINDOW:
            seen.popleft()
        return seen

    def blocked(self, client: str, number: str) -> bool:
        return any(len(self._recent(k)) >= MAX_WRONG for k in (f"c:{client}", f"n:{number}"))

    def wrong(self, client: str, number: str) -> None:
        now = self.clock()
        for key in (f"c:{client}", f"n:{number}"):
            self._recent(key).append(now)
        if len(self._wrong) > 10_000:  # forget idle keys
            for key in [k for k, v in self._wrong.items() if not v]:
                del self._wrong[key]


#: What each state means for the applicant, in plain words.
STATE_TEXT: Final = {
    "submitted": "窗口已收件，正在等待审批部门受理。",
    "correction": "审批部门要求补正材料，请按下列事项一次性补齐后到窗口提交。",
    "accepted": "审批部门已受理，正在办理。",
    "in_review": "正在审查中。",
    "awaiting_supplement": "审批部门要求补办材料（期间暂停计时），请按下列事项补齐后到窗口提交。",
    "suspended": "办件进入特别程序（期间暂停计时）。",
    "decided": "已办结，请凭回执到出件窗口领取结果。",
    "delivered": "结果已领取。",
    "rated": "结果已领取，感谢您的评价。",
    "withdrawn": "申请已撤回。",
    "not_accepted": "审批部门决定不予受理。",
    "terminated": "办件已终止。",
}


def mask_name(name: str) -> str:
    """``张三丰`` → ``张**``: the family name only."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


NOT_FOUND: Final = "办件编号或查询码不正确，请核对回执后重试。"
TOO_MANY: Final = "查询码错误次数过多，请一分钟后再试。"

#: The timeline in plain words when the app has no richer wording of its own.
EVENT_TEXT: Final = {
    "case.submitted": "窗口收件",
    "case.received": "已送达审批部门",
    "case.correction_requested": "审批部门要求补正材料",
    "case.corrected": "已提交补正材料",
    "case.accepted": "审批部门受理",
    "case.not_accepted": "审批部门决定不予受理",
    "case.step": "审查环节办理",
    "case.supplement_requested": "审批部门要求补办材料（暂停计时）",
    "case.supplemented": "已提交补办材料（恢复计时）",
    "case.suspended": "进入特别程序（暂停计时）",
    "case.resumed": "特别程序结束，恢复计时",
    "case.extended": "延长办理期限",
    "case.decided": "办结",
    "case.delivered": "结果已领取",
    "case.rated": "已评价",
    "case.withdrawn": "申请人撤回申请",
    "case.terminated": "办件终止",
}
