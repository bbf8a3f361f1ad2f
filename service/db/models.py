"""The tables (SQLAlchemy 2.x declarative). ``Base.metadata`` must equal the Alembic migrations:
``tests/db/test_migrations.py`` runs autogenerate's ``compare_metadata`` against a migrated database.

Changing a table means adding a migration under ``migrations/versions/``
(``python -m service.db revision --autogenerate -m "..."``), never editing a released one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.db.types import UTCDateTime

# Deterministic constraint names on every backend, so later migrations can name what they alter.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Column sizes; the repositories check values against them before writing.
ID_LENGTH = 64
REF_LENGTH = 200  # "Patient/<FHIR id of at most 64 characters>" fits easily
SERVICE_ID_LENGTH = 100
VERSION_LENGTH = 100
HOOK_INSTANCE_LENGTH = 200
CARD_UUID_LENGTH = 200
TOPIC_CODE_LENGTH = 200
SYSTEM_LENGTH = 500
DISPLAY_LENGTH = 500
ACTOR_LENGTH = 500
ROUTE_LENGTH = 300
REQUEST_ID_LENGTH = 100
ISS_LENGTH = 1000
JTI_LENGTH = 500
TENANT_LENGTH = 200
HINT_LENGTH = 100  # a stored assessment id a SMART launch names (a hint, never authorisation)
SCOPE_LENGTH = 4000

# Auto-incrementing 64-bit keys; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# JSON, not JSONB: the stored assessment and cards come back exactly as written (key order kept).
JsonDoc = JSON(none_as_null=True)

FEEDBACK_OUTCOMES = ("accepted", "overridden")
AUDIT_KINDS = ("hook-call", "rest-call", "page-view", "feedback", "smart-launch", "smart-view", "smart-write")
SCREENING_STATUSES = ("queued", "exporting", "partitioning", "assessing", "complete", "failed", "cancelled")
TOKEN_LENGTH = 32  # a short column holding a result token (recommendation code, status, mRECIST category)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StoredAssessmentRow(Base):
    """One call's result, shown by the page ``/assessments/{id}``; the random id is the page's authorisation."""

    __tablename__ = "stored_assessments"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    patient_ref: Mapped[str] = mapped_column(String(REF_LENGTH), nullable=False)
    hook_instance: Mapped[str | None] = mapped_column(String(HOOK_INSTANCE_LENGTH), nullable=True)
    service_id: Mapped[str] = mapped_column(String(SERVICE_ID_LENGTH), nullable=False)
    rules_version: Mapped[str] = mapped_column(String(VERSION_LENGTH), nullable=False)
    assessment: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False)
    cards: Mapped[list[Any] | None] = mapped_column(JsonDoc, nullable=True)
    # what only the page draws (the course of the disease, readable evidence): not the assessment JSON
    page: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, nullable=True)


class CardIssuedRow(Base):
    """A card the service returned: lets feedback (which names only the card's uuid) be counted per topic."""

    __tablename__ = "cards_issued"
    __table_args__ = (Index("ix_cards_issued_issuer_tenant", "issuer", "tenant"),)

    card_uuid: Mapped[str] = mapped_column(String(CARD_UUID_LENGTH), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(SERVICE_ID_LENGTH), nullable=False, index=True)
    topic_code: Mapped[str | None] = mapped_column(String(TOPIC_CODE_LENGTH), nullable=True, index=True)
    topic_system: Mapped[str | None] = mapped_column(String(SYSTEM_LENGTH), nullable=True)
    indicator: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # kept after the stored assessment is purged (feedback statistics outlive the page)
    assessment_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("stored_assessments.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # the CDS client the card was issued to (None: demo mode, or before revision 0002)
    issuer: Mapped[str | None] = mapped_column(String(ISS_LENGTH), nullable=True)
    tenant: Mapped[str | None] = mapped_column(String(TENANT_LENGTH), nullable=True)


class FeedbackRow(Base):
    """One CDS Hooks 2.0 feedback item (``POST /cds-services/{id}/feedback``)."""

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint(_in("outcome", FEEDBACK_OUTCOMES), name="outcome"),
        Index("ix_feedback_issuer_tenant", "issuer", "tenant"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    service_id: Mapped[str] = mapped_column(String(SERVICE_ID_LENGTH), nullable=False, index=True)
    # no foreign key: feedback for a card this database never recorded is kept (topic unknown)
    card_uuid: Mapped[str] = mapped_column(String(CARD_UUID_LENGTH), nullable=False, index=True)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    accepted_suggestions: Mapped[list[str]] = mapped_column(JSON(), nullable=False)
    override_reason_code: Mapped[str | None] = mapped_column(String(TOPIC_CODE_LENGTH), nullable=True)
    override_reason_system: Mapped[str | None] = mapped_column(String(SYSTEM_LENGTH), nullable=True)
    override_reason_display: Mapped[str | None] = mapped_column(String(DISPLAY_LENGTH), nullable=True)
    user_comment: Mapped[str | None] = mapped_column(Text(), nullable=True)
    outcome_timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    issuer: Mapped[str | None] = mapped_column(String(ISS_LENGTH), nullable=True)
    tenant: Mapped[str | None] = mapped_column(String(TENANT_LENGTH), nullable=True)


class JtiSeenRow(Base):
    """JWT ids already used, per issuer, kept until the token expires (replay protection)."""

    __tablename__ = "jti_seen"

    iss: Mapped[str] = mapped_column(String(ISS_LENGTH), primary_key=True)
    jti: Mapped[str] = mapped_column(String(JTI_LENGTH), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)


class AuditEventRow(Base):
    """Who called what, when, with which outcome. A patient *reference* only: never clinical data."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(_in("kind", AUDIT_KINDS), name="kind"),
        Index("ix_audit_events_patient_ref_at", "patient_ref", "at"),
        Index("ix_audit_events_issuer_tenant_at", "issuer", "tenant", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    actor: Mapped[str] = mapped_column(String(ACTOR_LENGTH), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    route: Mapped[str] = mapped_column(String(ROUTE_LENGTH), nullable=False)
    service_id: Mapped[str | None] = mapped_column(String(SERVICE_ID_LENGTH), nullable=True)
    patient_ref: Mapped[str | None] = mapped_column(String(REF_LENGTH), nullable=True)
    hook_instance: Mapped[str | None] = mapped_column(String(HOOK_INSTANCE_LENGTH), nullable=True)
    rules_version: Mapped[str | None] = mapped_column(String(VERSION_LENGTH), nullable=True)
    outcome: Mapped[int] = mapped_column(Integer(), nullable=False)
    request_id: Mapped[str | None] = mapped_column(String(REQUEST_ID_LENGTH), nullable=True)
    # the authenticated client (None: demo mode, a refused call, or before revision 0002)
    issuer: Mapped[str | None] = mapped_column(String(ISS_LENGTH), nullable=True)
    tenant: Mapped[str | None] = mapped_column(String(TENANT_LENGTH), nullable=True)


class ScreeningRunRow(Base):
    """One screening of a source (``hcc-cds screen``, ``POST /api/v1/screenings``): its progress and counts.

    ``id`` names the run in the operator API; ``page_token`` (random, 256 bits) is the worklist page's only
    authorisation, as a stored assessment's id is its page's.
    """

    __tablename__ = "screening_runs"
    __table_args__ = (
        CheckConstraint(_in("status", SCREENING_STATUSES), name="status"),
        Index("ix_screening_runs_source_key_created_at", "source_key", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    page_token: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH), nullable=False)
    issuer: Mapped[str | None] = mapped_column(String(ISS_LENGTH), nullable=True)
    tenant: Mapped[str | None] = mapped_column(String(TENANT_LENGTH), nullable=True)
    # the previous complete run of the same source_key is what "changes" compare against
    source_key: Mapped[str] = mapped_column(String(SYSTEM_LENGTH), nullable=False)
    source: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False)
    as_of: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    phase_detail: Mapped[str | None] = mapped_column(String(DISPLAY_LENGTH), nullable=True)
    patients_total: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    patients_done: Mapped[int] = mapped_column(Integer(), nullable=False)
    patient_errors: Mapped[int] = mapped_column(Integer(), nullable=False)
    # the export's and the partitioning's counts (malformed lines, unexpected types, notes, errors)
    counts: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False)
    transaction_time: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous_run_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    rules_version: Mapped[str | None] = mapped_column(String(VERSION_LENGTH), nullable=True)
    message: Mapped[str | None] = mapped_column(Text(), nullable=True)
    work_dir: Mapped[str | None] = mapped_column(Text(), nullable=True)


class ScreeningResultRow(Base):
    """One patient of one run: the worklist columns, what changed since the previous run, and the stored
    assessment and page data (zlib-compressed JSON: ~5.6 KB instead of ~24 KB) for the patient's page."""

    __tablename__ = "screening_results"
    __table_args__ = (Index("ix_screening_results_run_id_recommendation", "run_id", "recommendation"),)

    run_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("screening_runs.id", ondelete="CASCADE"), primary_key=True
    )
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer(), nullable=False)
    as_of: Mapped[str] = mapped_column(String(10), nullable=False)
    rules_version: Mapped[str | None] = mapped_column(String(VERSION_LENGTH), nullable=True)
    recommendation: Mapped[str | None] = mapped_column(String(TOKEN_LENGTH), nullable=True)
    tace_resistance: Mapped[str | None] = mapped_column(String(TOKEN_LENGTH), nullable=True)
    mrecist: Mapped[str | None] = mapped_column(String(TOKEN_LENGTH), nullable=True)
    sorafenib_eligibility: Mapped[str | None] = mapped_column(String(TOKEN_LENGTH), nullable=True)
    tace_candidacy: Mapped[str | None] = mapped_column(String(TOKEN_LENGTH), nullable=True)
    child_pugh: Mapped[str | None] = mapped_column(String(TOKEN_LENGTH), nullable=True)
    bclc: Mapped[str | None] = mapped_column(String(TOKEN_LENGTH), nullable=True)
    ecog: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    missing: Mapped[list[str]] = mapped_column(JsonDoc, nullable=False)
    data_issues: Mapped[int] = mapped_column(Integer(), nullable=False)
    changes: Mapped[list[str]] = mapped_column(JsonDoc, nullable=False)
    error_kind: Mapped[str | None] = mapped_column(String(TOPIC_CODE_LENGTH), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text(), nullable=True)
    assessment_z: Mapped[bytes | None] = mapped_column(LargeBinary(), nullable=True)
    page_z: Mapped[bytes | None] = mapped_column(LargeBinary(), nullable=True)


class SmartLaunchRow(Base):
    """A SMART launch between the redirect to the EHR's authorize endpoint and the callback (10 minutes,
    used once): the PKCE verifier and the nonce, encrypted. Keyed by the SHA-256 of ``state``."""

    __tablename__ = "smart_launches"

    state_sha256: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    iss: Mapped[str] = mapped_column(String(ISS_LENGTH), nullable=False)
    launch: Mapped[str] = mapped_column(Text(), nullable=False)
    assessment_hint: Mapped[str | None] = mapped_column(String(HINT_LENGTH), nullable=True)
    secret_enc: Mapped[str] = mapped_column(Text(), nullable=False)  # Fernet: {code_verifier, nonce}


class SmartSessionRow(Base):
    """A browser's session with the SMART app, keyed by the SHA-256 of its cookie's random id. The access
    token and the CSRF token are Fernet-encrypted (``secret_enc``); the rest is what the EHR granted."""

    __tablename__ = "smart_sessions"

    id_sha256: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    iss: Mapped[str] = mapped_column(String(ISS_LENGTH), nullable=False)
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    fhir_user: Mapped[str | None] = mapped_column(String(REF_LENGTH), nullable=True)
    client_id: Mapped[str] = mapped_column(String(ACTOR_LENGTH), nullable=False)
    scope: Mapped[str] = mapped_column(Text(), nullable=False)
    assessment_hint: Mapped[str | None] = mapped_column(String(HINT_LENGTH), nullable=True)
    secret_enc: Mapped[str] = mapped_column(Text(), nullable=False)  # Fernet: {access_token, csrf_token}


class SmartFormIdRow(Base):
    """A form id a session has submitted: the primary key makes a second submission of the same form fail
    (double submit), whichever replica receives it. Deleted with its session."""

    __tablename__ = "smart_form_ids"

    session_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("smart_sessions.id_sha256", ondelete="CASCADE"), primary_key=True
    )
    form_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
