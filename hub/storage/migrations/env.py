"""Alembic environment: programmatic only; the caller hands us a connection."""

from __future__ import annotations

from alembic import context

from hub.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run hub migrations with `tongban hub migrate` (hub.storage.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
