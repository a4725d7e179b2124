"""Alembic revisions of the station database (append-only: never edit a released one)."""
