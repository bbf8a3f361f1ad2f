"""Initial schema: stored assessments, issued cards, feedback, seen JWT ids, audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit auto-increment ids; SQLite only auto-increments an INTEGER PRIMARY KEY
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stored_assessments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("patient_ref", sa.String(length=200), nullable=False),
        sa.Column("hook_instance", sa.String(length=200), nullable=True),
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("rules_version", sa.String(length=100), nullable=False),
        sa.Column("assessment", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("cards", sa.JSON(none_as_null=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_assessments")),
    )
    op.create_index(op.f("ix_stored_assessments_expires_at"), "stored_assessments", ["expires_at"])

    op.create_table(
        "cards_issued",
        sa.Column("card_uuid", sa.String(length=200), nullable=False),
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("topic_code", sa.String(length=200), nullable=True),
        sa.Column("topic_system", sa.String(length=500), nullable=True),
        sa.Column("indicator", sa.String(length=16), nullable=True),
        sa.Column("assessment_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["stored_assessments.id"],
            name=op.f("fk_cards_issued_assessment_id_stored_assessments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("card_uuid", name=op.f("pk_cards_issued")),
    )
    op.create_index(op.f("ix_cards_issued_assessment_id"), "cards_issued", ["assessment_id"])
    op.create_index(op.f("ix_cards_issued_service_id"), "cards_issued", ["service_id"])
    op.create_index(op.f("ix_cards_issued_topic_code"), "cards_issued", ["topic_code"])

    op.create_table(
        "feedback",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("received_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("card_uuid", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("override_reason_code", sa.String(length=200), nullable=True),
        sa.Column("override_reason_system", sa.String(length=500), nullable=True),
        sa.Column("override_reason_display", sa.String(length=500), nullable=True),
        sa.Column("user_comment", sa.Text(), nullable=True),
        sa.Column("outcome_timestamp", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint("outcome IN ('accepted', 'overridden')", name=op.f("ck_feedback_outcome")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index(op.f("ix_feedback_card_uuid"), "feedback", ["card_uuid"])
    op.create_index(op.f("ix_feedback_service_id"), "feedback", ["service_id"])

    op.create_table(
        "jti_seen",
        sa.Column("iss", sa.String(length=1000), nullable=False),
        sa.Column("jti", sa.String(length=500), nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("iss", "jti", name=op.f("pk_jti_seen")),
    )
    op.create_index(op.f("ix_jti_seen_expires_at"), "jti_seen", ["expires_at"])

    op.create_table(
        "audit_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("route", sa.String(length=300), nullable=False),
        sa.Column("service_id", sa.String(length=100), nullable=True),
        sa.Column("patient_ref", sa.String(length=200), nullable=True),
        sa.Column("hook_instance", sa.String(length=200), nullable=True),
        sa.Column("rules_version", sa.String(length=100), nullable=True),
        sa.Column("outcome", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "kind IN ('hook-call', 'rest-call', 'page-view', 'feedback')", name=op.f("ck_audit_events_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])
    op.create_index("ix_audit_events_patient_ref_at", "audit_events", ["patient_ref", "at"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("jti_seen")
    op.drop_table("feedback")
    op.drop_table("cards_issued")
    op.drop_table("stored_assessments")
