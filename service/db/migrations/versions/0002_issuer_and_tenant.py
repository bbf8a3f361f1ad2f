"""Issuer and tenant on audit events, feedback and issued cards: a CDS client reads only its own.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("audit_events", "feedback", "cards_issued")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("issuer", sa.String(length=1000), nullable=True))
            batch.add_column(sa.Column("tenant", sa.String(length=200), nullable=True))
    op.create_index("ix_audit_events_issuer_tenant_at", "audit_events", ["issuer", "tenant", "at"])
    op.create_index("ix_feedback_issuer_tenant", "feedback", ["issuer", "tenant"])
    op.create_index("ix_cards_issued_issuer_tenant", "cards_issued", ["issuer", "tenant"])


def downgrade() -> None:
    op.drop_index("ix_cards_issued_issuer_tenant", table_name="cards_issued")
    op.drop_index("ix_feedback_issuer_tenant", table_name="feedback")
    op.drop_index("ix_audit_events_issuer_tenant_at", table_name="audit_events")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tenant")
            batch.drop_column("issuer")
