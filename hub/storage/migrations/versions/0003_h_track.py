"""送达回执 due list and the shared wrong-code counters of 进度查询.

Revision ID: 0003_h_track
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_h_track"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receipt_due",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("case_no", sa.String(length=40), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_receipt_due")),
    )
    op.create_index(op.f("ix_receipt_due_since"), "receipt_due", ["since"], unique=False)
    op.create_table(
        "track_attempts",
        sa.Column("n", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("n", name=op.f("pk_track_attempts")),
    )
    op.create_index(op.f("ix_track_attempts_key"), "track_attempts", ["key"], unique=False)
    op.create_index(op.f("ix_track_attempts_at"), "track_attempts", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_track_attempts_at"), table_name="track_attempts")
    op.drop_index(op.f("ix_track_attempts_key"), table_name="track_attempts")
    op.drop_table("track_attempts")
    op.drop_index(op.f("ix_receipt_due_since"), table_name="receipt_due")
    op.drop_table("receipt_due")
