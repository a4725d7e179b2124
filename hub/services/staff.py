"""Workbench logins: argon2 passwords, sessions, CSRF tokens, lockout after failures.

Who a staff member is (name, department, roles, active) comes from the signed config's
``staff``; the hub only keeps their password hash and sessions. A session is a random
cookie token of which only the SHA-256 is stored, with its own CSRF token that every
state-changing request must echo (``X-CSRF-Token``). After :data:`MAX_FAILURES` wrong
passwords in a row the account is locked for :data:`LOCKOUT`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from protocol.config import Staff
from protocol.errors import RemoteProtocolError

from ..core import Hub
from ..logs import log

SESSION_COOKIE: Final = "tb_hub_session"
CSRF_HEADER: Final = "X-CSRF-Token"
SESSION_TTL: Final = timedelta(hours=12)
MAX_FAILURES: Final = 5
LOCKOUT: Final = timedelta(minutes=15)
MIN_PASSWORD: Final = 8

logger = logging.getLogger("tongban.hub.staff")
_hasher = PasswordHasher()
# Verified against when the staff id has no password, so both paths take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class StaffSession:
    """A logged-in staff member of this hub."""

    staff: Staff
    csrf: str
    token_hash: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def staff_here(hub: Hub, staff_id: str) -> Staff | None:
    """The active staff member of this hub named ``staff_id`` in the current config."""
    federation = hub.view.federation
    staff = None if federation is None else federation.home.staff.get(staff_id)
    if staff is None or staff.member != hub.me or not staff.active:
        return None
    return staff


async def set_password(hub: Hub, staff_id: str, password: str) -> Staff:
    """Store a password hash for a staff member of this hub (``tongban hub passwd``)."""
    await hub.view.refresh(force=True)
    staff = staff_here(hub, staff_id)
    if staff is None:
        raise RemoteProtocolError(
            "not_staff_here", f"{staff_id} is not active staff of {hub.me} in the config"
        )
    if len(password) < MIN_PASSWORD:
        raise RemoteProtocolError("weak_password", f"密码至少 {MIN_PASSWORD} 个字符")
    digest = await asyncio.to_thread(_hasher.hash, password)
    await hub.store.set_password(staff_id, digest, hub.now())
    return staff


def _verify(digest: str, password: str) -> bool:
    try:
        return _hasher.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False


async def login(hub: Hub, staff_id: str, password: str) -> tuple[str, StaffSession]:
    """Check a password; a new session (cookie token, session) or a refusal."""
    await hub.view.refresh()
    now = hub.now()
    staff = staff_here(hub, staff_id)
    row = None if staff is None else await hub.store.staff_login(staff_id)
    if staff is not None and staff.password_reset is not None:
        reset = staff.password_reset
        if row is None or row.updated_at is None or row.updated_at < reset.at:
            # The operator reset the password (tongban ops staff reset): take its hash once.
            await hub.store.set_password(staff_id, reset.hash, reset.at)
            await end_sessions(hub, staff_id)
            row = await hub.store.staff_login(staff_id)
            log(logger, "staff.password_reset", staff=staff_id)
    if row is not None and row.locked_until is not None and row.locked_until > now:
        log(logger, "staff.locked_out", logging.WARNING, staff=staff_id)
        raise RemoteProtocolError("locked_out", "登录失败次数过多，请稍后再试")
    ok = await asyncio.to_thread(_verify, _DUMMY_HASH if row is None else row.hash, password)
    if row is None or staff is None or not ok:
        if row is not None:
            failures = await hub.store.login_result(
                staff_id, ok=False, max_failures=MAX_FAILURES, lock_until=now + LOCKOUT
            )
            log(logger, "staff.login_failed", logging.WARNING, staff=staff_id, failures=failures)
        raise RemoteProtocolError("bad_login", "工号或密码错误")
    await hub.store.login_result(staff_id, ok=True, max_failures=MAX_FAILURES, lock_until=now)
    if _hasher.check_needs_rehash(row.hash):
        await hub.store.set_password(staff_id, await asyncio.to_thread(_hasher.hash, password), now)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    hashed = token_hash(token)
    await hub.store.create_session(hashed, staff_id, csrf, now, now + SESSION_TTL)
    log(logger, "staff.login", staff=staff_id)
    return token, StaffSession(staff, csrf, hashed)


async def session_of(hub: Hub, token: str | None) -> StaffSession | None:
    """The session a cookie token stands for, if valid and the staff member still active."""
    if not token or len(token) > 100:
        return None
    hashed = token_hash(token)
    found = await hub.store.session(hashed, hub.now())
    if found is None:
        return None
    await hub.view.refresh()
    staff = staff_here(hub, found.staff_id)
    return None if staff is None else StaffSession(staff, found.csrf, hashed)


def check_csrf(session: StaffSession, presented: str | None) -> None:
    if not presented or not hmac.compare_digest(presented, session.csrf):
        raise RemoteProtocolError("bad_csrf", "页面已过期，请刷新后重试")


async def end_sessions(hub: Hub, staff_id: str) -> None:
    """End every session of a staff member (after an operator's password reset)."""
    await hub.store.end_staff_sessions(staff_id)


async def logout(hub: Hub, session: StaffSession) -> None:
    await hub.store.end_session(session.token_hash)
