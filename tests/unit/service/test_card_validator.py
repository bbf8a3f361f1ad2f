"""The card validator used on every CDS response in the tests must itself reject bad cards."""

from __future__ import annotations

import copy

import pytest

from service.cds.validation import card_problems, response_problems

GOOD = {
    "uuid": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
    "summary": "A short summary.",
    "indicator": "info",
    "detail": "Some **markdown**.",
    "source": {"label": "hcc-cds", "url": "https://cds.example.org/docs",
               "topic": {"system": "urn:x", "code": "y", "display": "y"}},
    "suggestions": [{"label": "Do it", "uuid": "0b7a5a6b-7f43-4a61-9f63-5fb1d0f0e3f2",
                     "actions": [{"type": "create", "description": "Create", "resource": {"resourceType": "ServiceRequest"}}]}],
    "selectionBehavior": "any",
    "links": [{"label": "Open", "url": "https://cds.example.org/a/1", "type": "absolute"}],
}


def broken(**changes):
    card = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is ...:
            del card[key]
        else:
            card[key] = value
    return card


def test_a_good_card_passes():
    assert card_problems(GOOD) == []
    assert response_problems({"cards": [GOOD]}) == [] and response_problems({"cards": []}) == []


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        (broken(summary="x" * 140), "140"),
        (broken(selectionBehavior=...), "selectionBehavior"),
        (broken(links=[]), "is empty"),
        (broken(links=[{"label": "Open", "url": "https://x.org"}]), "type"),
        (broken(detail=""), "empty string"),
        (broken(indicator="urgent"), "indicator"),
        (broken(source={"url": "https://x.org"}), "label"),
        (broken(uuid=...), "no uuid"),
        (broken(suggestions=[{"label": "Do it", "actions": [{"type": "create", "description": "d"}]}]), "no uuid"),
        (broken(overrideReasons=[{"system": "urn:x", "code": "a"}]), "display"),
        (broken(detail=None), "null"),
    ],
)
def test_bad_cards_are_rejected(card, expected):
    problems = card_problems(card)
    assert problems and any(expected in p for p in problems), problems


def test_the_test_client_validates_every_cds_response(client):
    from tests.conftest import validate_cds_responses

    assert validate_cds_responses in client.event_hooks["response"]
