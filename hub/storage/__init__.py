"""Hub persistence: SQLAlchemy models, the store (all SQL of the hub) and migrations."""

from __future__ import annotations

from .database import Database, make_engine
from .migrate import migrate
from .store import HubStore

__all__ = ["Database", "HubStore", "make_engine", "migrate"]
