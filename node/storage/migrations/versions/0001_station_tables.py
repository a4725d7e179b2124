"""Station tables: events, chain head, cases, blobs and uploads, sync state, configs,
clerks and sessions, case counters, quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "blobs",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("mime", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_blobs")),
    )
    op.create_table(
        "case_counters",
        sa.Column("day", sa.String(length=8), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_case_counters")),
    )
    op.create_table(
        "cases",
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("matter", sa.String(length=50), nullable=False),
        sa.Column("matter_name", sa.String(length=200), nullable=False),
        sa.Column("authority", sa.String(length=40), nullable=False),
        sa.Column("window_member", sa.String(length=20), nullable=False),
        sa.Column("pickup", sa.String(length=20), nullable=False),
        sa.Column("location", sa.String(length=12), nullable=False),
        sa.Column("applicant_name", sa.String(length=100), nullable=False),
        sa.Column("applicant_id_masked", sa.String(length=40), nullable=False),
        sa.Column("applicant_id_hash", sa.String(length=64), nullable=False),
        sa.Column("received", sa.String(length=40), nullable=False),
        sa.Column("deadline", sa.String(length=10), nullable=True),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_cases")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cases_applicant_name"), ["applicant_name"], unique=False
        )

    op.create_table(
        "clerks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("password_changed_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clerks")),
        sa.UniqueConstraint("username", name=op.f("uq_clerks_username")),
    )
    op.create_table(
        "configs",
        sa.Column("city", sa.String(length=4), nullable=False),
        sa.Column("home", sa.Boolean(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("signed", sa.Text(), nullable=False),
        sa.Column("received_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("city", name=op.f("pk_configs")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("pos", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=20), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("prev", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("case_no", sa.String(length=40), nullable=True),
        sa.Column("to", sa.Text(), nullable=False),
        sa.Column("wire", sa.LargeBinary(), nullable=False),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.Column("received_at", sa.String(length=40), nullable=False),
        sa.Column("own", sa.Boolean(), nullable=False),
        sa.Column("fold_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("author", "seq", name="uq_events_author_seq"),
        sa.UniqueConstraint("pos", name=op.f("uq_events_pos")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_case_no"), ["case_no"], unique=False)

    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("remote", sa.String(length=64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index("ix_login_failures_remote_at", ["remote", "at"], unique=False)
        batch_op.create_index("ix_login_failures_username_at", ["username", "at"], unique=False)

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("author", sa.String(length=20), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("case_no", sa.String(length=40), nullable=True),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("wire", sa.LargeBinary(), nullable=True),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("released_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quarantine_event_id"), ["event_id"], unique=False)

    op.create_table(
        "sync_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_cursor", sa.String(length=200), nullable=True),
        sa.Column("custody_seq", sa.Integer(), nullable=False),
        sa.Column("last_success", sa.String(length=40), nullable=True),
        sa.Column("last_attempt", sa.String(length=40), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.String(length=40), nullable=True),
        sa.Column("config_serial", sa.Integer(), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_sync_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_state")),
    )
    op.create_table(
        "blob_uploads",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("bytes_sent", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["hash"], ["blobs.hash"], name=op.f("fk_blob_uploads_hash_blobs")),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_blob_uploads")),
    )
    op.create_table(
        "case_private",
        sa.Column("case_no", sa.String(length=40), nullable=False),
        sa.Column("id_number", sa.String(length=40), nullable=False),
        sa.Column("agent_id_number", sa.String(length=40), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_no"], ["cases.number"], name=op.f("fk_case_private_case_no_cases")
        ),
        sa.PrimaryKeyConstraint("case_no", name=op.f("pk_case_private")),
    )
    op.create_table(
        "chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_chain_head_single_row")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_chain_head_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_head")),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("clerk_id", sa.Integer(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clerk_id"],
            ["clerks.id"],
            name=op.f("fk_sessions_clerk_id_clerks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_sessions")),
    )
    # The single-row tables always have their row.
    op.bulk_insert(
        sa.table("chain_head", sa.column("id"), sa.column("seq"), sa.column("event_id")),
        [{"id": 1, "seq": 0, "event_id": None}],
    )
    op.bulk_insert(
        sa.table("sync_state", sa.column("id"), sa.column("custody_seq")),
        [{"id": 1, "custody_seq": 0}],
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("sessions")
    op.drop_table("chain_head")
    op.drop_table("case_private")
    op.drop_table("blob_uploads")
    op.drop_table("sync_state")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_event_id"))

    op.drop_table("quarantine")
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failures_username_at")
        batch_op.drop_index("ix_login_failures_remote_at")

    op.drop_table("login_failures")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_case_no"))

    op.drop_table("events")
    op.drop_table("configs")
    op.drop_table("clerks")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_applicant_name"))

    op.drop_table("cases")
    op.drop_table("case_counters")
    op.drop_table("blobs")
