"""Stored assessments: round trip, expiry, unguessable ids, purge, persistence across a restart."""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.db import Database, ExpiredAssessment, StoredAssessment, new_assessment_id

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ASSESSMENT = {
    "recommendation": {
        "code": "sorafenib-plus-tace",
        "reasons": ["TACE-resistant (JSH 2010)", "Child-Pugh A – 5 points"],
    },
    "child_pugh": {"score": 5, "class": "A"},
    "nested": {"list": [1, 2.5, None, True], "zeta": "last", "alpha": "first"},
}
CARDS = [{"uuid": "c-1", "summary": "Sorafenib + TACE fits the study's criteria", "indicator": "info"}]


ROW = {
    "patient_ref": "Patient/123",
    "service_id": "hcc-sorafenib",
    "rules_version": "rules-1.0+abc123",
    "assessment": ASSESSMENT,
    "cards": CARDS,
    "hook_instance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "now": T0,
}


def row(db: Database, **overrides) -> dict:
    """A row of ``new_row`` from :data:`ROW` and ``overrides``."""
    return db.assessments.new_row(**(ROW | overrides))


async def save(db: Database, **overrides) -> str:
    return await db.assessments.save_assessment(row(db, **overrides))


async def test_round_trip(database):
    assessment_id = await save(database)
    record = await database.assessments.get_assessment(assessment_id, T0 + timedelta(minutes=5))
    assert isinstance(record, StoredAssessment)
    assert record.expired is False
    assert record.id == assessment_id
    assert record.assessment == ASSESSMENT
    assert list(record.assessment["nested"]) == ["list", "zeta", "alpha"]  # key order kept (JSON, not JSONB)
    assert record.cards == CARDS
    assert (record.patient_ref, record.service_id, record.rules_version) == (
        "Patient/123",
        "hcc-sorafenib",
        "rules-1.0+abc123",
    )
    assert record.hook_instance == "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
    assert record.created_at == T0 and record.created_at.tzinfo is not None
    assert record.created_at.utcoffset() == timedelta(0)
    assert record.expires_at == T0 + timedelta(hours=24)


async def test_optional_fields_and_other_time_zones(database):
    paris = timezone(timedelta(hours=1))
    assessment_id = await save(database, cards=None, hook_instance=None, now=T0.astimezone(paris))
    record = await database.assessments.get_assessment(assessment_id, T0)
    assert isinstance(record, StoredAssessment)
    assert record.cards is None and record.hook_instance is None
    assert record.created_at == T0 and record.created_at.tzinfo == UTC


async def test_unknown_and_malformed_ids_read_as_none(database):
    await save(database)
    assert await database.assessments.get_assessment(new_assessment_id(), T0) is None
    for bad in ("", "x", "../../etc/passwd", "a" * 500, "' OR 1=1 --"):
        assert await database.assessments.get_assessment(bad, T0) is None


async def test_expiry_is_distinct_from_unknown(database):
    assessment_id = await save(database)
    assert isinstance(
        await database.assessments.get_assessment(assessment_id, T0 + timedelta(hours=23, minutes=59)), StoredAssessment
    )
    expired = await database.assessments.get_assessment(assessment_id, T0 + timedelta(hours=24))
    assert isinstance(expired, ExpiredAssessment)
    assert expired.expired is True
    assert expired.expires_at == T0 + timedelta(hours=24)
    assert not hasattr(expired, "assessment") and not hasattr(expired, "cards")  # nothing to show by mistake


async def test_configurable_lifetime(database_url):
    db = Database.from_url(database_url, assessment_lifetime=timedelta(minutes=30))
    await db.migrate()
    async with db:
        assessment_id = await save(db)
        assert (await db.assessments.get_assessment(assessment_id, T0)).expires_at == T0 + timedelta(minutes=30)
        assert (await db.assessments.get_assessment(assessment_id, T0 + timedelta(minutes=31))).expired
        other = await save(db, lifetime=timedelta(hours=2))
        assert (await db.assessments.get_assessment(other, T0 + timedelta(minutes=31))).expired is False
    with pytest.raises(ValueError):
        Database.from_url(database_url, assessment_lifetime=timedelta(0))


async def test_purge_expired(database):
    old = await save(database)
    fresh = await save(database, now=T0 + timedelta(hours=12))
    await database.feedback.record_cards(database.feedback.card_rows(
        "hcc-sorafenib", [{"uuid": "card-old", "source": {"label": "l", "topic": {"code": "x"}}}], assessment_id=old
    ))
    assert await database.assessments.purge_expired(T0 + timedelta(hours=25)) == 1
    assert await database.assessments.get_assessment(old, T0 + timedelta(hours=25)) is None
    assert isinstance(await database.assessments.get_assessment(fresh, T0 + timedelta(hours=25)), StoredAssessment)
    # the issued-card record outlives the page (foreign key ON DELETE SET NULL: foreign keys are on)
    summary = await database.feedback.feedback_summary()
    assert [(s.topic_code, s.issued) for s in summary] == [("x", 1)]
    assert await database.assessments.purge_expired(T0 + timedelta(hours=25)) == 0


async def test_ids_are_unguessable(database):
    ids = [await save(database) for _ in range(200)]
    ids += [new_assessment_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", i) for i in ids)  # token_urlsafe(32): 256 bits
    # no sequence: consecutive ids share no prefix, and characters are spread over the alphabet
    stored = ids[:200]
    assert all(a[:4] != b[:4] for a, b in zip(stored, stored[1:]))
    counts = Counter("".join(ids))
    total = sum(counts.values())
    entropy = -sum(c / total * math.log2(c / total) for c in counts.values())
    assert len(counts) == 64 and entropy > 5.95  # log2(64) = 6 bits per character


async def test_persisted_across_a_restart(database_url):
    first = Database.from_url(database_url)
    await first.migrate()
    await first.start()
    assessment_id = await save(first)
    await first.stop()
    with pytest.raises(RuntimeError):
        await first.assessments.get_assessment(assessment_id, T0)

    second = Database.from_url(database_url)
    await second.migrate()  # at head already: nothing to do
    async with second:
        record = await second.assessments.get_assessment(assessment_id, T0)
        assert isinstance(record, StoredAssessment) and record.assessment == ASSESSMENT


async def test_bad_values_are_refused(database):
    with pytest.raises(ValueError):
        await save(database, now=datetime(2026, 3, 1, 12, 0))  # naive
    with pytest.raises(ValueError):
        await save(database, patient_ref="Bilirubin 3.2 mg/dL")
    with pytest.raises(ValueError):
        await save(database, hook_instance="h" * 201)
    with pytest.raises(ValueError):
        await database.assessments.get_assessment(new_assessment_id(), datetime(2026, 3, 1))
