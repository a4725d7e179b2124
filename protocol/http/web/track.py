"""进度查询 pieces both apps use: the query code (drawn at the window; only a slow,
memory-hard hash of it travels in the signed ``case.submitted`` body as ``body.track``),
the wrong-code rate limit, and the plain words of case states.

Why Argon2id: every federation member on a case's route holds its signed events, and a
6-character code has only 31⁶ ≈ 8.9·10⁸ values. Under a salted SHA-256 (format 1) a GPU
tries them all in about a second; under Argon2id with :data:`ARGON2` (RFC 9106 / OWASP's
m = 19 MiB, t = 2, p = 1; about 0.2 s per try on the project's 2-core test machine under
load, so one lookup stays well under a second) the same search costs core-years and 19 MiB
per guess in flight. The parameters travel with the hash (``body.track.v = 2``), so they can
be raised later; a verifier refuses parameters above :data:`MAX_COST` (a hostile event must
not make a lookup eat the server). Format 1 (``{"salt", "hash"}``, no ``v``) stays readable.

Pure: the clock is injected; nothing here reads the disk or the network.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from argon2.exceptions import HashingError
from argon2.low_level import Type, hash_secret_raw

from protocol.case import RECEIPT
from protocol.event import Event
from protocol.ids import member_of

#: No 0/O, 1/I/L: read aloud over the phone without doubt.
ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH: Final = 6
MAX_WRONG: Final = 5  # the 6th wrong try within WINDOW seconds is refused
WINDOW: Final = 60.0
QR_PREFIX: Final = "TB"


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(code: str) -> str:
    return "".join(code.split()).upper()[:20]


#: Argon2id cost of format 2: time (passes), memory (KiB), parallelism.
ARGON2: Final = {"t": 2, "m": 19456, "p": 1}
#: The most a verifier spends on one code (a hostile body cannot ask for more).
MAX_COST: Final = {"t": 10, "m": 262144, "p": 4}


def code_hash(number: str, code: str, salt: str) -> str:
    """Format 1 (legacy): salted SHA-256, still verified for cases accepted before v2."""
    data = f"{number}\n{normalize_code(code)}\n{salt}".encode()
    return hashlib.sha256(data).hexdigest()


def code_hash_v2(code: str, salt: str, t: int, m: int, p: int) -> str:
    """Format 2: Argon2id of the code under a random per-case salt (hex, 16 bytes)."""
    secret = normalize_code(code).encode()
    raw = hash_secret_raw(
        secret, bytes.fromhex(salt), time_cost=t, memory_cost=m, parallelism=p,
        hash_len=32, type=Type.ID,
    )  # fmt: skip
    return raw.hex()


def track_body(code: str) -> dict[str, Any]:
    """What goes into ``case.submitted`` as ``body.track`` (format 2). Slow on purpose:
    call it off the event loop."""
    salt = secrets.token_hex(16)
    cost = ARGON2
    return {
        "v": 2,
        "alg": "argon2id",
        **cost,
        "salt": salt,
        "hash": code_hash_v2(code, salt, cost["t"], cost["m"], cost["p"]),
    }


def _cost(track: Mapping[str, Any]) -> tuple[int, int, int] | None:
    values = [track.get(k) for k in ("t", "m", "p")]
    if not all(type(v) is int for v in values):
        return None
    t, m, p = (int(v) for v in values if isinstance(v, int))
    if not (1 <= t <= MAX_COST["t"] and 1 <= p <= MAX_COST["p"] and 8 * p <= m <= MAX_COST["m"]):
        return None
    return t, m, p


def code_matches(body: Mapping[str, Any], number: str, code: str) -> bool:
    """Whether ``code`` is the query code of the case whose ``case.submitted`` body this is.
    Slow on purpose (format 2): call it off the event loop."""
    track = body.get("track")
    if not isinstance(track, Mapping):
        return False
    salt, want = track.get("salt"), track.get("hash")
    if not isinstance(salt, str) or not isinstance(want, str):
        return False
    if "v" not in track:
        return hmac.compare_digest(code_hash(number, code, salt), want)
    cost = _cost(track)
    if track.get("v") != 2 or track.get("alg") != "argon2id" or cost is None:
        return False
    try:
        got = code_hash_v2(code, salt, *cost)
    except (ValueError, HashingError):  # a salt that is not hex, or too short for Argon2
        return False
    return hmac.compare_digest(got, want)


def qr_text(number: str, code: str) -> str:
    return f"{QR_PREFIX}:{number}:{normalize_code(code)}"


def parse_qr(text: str) -> tuple[str, str] | None:
    """``TB:<number>:<code>`` → (number, code)."""
    parts = text.strip().split(":")
    if len(parts) != 3 or parts[0] != QR_PREFIX:
        return None
    return parts[1], parts[2]


class WrongCodes(Protocol):
    """Where an app counts wrong query codes: in its database, so every worker of a hub (and
    a station after a restart) sees the same tries. Keys come from :func:`attempt_keys`."""

    async def count(self, keys: Sequence[str], window: float) -> int:
        """The most wrong tries any of ``keys`` had in the last ``window`` seconds."""
        ...

    async def add(self, keys: Sequence[str], window: float) -> None:
        """Count one wrong try for each key (and forget tries older than ``window``)."""
        ...


def attempt_keys(client: str, number: str) -> tuple[str, str]:
    """Wrong codes are limited per client address and per case number."""
    return f"c:{client[:60]}", f"n:{number[:40]}"


async def blocked(counter: WrongCodes, client: str, number: str) -> bool:
    """True once a client or a case had :data:`MAX_WRONG` wrong codes within :data:`WINDOW`."""
    return await counter.count(attempt_keys(client, number), WINDOW) >= MAX_WRONG


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
    "case.verified": "审批部门完成告知承诺核查",
    "case.followed_up": "审批部门完成差评回访",
}

#: The two 送达回执 the applicant is told of, by the type of the event confirmed.
RECEIPT_TEXT: Final = {
    "case.submitted": "已送达审批部门",  # the authority's hub holds the application
    "case.decided": "办结结果已送达出件窗口",  # the pickup window holds the decision
}


def public_events(
    events: Sequence[Event], authority: str, pickup: str
) -> list[tuple[Event, str | None]]:
    """The events 进度查询 shows, each with its words if it is a 送达回执 (None otherwise):
    of the receipts only the authority's of the application and the pickup window's of the
    decision (windows and hubs confirming notices to each other tell the applicant
    nothing)."""
    types = {e.id: e.type for e in events}
    shown: list[tuple[Event, str | None]] = []
    for event in events:
        if event.type != RECEIPT:
            shown.append((event, None))
            continue
        confirmed = event.body.get("event")
        held = types.get(confirmed, "") if isinstance(confirmed, str) else ""
        signer = {"case.submitted": member_of(authority), "case.decided": pickup}.get(held)
        if event.author == signer:
            shown.append((event, RECEIPT_TEXT[held]))
    return shown
