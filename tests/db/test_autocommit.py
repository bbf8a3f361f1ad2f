"""Database.autocommit(): the hook's writes commit statement by statement, and the pooled connection
goes back to transactions for everything else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from service.db.models import StoredAssessmentRow
from tests.db.test_assessments import save

pytestmark = pytest.mark.anyio


async def test_each_statement_is_committed_at_once(database, replica):
    async with database.autocommit() as connection:
        stored = await save(database, connection=connection, now=datetime.now(UTC))
        # another replica reads it before this connection is given back
        assert (await replica.assessments.get_assessment(stored)) is not None
        issued = await database.feedback.record_cards(
            "hcc-sorafenib", [{"uuid": "autocommit-card", "indicator": "info"}], assessment_id=stored,
            connection=connection,
        )  # fmt: skip
        assert issued == 1
    summary = {t.topic_code: t for t in await replica.feedback.feedback_summary("hcc-sorafenib")}
    assert summary[None].issued >= 1


async def test_afterwards_a_transaction_still_rolls_back(database):
    async with database.autocommit() as connection:
        await save(database, connection=connection)
    row = {
        "id": "x" * 43, "created_at": datetime.now(UTC), "expires_at": datetime.now(UTC), "patient_ref": "Patient/1",
        "hook_instance": None, "service_id": "s", "rules_version": "r", "assessment": {}, "cards": None,
    }  # fmt: skip
    with pytest.raises(RuntimeError):
        async with database.engine.begin() as conn:
            await conn.execute(insert(StoredAssessmentRow.__table__), row)
            raise RuntimeError("roll back")
    assert await database.assessments.get_assessment("x" * 43) is None
