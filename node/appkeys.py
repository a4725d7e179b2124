"""Typed keys of the station app and its requests (shared by app.py and api.py)."""

from __future__ import annotations

import jinja2
from aiohttp import web

from .metrics import NodeMetrics
from .services.auth import Auth
from .services.context import NodeContext
from .storage import SessionRow

CTX = web.AppKey("ctx", NodeContext)
AUTH = web.AppKey("auth", Auth)
METRICS = web.AppKey("metrics", NodeMetrics)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
SESSION = web.RequestKey("session", SessionRow)
SESSION_COOKIE = "tongban_session"
CSRF_HEADER = "X-CSRF-Token"
