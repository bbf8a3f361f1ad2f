"""Properties of mRECIST: scale invariance above 10 mm, and a new >= 10 mm lesion is always progression."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.mrecist import MrecistCriteria, evaluate_mrecist
from service.render.clinical_json import mrecist_json
from tests.unit.rules.factories import lesion, response_criteria

# the non-target rule's absolute part (>= 10 mm larger) is not scale-invariant, like the 10 mm limits the
# generator keeps every size above; its ratio part (>= 1.5x the smallest size) is, so the property holds it
CRITERIA = replace(MrecistCriteria.from_dict(response_criteria()), non_target_progression_min_increase_mm=Fraction(0))
START = date(2026, 1, 15)
BASE = date(2026, 1, 10)
AS_OF = date(2026, 12, 31)
FIRST_FOLLOW_UP_DAY = (START - BASE).days + 1  # imaging up to the start day would be baseline
ORGANS = ("liver", "liver", "lung", None)
# factors whose products with whole millimetres are exact binary floats
SCALE_FACTORS = (1, 1.25, 1.5, 2, 2.5, 3, 4)


@st.composite
def imaging_histories(draw):
    """Baseline lesions >= 10 mm, follow-ups where each is missing, gone (0 mm) or >= 10 mm, maybe new lesions."""
    n = draw(st.integers(1, 6))
    organs = [draw(st.sampled_from(ORGANS)) for _ in range(n)]
    follow_ups = sorted(
        draw(st.sets(st.integers(FIRST_FOLLOW_UP_DAY, 300), min_size=1, max_size=3)),
    )
    history: list[tuple[str, str | None, date, float]] = []
    baseline_sizes = [draw(st.integers(10, 120)) for _ in range(n)]
    for i in range(n):
        history.append((f"l{i}", organs[i], BASE, float(baseline_sizes[i])))
    for offset in follow_ups:
        when = BASE + timedelta(days=offset)
        for i in range(n):
            near = st.integers(max(10, baseline_sizes[i] - 25), baseline_sizes[i] + 10)
            size = draw(st.one_of(st.none(), st.just(0), near, near, near, st.integers(10, 200)))
            if size is not None:
                history.append((f"l{i}", organs[i], when, float(size)))
    for j, (offset, size, organ) in enumerate(
        draw(st.lists(st.tuples(st.sampled_from(follow_ups), st.integers(10, 80), st.sampled_from(ORGANS)), max_size=2))
    ):
        history.append((f"new{j}", organ, BASE + timedelta(days=offset), float(size)))
    return history


def measurements(history, k=1):
    return [lesion(name, when, size * k, organ=organ) for name, organ, when, size in history]


def evaluate(lesions):
    return evaluate_mrecist(lesions, treatment_start=START, as_of=AS_OF, criteria=CRITERIA)


@settings(max_examples=300, deadline=None)
@given(history=imaging_histories(), k=st.sampled_from(SCALE_FACTORS))
def test_scaling_every_diameter_by_k_at_least_1_leaves_the_category_unchanged(history, k):
    original = evaluate(measurements(history))
    scaled = evaluate(measurements(history, k))
    assert scaled.category == original.category
    assert [t.category for t in scaled.timeline] == [t.category for t in original.timeline]
    for percentage in ("change_from_baseline_pct", "change_from_nadir_pct"):
        assert mrecist_json(scaled)[percentage] == mrecist_json(original)[percentage]


@settings(max_examples=300, deadline=None)
@given(
    history=imaging_histories(),
    offset=st.integers(FIRST_FOLLOW_UP_DAY, (AS_OF - BASE).days),
    size=st.integers(10, 150),
    organ=st.sampled_from(ORGANS),
)
def test_adding_a_new_lesion_of_at_least_10_mm_makes_it_pd_from_that_date_on(history, offset, size, organ):
    before = evaluate(measurements(history))
    when = BASE + timedelta(days=offset)
    after = evaluate(measurements(history) + [lesion("added", when, float(size), organ=organ)])
    assert after.category == "PD"
    assert all(t.category == "PD" for t in after.timeline if t.date >= when)
    # never an improvement elsewhere: earlier follow-ups are unchanged
    earlier = {t.date: t.category for t in before.timeline if t.date < when}
    assert {t.date: t.category for t in after.timeline if t.date < when} == earlier
    if before.category == "PD":
        assert after.category == "PD"
