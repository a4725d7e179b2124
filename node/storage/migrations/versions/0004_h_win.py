"""一件事一次办: the bundles a window opened (parent number and children).

Revision ID: 0004_h_win
Revises: 0003_h_track
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_h_win"
down_revision: str | Sequence[str] | None = "0003_h_track"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "bundles",
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("children", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_bundles")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("bundles")
