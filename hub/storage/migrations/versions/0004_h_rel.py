"""peer_clocks: how far each peer's clock is off this hub's (clock skew, issue 8).

Revision ID: 0004_h_rel
Revises: 0003_h_track
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_h_rel"
down_revision: str | Sequence[str] | None = "0003_h_track"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "peer_clocks",
        sa.Column("member", sa.String(length=20), nullable=False),
        sa.Column("skew", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("member", name=op.f("pk_peer_clocks")),
    )


def downgrade() -> None:
    op.drop_table("peer_clocks")
