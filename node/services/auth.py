"""Clerk accounts, login sessions and CSRF tokens.

Passwords are argon2id hashes (argon2-cffi). A login creates a session: a random token in
an HttpOnly cookie (the store keeps only its SHA-256) and a random CSRF token that every
state-changing request must echo. Failed logins are counted in the database per username
and per remote address; past the limits the login is refused for the rest of the window
(even with the right password) and the API answers 429.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..logs import log
from ..storage import ClerkRow, SessionRow, Store
from .errors import ServiceError, refused

logger = logging.getLogger("node.auth")

SESSION_SECONDS = 12 * 3600
FAILURE_WINDOW = 15 * 60
MAX_USER_FAILURES = 5
MAX_REMOTE_FAILURES = 20
MIN_PASSWORD = 10
ROLES = ("admin", "clerk")
_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{1,49}\Z")
_HASHER = PasswordHasher()
# Verifying against this costs the same as a real account: no timing hint that a name exists.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def new_password() -> str:
    """A random initial password (printed once)."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class Login:
    """A new session: the cookie token, the CSRF token, the clerk."""

    token: str
    csrf: str
    clerk: ClerkRow
    expires_at: float


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD or len(password) > 200:
        raise refused("weak_password", f"密码至少 {MIN_PASSWORD} 位。", field="new_password")


class Auth:
    """Accounts and sessions over the store; ``clock`` gives epoch seconds."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    def now(self) -> float:
        return float(self._clock())

    async def create_clerk(
        self, username: str, display_name: str, role: str, at: str, password: str | None = None
    ) -> tuple[ClerkRow, str]:
        """A new account and its initial password (random unless given)."""
        username = username.strip().lower()
        if not _USERNAME.match(username):
            raise refused(
                "bad_username",
                "用户名为 2–50 位小写字母、数字或 _ . -，以字母开头。",
                field="username",
            )
        if role not in ROLES:
            raise refused("bad_role", "角色应为 admin 或 clerk。", field="role")
        password = password or new_password()
        _check_password(password)
        hashed = await asyncio.to_thread(_HASHER.hash, password)
        clerk = await self.store.create_clerk(
            username, display_name.strip() or username, hashed, role, at
        )
        if clerk is None:
            raise ServiceError("username_taken", "该用户名已被使用。", status=409, field="username")
        log(logger, "clerk.created", username=username, role=role)
        return clerk, password

    async def login(self, username: str, password: str, remote: str) -> Login:
        """Check the password; 401 ``bad_credentials`` or 429 ``too_many_attempts``."""
        username = username.strip().lower()[:50]
        now = self.now()
        by_user, by_remote = await self.store.login_failures(username, remote, now - FAILURE_WINDOW)
        if by_user >= MAX_USER_FAILURES or by_remote >= MAX_REMOTE_FAILURES:
            log(logger, "login.throttled", username=username, remote=remote, level=logging.WARNING)
            raise ServiceError(
                "too_many_attempts",
                f"登录失败次数过多，请 {FAILURE_WINDOW // 60} 分钟后再试。",
                status=429,
            )
        clerk = await self.store.clerk_by_username(username)
        good = await asyncio.to_thread(
            _verify, clerk.password_hash if clerk else _DUMMY_HASH, password
        )
        if clerk is None or not good or not clerk.active:
            await self.store.login_failure(username, remote, now)
            log(logger, "login.failed", username=username, remote=remote, level=logging.WARNING)
            raise ServiceError("bad_credentials", "用户名或密码错误。", status=401)
        await self.store.clear_login_failures(username, now - FAILURE_WINDOW)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + SESSION_SECONDS
        await self.store.create_session(token_hash(token), clerk.id, csrf, now, expires)
        log(logger, "login.ok", username=username, remote=remote)
        return Login(token, csrf, clerk, expires)

    async def session(self, token: str | None) -> SessionRow | None:
        if not token:
            return None
        return await self.store.session(token_hash(token), self.now())

    async def logout(self, token: str) -> None:
        await self.store.delete_session(token_hash(token))

    async def change_password(
        self, clerk: ClerkRow, old: str, new: str, at: str, keep_token: str | None = None
    ) -> None:
        """Change one's own password; other sessions of the clerk end."""
        if not await asyncio.to_thread(_verify, clerk.password_hash, old):
            raise ServiceError("bad_credentials", "原密码错误。", status=401, field="old_password")
        _check_password(new)
        hashed = await asyncio.to_thread(_HASHER.hash, new)
        await self.store.update_clerk(clerk.id, password_hash=hashed, password_changed_at=at)
        await self.store.delete_sessions_of(
            clerk.id, keep=token_hash(keep_token) if keep_token else None
        )
        log(logger, "password.changed", username=clerk.username)

    async def reset_password(self, username: str, at: str) -> str:
        """Operator action (CLI): a new random password; the clerk must change it."""
        clerk = await self.store.clerk_by_username(username.strip().lower())
        if clerk is None:
            raise LookupError(username)
        password = new_password()
        hashed = await asyncio.to_thread(_HASHER.hash, password)
        await self.store.update_clerk(clerk.id, password_hash=hashed, password_changed_at=None)
        await self.store.delete_sessions_of(clerk.id)
        log(logger, "password.reset", username=clerk.username)
        return password
