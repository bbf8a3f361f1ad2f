"""Screening runs and their per-patient results (issue 22: the tumour-board worklist from a Bulk Data export).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("queued", "exporting", "partitioning", "assessing", "complete", "failed", "cancelled")
JSON = sa.JSON(none_as_null=True)
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "screening_runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("page_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("finished_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("started_by", sa.String(500), nullable=False),
        sa.Column("issuer", sa.String(1000), nullable=True),
        sa.Column("tenant", sa.String(200), nullable=True),
        sa.Column("source_key", sa.String(500), nullable=False),
        sa.Column("source", JSON, nullable=False),
        sa.Column("as_of", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase_detail", sa.String(500), nullable=True),
        sa.Column("patients_total", sa.Integer(), nullable=True),
        sa.Column("patients_done", sa.Integer(), nullable=False),
        sa.Column("patient_errors", sa.Integer(), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("transaction_time", sa.String(64), nullable=True),
        sa.Column("previous_run_id", sa.String(64), nullable=True),
        sa.Column("rules_version", sa.String(100), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("work_dir", sa.Text(), nullable=True),
        sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name=op.f("ck_screening_runs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_runs")),
        sa.UniqueConstraint("page_token", name=op.f("uq_screening_runs_page_token")),
    )
    op.create_index(op.f("ix_screening_runs_created_at"), "screening_runs", ["created_at"])
    op.create_index("ix_screening_runs_source_key_created_at", "screening_runs", ["source_key", "created_at"])
    op.create_table(
        "screening_results",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.String(10), nullable=False),
        sa.Column("rules_version", sa.String(100), nullable=True),
        sa.Column("recommendation", sa.String(32), nullable=True),
        sa.Column("tace_resistance", sa.String(32), nullable=True),
        sa.Column("mrecist", sa.String(32), nullable=True),
        sa.Column("sorafenib_eligibility", sa.String(32), nullable=True),
        sa.Column("tace_candidacy", sa.String(32), nullable=True),
        sa.Column("child_pugh", sa.String(32), nullable=True),
        sa.Column("bclc", sa.String(32), nullable=True),
        sa.Column("ecog", sa.Integer(), nullable=True),
        sa.Column("missing", JSON, nullable=False),
        sa.Column("data_issues", sa.Integer(), nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.Column("error_kind", sa.String(200), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("assessment_z", sa.LargeBinary(), nullable=True),
        sa.Column("page_z", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["screening_runs.id"], name=op.f("fk_screening_results_run_id_screening_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "patient_id", name=op.f("pk_screening_results")),
    )
    op.create_index(
        "ix_screening_results_run_id_recommendation", "screening_results", ["run_id", "recommendation"]
    )


def downgrade() -> None:
    op.drop_index("ix_screening_results_run_id_recommendation", table_name="screening_results")
    op.drop_table("screening_results")
    op.drop_index("ix_screening_runs_source_key_created_at", table_name="screening_runs")
    op.drop_index(op.f("ix_screening_runs_created_at"), table_name="screening_runs")
    op.drop_table("screening_runs")
