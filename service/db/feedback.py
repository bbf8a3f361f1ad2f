"""CDS Hooks 2.0 feedback (dossier §1.6) and the cards it refers to.

When the service returns cards it calls :meth:`FeedbackRepository.record_cards` (card uuid → service,
topic code, indicator, stored-assessment id). Feedback names only the card's uuid; the summary joins
the two to count, per card type (topic code), how many cards were issued, accepted and overridden.

Feedback for a card uuid this database never recorded is **stored, with its topic unknown**: it
still documents what a clinician did, the EHR gets no error for a card issued before the database
existed or by another deployment, and the answer does not reveal which uuids the service issued. It
is summarised under ``topic_code=None`` with ``issued=0``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Table, distinct, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert

from service.db._engine import EngineSource
from service.db.models import (
    CARD_UUID_LENGTH,
    DISPLAY_LENGTH,
    FEEDBACK_OUTCOMES,
    ID_LENGTH,
    SERVICE_ID_LENGTH,
    SYSTEM_LENGTH,
    TOPIC_CODE_LENGTH,
    CardIssuedRow,
    FeedbackRow,
)
from service.db.types import ClientScope, as_utc, check_length, utcnow, where_scope

Outcome = Literal["accepted", "overridden"]
MAX_USER_COMMENT = 10_000
MAX_ACCEPTED_SUGGESTIONS = 100


@dataclass(frozen=True, slots=True)
class IssuedCard:
    """What is recorded about a returned card."""

    uuid: str
    topic_code: str | None = None
    topic_system: str | None = None
    indicator: str | None = None

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> IssuedCard | None:
        """From a CDS Hooks card (JSON); ``None`` for a card without ``uuid`` (it can get no feedback)."""
        uuid = card.get("uuid")
        if not uuid:
            return None
        source = card.get("source")
        if not isinstance(source, Mapping):
            source = {}
        topic = source.get("topic") or {}  # CDS Hooks: the card type is card.source.topic
        return cls(
            uuid=str(uuid),
            topic_code=topic.get("code"),
            topic_system=topic.get("system"),
            indicator=card.get("indicator"),
        )

    def check(self) -> None:
        check_length("card uuid", self.uuid, CARD_UUID_LENGTH, required=True)
        check_length("topic code", self.topic_code, TOPIC_CODE_LENGTH)
        check_length("topic system", self.topic_system, SYSTEM_LENGTH)
        check_length("indicator", self.indicator, 16)


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """One item of a feedback request's ``feedback`` array."""

    card_uuid: str
    outcome: Outcome
    outcome_timestamp: datetime
    accepted_suggestions: tuple[str, ...] = ()
    override_reason_code: str | None = None
    override_reason_system: str | None = None
    override_reason_display: str | None = None
    user_comment: str | None = None

    def __post_init__(self) -> None:
        check_length("card", self.card_uuid, CARD_UUID_LENGTH, required=True)
        if self.outcome not in FEEDBACK_OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(FEEDBACK_OUTCOMES)}, got {self.outcome!r:.40}")
        object.__setattr__(self, "outcome_timestamp", as_utc(self.outcome_timestamp, "outcomeTimestamp"))
        if len(self.accepted_suggestions) > MAX_ACCEPTED_SUGGESTIONS:
            raise ValueError(f"more than {MAX_ACCEPTED_SUGGESTIONS} acceptedSuggestions")
        for suggestion in self.accepted_suggestions:
            check_length("acceptedSuggestions id", suggestion, CARD_UUID_LENGTH, required=True)
        check_length("overrideReason.reason.code", self.override_reason_code, TOPIC_CODE_LENGTH)
        check_length("overrideReason.reason.system", self.override_reason_system, SYSTEM_LENGTH)
        check_length("overrideReason.reason.display", self.override_reason_display, DISPLAY_LENGTH)
        check_length("overrideReason.userComment", self.user_comment, MAX_USER_COMMENT)

    @classmethod
    def from_cds_hooks(cls, item: Mapping[str, Any]) -> FeedbackItem:
        """Parse one CDS Hooks 2.0 feedback item; ``ValueError`` (a message for a 400) if it breaks the spec.

        Required: ``card``, ``outcome`` (accepted | overridden), ``outcomeTimestamp`` (RFC 3339 with an
        offset), and ``acceptedSuggestions`` when the outcome is accepted.
        """
        if not isinstance(item, Mapping):
            raise ValueError("a feedback item must be an object")
        card = item.get("card")
        if not isinstance(card, str) or not card:
            raise ValueError("feedback item: 'card' (the card's uuid) is required")
        outcome = item.get("outcome")
        if outcome not in FEEDBACK_OUTCOMES:
            raise ValueError("feedback item: 'outcome' must be 'accepted' or 'overridden'")
        when = _outcome_timestamp(item.get("outcomeTimestamp"))
        suggestions = _accepted_suggestions(item.get("acceptedSuggestions"), outcome)
        values = _override_reason(item.get("overrideReason") or {})
        comment = values["userComment"]
        return cls(
            card_uuid=card,
            outcome=outcome,
            outcome_timestamp=when,
            accepted_suggestions=tuple(suggestions),
            override_reason_code=values["code"],
            override_reason_system=values["system"],
            override_reason_display=values["display"],
            user_comment=comment,
        )


def _outcome_timestamp(timestamp: object) -> datetime:
    """``outcomeTimestamp``: an RFC 3339 date-time with an offset."""
    if not isinstance(timestamp, str):
        raise ValueError("feedback item: 'outcomeTimestamp' is required")
    try:
        when = datetime.fromisoformat(timestamp)
    except ValueError:
        raise ValueError("feedback item: 'outcomeTimestamp' is not an RFC 3339 date-time") from None
    if when.tzinfo is None:
        raise ValueError("feedback item: 'outcomeTimestamp' must carry a time zone (RFC 3339)")
    return when


def _accepted_suggestions(raw_suggestions: object, outcome: object) -> list[str]:
    """The ids of ``acceptedSuggestions`` (required when the outcome is accepted)."""
    if raw_suggestions is None:
        if outcome == "accepted":
            raise ValueError("feedback item: 'acceptedSuggestions' is required when the outcome is accepted")
        raw_suggestions = []
    if not isinstance(raw_suggestions, list):
        raise ValueError("feedback item: 'acceptedSuggestions' must be an array")
    suggestions = []
    for suggestion in raw_suggestions:
        if not isinstance(suggestion, Mapping) or not isinstance(suggestion.get("id"), str):
            raise ValueError("feedback item: each accepted suggestion must be an object with an 'id'")
        suggestions.append(suggestion["id"])
    return suggestions


def _override_reason(override: object) -> dict[str, str | None]:
    """``overrideReason``: its reason Coding's code, system and display, and the user's comment (each a string)."""
    if not isinstance(override, Mapping):
        raise ValueError("feedback item: 'overrideReason' must be an object")
    reason = override.get("reason") or {}
    if not isinstance(reason, Mapping):
        raise ValueError("feedback item: 'overrideReason.reason' must be a Coding")
    values = {
        "code": reason.get("code"),
        "system": reason.get("system"),
        "display": reason.get("display"),
        "userComment": override.get("userComment"),
    }
    for name, value in values.items():
        if value is not None and not isinstance(value, str):
            raise ValueError(f"feedback item: overrideReason {name} must be a string")
    return values


@dataclass(frozen=True, slots=True)
class StoredFeedback:
    """A feedback item as stored, with the topic of its card when the card was recorded."""

    id: int
    received_at: datetime
    service_id: str
    item: FeedbackItem
    topic_code: str | None


@dataclass(frozen=True, slots=True)
class TopicSummary:
    """Feedback for one card type. Rates are over issued cards (ignored cards get no feedback); ``None``
    when none was issued. Each card counts once per outcome, however often its feedback was sent."""

    topic_code: str | None
    issued: int
    accepted: int
    overridden: int
    acceptance_rate: float | None
    override_rate: float | None


def insert_cards(dialect: str) -> Insert:
    """The INSERT of issued cards (rows of :meth:`FeedbackRepository.card_rows`), a uuid already recorded left as it
    was. The rows go as parameters, not ``.values(rows)``: one statement for any number of cards, compiled once and
    cached (SQLAlchemy's "insertmanyvalues" still sends one ``INSERT ... VALUES (...), (...) RETURNING``)."""
    return _INSERT_CARDS[dialect]


_CARDS = cast(Table, CardIssuedRow.__table__)
_INSERT_CARDS = {
    name: dialect_insert(_CARDS).on_conflict_do_nothing(index_elements=["card_uuid"]).returning(_CARDS.c.card_uuid)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


class FeedbackRepository:
    """``db.feedback``."""

    def __init__(self, source: EngineSource) -> None:
        self._source = source

    def card_rows(
        self,
        service_id: str,
        cards: Iterable[IssuedCard | Mapping[str, Any]],
        *,
        assessment_id: str | None = None,
        now: datetime | None = None,
        scope: ClientScope | None = None,
    ) -> list[dict[str, Any]]:
        """Returned cards (CDS Hooks card JSON or :class:`IssuedCard`) as rows of :func:`insert_cards`, checked;
        cards without a uuid are skipped, a uuid twice is one row."""
        check_length("service_id", service_id, SERVICE_ID_LENGTH, required=True)
        check_length("assessment_id", assessment_id, ID_LENGTH)
        created = as_utc(now, "now") if now is not None else utcnow()
        issued: dict[str, IssuedCard] = {}
        for card in cards:
            parsed = card if isinstance(card, IssuedCard) else IssuedCard.from_card(card)
            if parsed is None:
                continue
            parsed.check()
            issued.setdefault(parsed.uuid, parsed)
        return [
            {
                "card_uuid": card.uuid,
                "service_id": service_id,
                "topic_code": card.topic_code,
                "topic_system": card.topic_system,
                "indicator": card.indicator,
                "assessment_id": assessment_id,
                "created_at": created,
                "issuer": scope[0] if scope else None,
                "tenant": scope[1] if scope else None,
            }
            for card in issued.values()
        ]

    async def record_cards(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Record returned cards, rows of :meth:`card_rows`, in a transaction of their own; return how many were
        new (a uuid already recorded is left as it was)."""
        if not rows:
            return 0
        engine = self._source.engine
        async with engine.begin() as conn:
            # RETURNING lists only the rows inserted
            return len((await conn.execute(insert_cards(engine.dialect.name), rows)).all())

    async def add_feedback(
        self,
        service_id: str,
        items: Iterable[FeedbackItem | Mapping[str, Any]],
        *,
        now: datetime | None = None,
        scope: ClientScope | None = None,
    ) -> int:
        """Store feedback items (``scope``: the client that sent them) (parsed, or CDS Hooks JSON, parsed here: ``ValueError`` if invalid).

        All or nothing, in one transaction; returns how many were stored.
        """
        check_length("service_id", service_id, SERVICE_ID_LENGTH, required=True)
        received = as_utc(now, "now") if now is not None else utcnow()
        parsed = [item if isinstance(item, FeedbackItem) else FeedbackItem.from_cds_hooks(item) for item in items]
        if not parsed:
            return 0
        rows = [
            {
                "received_at": received,
                "service_id": service_id,
                "card_uuid": item.card_uuid,
                "outcome": item.outcome,
                "accepted_suggestions": list(item.accepted_suggestions),
                "override_reason_code": item.override_reason_code,
                "override_reason_system": item.override_reason_system,
                "override_reason_display": item.override_reason_display,
                "user_comment": item.user_comment,
                "outcome_timestamp": item.outcome_timestamp,
                "issuer": scope[0] if scope else None,
                "tenant": scope[1] if scope else None,
            }
            for item in parsed
        ]
        async with self._source.engine.begin() as conn:
            await conn.execute(insert(FeedbackRow), rows)
        return len(rows)

    async def list_feedback(
        self,
        *,
        service_id: str | None = None,
        card_uuid: str | None = None,
        limit: int = 100,
        scope: ClientScope | None = None,
    ) -> list[StoredFeedback]:
        """Stored feedback, oldest first, with each card's topic when known."""
        f, c = FeedbackRow.__table__, CardIssuedRow.__table__
        query = (
            select(f, c.c.topic_code)
            .select_from(f.outerjoin(c, c.c.card_uuid == f.c.card_uuid))
            .order_by(f.c.received_at, f.c.id)
            .limit(max(1, min(limit, 10_000)))
        )
        if service_id is not None:
            query = query.where(f.c.service_id == service_id)
        if card_uuid is not None:
            query = query.where(f.c.card_uuid == card_uuid)
        query = where_scope(query, f, scope)
        async with self._source.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            StoredFeedback(
                id=row.id,
                received_at=row.received_at,
                service_id=row.service_id,
                topic_code=row.topic_code,
                item=FeedbackItem(
                    card_uuid=row.card_uuid,
                    outcome=row.outcome,
                    outcome_timestamp=row.outcome_timestamp,
                    accepted_suggestions=tuple(row.accepted_suggestions),
                    override_reason_code=row.override_reason_code,
                    override_reason_system=row.override_reason_system,
                    override_reason_display=row.override_reason_display,
                    user_comment=row.user_comment,
                ),
            )
            for row in rows
        ]

    async def feedback_summary(
        self, service_id: str | None = None, *, scope: ClientScope | None = None
    ) -> list[TopicSummary]:
        """Per card type (topic code): issued, accepted, overridden, and their rates over issued cards.

        ``scope``: only the cards issued to, and the feedback sent by, that client (issuer, tenant).

        Sorted by topic code, the unknown topic (``None``) last.
        """
        f, c = FeedbackRow.__table__, CardIssuedRow.__table__
        issued_query = select(c.c.topic_code, func.count()).group_by(c.c.topic_code)
        outcome_query = (
            select(c.c.topic_code, f.c.outcome, func.count(distinct(f.c.card_uuid)))
            .select_from(f.outerjoin(c, c.c.card_uuid == f.c.card_uuid))
            .group_by(c.c.topic_code, f.c.outcome)
        )
        if service_id is not None:
            issued_query = issued_query.where(c.c.service_id == service_id)
            outcome_query = outcome_query.where(f.c.service_id == service_id)
        issued_query = where_scope(issued_query, c, scope)
        outcome_query = where_scope(outcome_query, f, scope)
        async with self._source.engine.connect() as conn:
            issued_rows = (await conn.execute(issued_query)).all()
            outcome_rows = (await conn.execute(outcome_query)).all()
        counts: dict[str | None, dict[str, int]] = {}
        for topic, count in issued_rows:
            counts.setdefault(cast("str | None", topic), {"issued": 0, "accepted": 0, "overridden": 0})["issued"] = cast(int, count)
        for topic, outcome, count in outcome_rows:
            counts.setdefault(cast("str | None", topic), {"issued": 0, "accepted": 0, "overridden": 0})[cast(str, outcome)] = cast(int, count)

        def rate(part: int, whole: int) -> float | None:
            return part / whole if whole else None

        return [
            TopicSummary(
                topic_code=topic,
                issued=n["issued"],
                accepted=n["accepted"],
                overridden=n["overridden"],
                acceptance_rate=rate(n["accepted"], n["issued"]),
                override_rate=rate(n["overridden"], n["issued"]),
            )
            for topic, n in sorted(counts.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        ]
