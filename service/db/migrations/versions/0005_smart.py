"""The SMART app (issue 23): launches awaiting their callback, sessions, used form ids; three audit kinds.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
OLD_KINDS = ("hook-call", "rest-call", "page-view", "feedback")
NEW_KINDS = (*OLD_KINDS, "smart-launch", "smart-view", "smart-write")


def _kinds(kinds: tuple[str, ...]) -> str:
    return f"kind IN ({', '.join(repr(k) for k in kinds)})"


def _rebuild_kind_check(kinds: tuple[str, ...]) -> None:
    """SQLite cannot alter a CHECK: batch mode copies the table (its indexes too); PostgreSQL alters it."""
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint(op.f("ck_audit_events_kind"), type_="check")
        batch.create_check_constraint("kind", _kinds(kinds))


def upgrade() -> None:
    op.create_table(
        "smart_launches",
        sa.Column("state_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("iss", sa.String(1000), nullable=False),
        sa.Column("launch", sa.Text(), nullable=False),
        sa.Column("assessment_hint", sa.String(100), nullable=True),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("state_sha256", name=op.f("pk_smart_launches")),
    )
    op.create_index(op.f("ix_smart_launches_expires_at"), "smart_launches", ["expires_at"])
    op.create_table(
        "smart_sessions",
        sa.Column("id_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("iss", sa.String(1000), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("fhir_user", sa.String(200), nullable=True),
        sa.Column("client_id", sa.String(500), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("assessment_hint", sa.String(100), nullable=True),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id_sha256", name=op.f("pk_smart_sessions")),
    )
    op.create_index(op.f("ix_smart_sessions_expires_at"), "smart_sessions", ["expires_at"])
    op.create_table(
        "smart_form_ids",
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("form_id", sa.String(64), nullable=False),
        sa.Column("used_at", UTC_TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["smart_sessions.id_sha256"],
            name=op.f("fk_smart_form_ids_session_id_smart_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "form_id", name=op.f("pk_smart_form_ids")),
    )
    _rebuild_kind_check(NEW_KINDS)


def downgrade() -> None:
    op.execute(sa.text(f"DELETE FROM audit_events WHERE NOT ({_kinds(OLD_KINDS)})"))
    _rebuild_kind_check(OLD_KINDS)
    op.drop_table("smart_form_ids")
    op.drop_index(op.f("ix_smart_sessions_expires_at"), table_name="smart_sessions")
    op.drop_table("smart_sessions")
    op.drop_index(op.f("ix_smart_launches_expires_at"), table_name="smart_launches")
    op.drop_table("smart_launches")
