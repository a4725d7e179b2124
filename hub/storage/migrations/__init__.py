"""Alembic migrations of the hub database (append-only: never edit a released revision)."""
