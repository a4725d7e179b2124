"""Cases carry their open work items besides the queue (容缺 due, 核查, 差评回访).

Revision ID: 0005_h_auth
Revises: 0004_h_rel
Create Date: 2026-11-23

Existing rows start with no work item; a case gets its items when its next event is folded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_h_auth"
down_revision = "0004_h_rel"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("tasks", sa.String(length=60), nullable=True))
        batch.create_index(op.f("ix_cases_authority_tasks"), ["authority", "tasks"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index(op.f("ix_cases_authority_tasks"))
        batch.drop_column("tasks")
