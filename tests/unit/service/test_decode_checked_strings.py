"""The typed decoder's twin structs: each patterned string is tested once, the strings found valid are kept in a
bounded set per pattern (an id is left to msgspec's own check), and a refusal is the strict struct's (same words, same path)."""

from __future__ import annotations

from service.fhir import decode


def _observation(code: str, rid: str = "o1", when: str = "2026-01-02") -> dict:
    return {"resourceType": "Observation", "id": rid, "status": "final", "effectiveDateTime": when,
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}}


def test_strings_found_valid_are_kept_bounded_and_ids_never(monkeypatch):
    monkeypatch.setattr(decode, "CHECKED_STRINGS_MAX", 3)
    code_kind = decode._checked_kind(decode.Code.__metadata__[0].pattern)
    code_kind.valid.clear()
    for n in range(10):
        assert decode.decode_problem(_observation(f"{n}-1", rid=f"obs-{n}")) is None
        assert len(code_kind.valid) <= 3
    assert decode._ID_PATTERN not in decode._CHECKED_KINDS  # ids are left to msgspec's own pattern check
    assert not any(s.startswith("obs-") for kind in decode._CHECKED_KINDS.values() for s in kind.valid)


def test_a_refusal_is_the_strict_structs_message_even_for_a_string_seen_valid_elsewhere():
    assert decode.decode_problem(_observation("718-7")) is None
    bad = _observation("718 -7")  # a code with a double space is refused...
    bad["code"]["coding"][0]["code"] = "718  7"
    message = decode.decode_problem(bad)
    assert message is not None and message.endswith("- at `$.code.coding[0].code`")
    assert "matching regex" in message
    assert decode.decode_problem(_observation("718-7", when="2026-02-30")) == (
        "effectiveDateTime: '2026-02-30' is not a calendar date - at `$.effectiveDateTime`"
    )
    assert decode.decode_problem(_observation("718-7", when="2026-1-02")).startswith("Expected `str` matching regex")


def test_a_date_that_does_not_exist_is_refused_in_a_period_as_before_even_once_its_pattern_was_seen():
    obs = _observation("718-7")
    del obs["effectiveDateTime"]
    for when in ("2026-02-28", "2026-02-30"):  # the same pattern both times; only the first exists
        obs["effectivePeriod"] = {"start": when}
        problem = decode.decode_problem(obs)
    assert problem == "start: '2026-02-30' is not a calendar date - at `$.effectivePeriod`"
    assert decode.decode_problem({**obs, "effectivePeriod": {"start": "2026-02-28T10:00:00Z"}}) is None
