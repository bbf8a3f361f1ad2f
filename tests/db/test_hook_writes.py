"""Database.save_assessment_with_cards(): a hook call's stored assessment and issued cards, in one transaction,
committed when it returns (on SQLite through the stdlib driver, in one worker-thread hop)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.db.test_assessments import ASSESSMENT, row

pytestmark = pytest.mark.anyio
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _row(database, **overrides):
    return row(database, **({"page": {"course": []}, "now": datetime.now(UTC)} | overrides))


async def test_both_are_committed_when_it_returns(database, replica):
    row = _row(database)
    cards = database.feedback.card_rows(
        "hcc-sorafenib", [{"uuid": "c-1", "indicator": "info"}, {"uuid": "c-2", "indicator": "warning"}],
        assessment_id=row["id"], scope=("https://ehr.example", None),
    )  # fmt: skip
    await database.save_assessment_with_cards(row, cards)
    # another replica (its own connections) reads both at once
    stored = await replica.assessments.get_assessment(row["id"])
    assert stored is not None and stored.assessment == ASSESSMENT and stored.page == {"course": []}
    summary = {t.topic_code: t for t in await replica.feedback.feedback_summary("hcc-sorafenib")}
    assert summary[None].issued == 2
    # a card already recorded is left as it was; no card at all is a row of its own
    await database.save_assessment_with_cards(_row(database), cards)
    lone = _row(database)
    await database.save_assessment_with_cards(lone, [])
    assert await replica.assessments.get_assessment(lone["id"]) is not None
    summary = {t.topic_code: t for t in await replica.feedback.feedback_summary("hcc-sorafenib")}
    assert summary[None].issued == 2


async def test_nothing_is_written_when_a_statement_fails(database):
    first = _row(database)
    await database.save_assessment_with_cards(first)
    again = _row(database) | {"id": first["id"]}  # the same primary key: the assessment's INSERT fails
    cards = database.feedback.card_rows("hcc-sorafenib", [{"uuid": "c-9", "indicator": "info"}], assessment_id=None)
    with pytest.raises(IntegrityError):
        await database.save_assessment_with_cards(again, cards)
    assert await database.feedback.feedback_summary("hcc-sorafenib") == []  # the cards went with it
    # a card naming an assessment that does not exist (foreign keys are on, on both drivers): nothing stays
    orphan = database.feedback.card_rows("hcc-sorafenib", [{"uuid": "c-10", "indicator": "info"}], assessment_id="y" * 43)
    fresh = _row(database)
    with pytest.raises(IntegrityError):
        await database.save_assessment_with_cards(fresh, orphan)
    assert await database.assessments.get_assessment(fresh["id"]) is None


@sqlite_only
async def test_on_sqlite_the_writes_use_the_service_connections_settings(database):
    """The stdlib driver's connections are configured as aiosqlite's: WAL, foreign keys, no checkpoint in a COMMIT."""
    await database.save_assessment_with_cards(_row(database))
    with database._sync_engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == int(database.timeout * 1000)


async def test_the_repositories_check_rows_before_anything_is_written(database):
    with pytest.raises(ValueError):
        _row(database, patient_ref="not a reference")
    with pytest.raises(ValueError):
        database.feedback.card_rows("x" * 500, [{"uuid": "c-1"}])
    assert database.feedback.card_rows("hcc-sorafenib", [{"summary": "no uuid"}]) == []
