"""Initial schema of the hub: events, chains, feeds, outbox, blobs, cases, staff, configs.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("n", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=140), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("n", name=op.f("pk_alerts")),
        sa.UniqueConstraint("kind", "subject", name=op.f("uq_alerts_kind_subject")),
    )
    op.create_table(
        "blob_outbox",
        sa.Column("destination", sa.String(length=20), nullable=False),
        sa.Column("blob", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("destination", "blob", name=op.f("pk_blob_outbox")),
    )
    op.create_table(
        "blobs",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_blobs")),
    )
    op.create_table(
        "cases",
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("authority", sa.String(length=40), nullable=False),
        sa.Column("matter", sa.String(length=50), nullable=False),
        sa.Column("window", sa.String(length=20), nullable=False),
        sa.Column("pickup", sa.String(length=20), nullable=False),
        sa.Column("fold", sa.Text(), nullable=False),
        sa.Column("rejected", sa.Text(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_cases")),
    )
    op.create_index(op.f("ix_cases_authority_state"), "cases", ["authority", "state"], unique=False)

    op.create_table(
        "chain_heads",
        sa.Column("author", sa.String(length=20), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("author", name=op.f("pk_chain_heads")),
    )
    op.create_table(
        "configs",
        sa.Column("city", sa.String(length=4), nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=False),
        sa.Column("signed", sa.Text(), nullable=False),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("city", "serial", name=op.f("pk_configs")),
    )
    op.create_table(
        "equivocations",
        sa.Column("n", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("author", sa.String(length=20), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("held_id", sa.String(length=64), nullable=False),
        sa.Column("other_id", sa.String(length=64), nullable=False),
        sa.Column("other_wire", sa.LargeBinary(), nullable=False),
        sa.Column("pusher", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("n", name=op.f("pk_equivocations")),
        sa.UniqueConstraint("held_id", "other_id", name=op.f("uq_equivocations_held_id_other_id")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=20), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("prev", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=140), nullable=False),
        sa.Column("case_no", sa.String(length=40), nullable=True),
        sa.Column("to", sa.Text(), nullable=False),
        sa.Column("wire", sa.LargeBinary(), nullable=False),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("via", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("author", "seq", name=op.f("uq_events_author_seq")),
    )
    op.create_index(op.f("ix_events_case_no"), "events", ["case_no"], unique=False)

    op.create_table(
        "feed_heads",
        sa.Column("recipient", sa.String(length=20), nullable=False),
        sa.Column("pos", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("recipient", name=op.f("pk_feed_heads")),
    )
    op.create_table(
        "nonces",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kid", "nonce", name=op.f("pk_nonces")),
    )
    op.create_index(op.f("ix_nonces_created"), "nonces", ["created"], unique=False)

    op.create_table(
        "peer_status",
        sa.Column("destination", sa.String(length=20), nullable=False),
        sa.Column("last_success", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("backlog_count", sa.BigInteger(), nullable=False),
        sa.Column("backlog_bytes", sa.BigInteger(), nullable=False),
        sa.Column("feed_cursor", sa.String(length=200), nullable=True),
        sa.Column("own_custody", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("destination", name=op.f("pk_peer_status")),
    )
    op.create_table(
        "quarantine",
        sa.Column("n", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("author", sa.String(length=20), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("pusher", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("n", name=op.f("pk_quarantine")),
        sa.UniqueConstraint("pusher", "raw_sha256", name=op.f("uq_quarantine_pusher_raw_sha256")),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=50), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_sessions")),
    )
    op.create_table(
        "staff_passwords",
        sa.Column("staff_id", sa.String(length=50), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("staff_id", name=op.f("pk_staff_passwords")),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("uploader", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index(op.f("ix_uploads_hash_uploader"), "uploads", ["hash", "uploader"], unique=False)

    op.create_table(
        "event_blobs",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("blob", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_blobs_event_id_events")
        ),
        sa.PrimaryKeyConstraint("event_id", "blob", name=op.f("pk_event_blobs")),
    )
    op.create_index(op.f("ix_event_blobs_blob"), "event_blobs", ["blob"], unique=False)

    op.create_table(
        "feed_entries",
        sa.Column("recipient", sa.String(length=20), nullable=False),
        sa.Column("pos", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_feed_entries_event_id_events")
        ),
        sa.PrimaryKeyConstraint("recipient", "pos", name=op.f("pk_feed_entries")),
        sa.UniqueConstraint(
            "recipient", "event_id", name=op.f("uq_feed_entries_recipient_event_id")
        ),
    )
    op.create_index(op.f("ix_feed_entries_event_id"), "feed_entries", ["event_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("n", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("destination", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_outbox_event_id_events")
        ),
        sa.PrimaryKeyConstraint("n", name=op.f("pk_outbox")),
        sa.UniqueConstraint("destination", "event_id", name=op.f("uq_outbox_destination_event_id")),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_index(op.f("ix_feed_entries_event_id"), table_name="feed_entries")
    op.drop_table("feed_entries")
    op.drop_index(op.f("ix_event_blobs_blob"), table_name="event_blobs")
    op.drop_table("event_blobs")
    op.drop_index(op.f("ix_uploads_hash_uploader"), table_name="uploads")
    op.drop_table("uploads")
    op.drop_table("staff_passwords")
    op.drop_table("sessions")
    op.drop_table("quarantine")
    op.drop_table("peer_status")
    op.drop_index(op.f("ix_nonces_created"), table_name="nonces")
    op.drop_table("nonces")
    op.drop_table("feed_heads")
    op.drop_index(op.f("ix_events_case_no"), table_name="events")
    op.drop_table("events")
    op.drop_table("equivocations")
    op.drop_table("configs")
    op.drop_table("chain_heads")
    op.drop_index(op.f("ix_cases_authority_state"), table_name="cases")
    op.drop_table("cases")
    op.drop_table("blobs")
    op.drop_table("blob_outbox")
    op.drop_table("alerts")
