"""A stored assessment's page data: the course of the disease the clinician page draws (lesion sizes,
TACE sessions, sorafenib start, readable evidence). Kept beside the assessment JSON, not in it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stored_assessments") as batch:
        batch.add_column(sa.Column("page", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stored_assessments") as batch:
        batch.drop_column("page")
