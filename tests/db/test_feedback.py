"""CDS Hooks 2.0 feedback: parsing, storage, issued cards, and the per-topic summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.db import FeedbackItem, IssuedCard

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def card(uuid: str, topic: str | None = "sorafenib-plus-tace", indicator: str = "info") -> dict:
    result = {"uuid": uuid, "summary": "…", "indicator": indicator, "source": {"label": "hcc-cds"}}
    if topic:
        result["source"]["topic"] = {"system": "https://hcc-cds.example/topics", "code": topic, "display": topic}
    return result


def accepted(uuid: str, *suggestions: str) -> dict:
    return {
        "card": uuid,
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": s} for s in suggestions or ("s-1",)],
        "outcomeTimestamp": "2026-03-01T12:05:00Z",
    }


def overridden(uuid: str, comment: str | None = None) -> dict:
    item = {
        "card": uuid,
        "outcome": "overridden",
        "overrideReason": {
            "reason": {
                "code": "patient-refused",
                "system": "https://hcc-cds.example/override-reasons",
                "display": "Patient refused",
            },
        },
        "outcomeTimestamp": "2026-03-01T13:05:00+01:00",
    }
    if comment is not None:
        item["overrideReason"]["userComment"] = comment
    return item


async def record(database, service_id, cards, **kwargs) -> int:
    """record_cards() of card_rows(): how many of ``cards`` were new."""
    return await database.feedback.record_cards(database.feedback.card_rows(service_id, cards, **kwargs))


async def test_feedback_round_trip(database):
    await record(database, "hcc-sorafenib", [card("c-1"), card("c-2", topic="continue-tace")], now=T0)
    stored = await database.feedback.add_feedback(
        "hcc-sorafenib", [accepted("c-1", "s-1", "s-2"), overridden("c-2", comment="discussed at tumour board")], now=T0
    )
    assert stored == 2
    first, second = await database.feedback.list_feedback(service_id="hcc-sorafenib")
    assert first.received_at == T0 and first.service_id == "hcc-sorafenib"
    assert first.topic_code == "sorafenib-plus-tace"
    assert first.item == FeedbackItem(
        card_uuid="c-1",
        outcome="accepted",
        outcome_timestamp=datetime(2026, 3, 1, 12, 5, tzinfo=UTC),
        accepted_suggestions=("s-1", "s-2"),
    )
    assert second.topic_code == "continue-tace"
    assert second.item.outcome == "overridden"
    assert second.item.outcome_timestamp == datetime(2026, 3, 1, 12, 5, tzinfo=UTC)  # +01:00 → UTC
    assert second.item.outcome_timestamp.tzinfo == UTC
    assert (second.item.override_reason_code, second.item.override_reason_display) == (
        "patient-refused",
        "Patient refused",
    )
    assert second.item.override_reason_system == "https://hcc-cds.example/override-reasons"
    assert second.item.user_comment == "discussed at tumour board"
    assert second.item.accepted_suggestions == ()


async def test_feedback_for_an_unknown_card_is_stored_with_topic_unknown(database):
    assert await database.feedback.add_feedback("hcc-sorafenib", [overridden("never-issued")], now=T0) == 1
    (item,) = await database.feedback.list_feedback(card_uuid="never-issued")
    assert item.topic_code is None
    (summary,) = await database.feedback.feedback_summary()
    assert (summary.topic_code, summary.issued, summary.overridden) == (None, 0, 1)
    assert summary.acceptance_rate is None and summary.override_rate is None


async def test_record_cards(database):
    cards = [
        card("c-1"),
        card("c-1"),
        {"summary": "no uuid: no feedback possible"},
        IssuedCard("c-3", "x", None, "warning"),
    ]
    assessment_id = await database.assessments.save_assessment(database.assessments.new_row(
        patient_ref="Patient/1", service_id="hcc-sorafenib", rules_version="1", assessment={}, now=T0
    ))
    assert await record(database, "hcc-sorafenib", cards, assessment_id=assessment_id, now=T0) == 2
    assert await record(database, "hcc-sorafenib", [card("c-1"), card("c-4")], now=T0) == 1  # c-1 known
    assert await record(database, "hcc-sorafenib", [], now=T0) == 0


async def test_summary_rates(database):
    service = "hcc-sorafenib"
    issued = [card(f"a-{i}", topic="sorafenib-plus-tace") for i in range(10)]
    issued += [card(f"b-{i}", topic="continue-tace", indicator="warning") for i in range(4)]
    await record(database, service, issued, now=T0)
    await record(database, "other-service", [card("o-1", topic="sorafenib-plus-tace")], now=T0)
    items = [accepted(f"a-{i}") for i in range(6)] + [overridden(f"a-{i}") for i in (6, 7)]
    items += [accepted("a-0")]  # sent twice: the card counts once
    items += [overridden("b-0"), overridden("b-1"), overridden("b-2"), accepted("b-3")]
    assert await database.feedback.add_feedback(service, items, now=T0) == len(items)
    await database.feedback.add_feedback("other-service", [overridden("o-1")], now=T0)

    summary = {s.topic_code: s for s in await database.feedback.feedback_summary(service)}
    assert set(summary) == {"continue-tace", "sorafenib-plus-tace"}
    soraf = summary["sorafenib-plus-tace"]
    assert (soraf.issued, soraf.accepted, soraf.overridden) == (10, 6, 2)
    assert soraf.acceptance_rate == pytest.approx(0.6) and soraf.override_rate == pytest.approx(0.2)
    tace = summary["continue-tace"]
    assert (tace.issued, tace.accepted, tace.overridden) == (4, 1, 3)
    assert tace.acceptance_rate == pytest.approx(0.25) and tace.override_rate == pytest.approx(0.75)

    everything = {s.topic_code: s for s in await database.feedback.feedback_summary()}
    assert (everything["sorafenib-plus-tace"].issued, everything["sorafenib-plus-tace"].overridden) == (11, 3)
    assert [s.topic_code for s in await database.feedback.feedback_summary()] == [
        "continue-tace",
        "sorafenib-plus-tace",
    ]


async def test_summary_of_nothing(database):
    assert await database.feedback.feedback_summary() == []


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"outcome": "accepted", "acceptedSuggestions": [], "outcomeTimestamp": "2026-03-01T12:00:00Z"}, "card"),
        ({"card": "c", "outcome": "ignored", "outcomeTimestamp": "2026-03-01T12:00:00Z"}, "outcome"),
        ({"card": "c", "outcome": "overridden"}, "outcomeTimestamp"),
        ({"card": "c", "outcome": "overridden", "outcomeTimestamp": "yesterday"}, "RFC 3339"),
        ({"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-03-01T12:00:00"}, "time zone"),
        ({"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-03-01T12:00:00Z"}, "acceptedSuggestions"),
        (
            {
                "card": "c",
                "outcome": "accepted",
                "acceptedSuggestions": ["s"],
                "outcomeTimestamp": "2026-03-01T12:00:00Z",
            },
            "id",
        ),
        (
            {"card": "c", "outcome": "overridden", "overrideReason": "no", "outcomeTimestamp": "2026-03-01T12:00:00Z"},
            "overrideReason",
        ),
        ({"card": "c" * 201, "outcome": "overridden", "outcomeTimestamp": "2026-03-01T12:00:00Z"}, "card"),
        ("not an object", "object"),
    ],
)
def test_invalid_items_are_refused_with_a_message(item, message):
    with pytest.raises(ValueError, match=message):
        FeedbackItem.from_cds_hooks(item)


async def test_add_feedback_is_all_or_nothing(database):
    with pytest.raises(ValueError):
        await database.feedback.add_feedback("hcc-sorafenib", [accepted("c-1"), {"card": "c-2"}], now=T0)
    assert await database.feedback.list_feedback() == []
    assert await database.feedback.add_feedback("hcc-sorafenib", [], now=T0) == 0


async def test_feedback_times_are_utc(database):
    await database.feedback.add_feedback("s", [accepted("c")], now=T0 + timedelta(seconds=1))
    (item,) = await database.feedback.list_feedback()
    assert item.received_at.tzinfo == UTC and item.item.outcome_timestamp.tzinfo == UTC
