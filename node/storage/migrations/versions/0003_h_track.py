"""进度查询: the query code kept at the accepting station (for reprinted receipts) and the
wrong-code counters.

Revision ID: 0003_h_track
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_h_track"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("case_private") as batch:
        batch.add_column(sa.Column("query_code", sa.String(length=8), nullable=True))
    op.create_table(
        "track_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_track_attempts")),
    )
    op.create_index("ix_track_attempts_key_at", "track_attempts", ["key", "at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_track_attempts_key_at", table_name="track_attempts")
    op.drop_table("track_attempts")
    with op.batch_alter_table("case_private") as batch:
        batch.drop_column("query_code")
