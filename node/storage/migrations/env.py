"""Alembic environment: runs on the connection that :mod:`node.storage.db` hands over."""

from __future__ import annotations

from alembic import context

from node.storage.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `tongban node migrate` (node.storage.db)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
