"""Treatment history at its edges (written against mutmut's surviving mutants, issue 17).

Sorafenib was started by ``as_of`` when a record that is not a draft / cancelled / not-taken / entered in
error has a start on or before it; a record covers a day from its start through its end date inclusive, or,
without an end date, while its status says it is current. A TACE that was not completed does not hide the
completed sessions dated after it.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.treatment import completed_tace, sorafenib_history
from tests.unit.rules.factories import make_snapshot, medication, procedure

AS_OF = date(2026, 11, 28)


def days(n: int) -> timedelta:
    return timedelta(days=n)


def history(*meds, as_of=AS_OF):
    return sorafenib_history(make_snapshot(medications=meds), as_of)


# -- sorafenib start ----------------------------------------------------------------------------------------


def test_sorafenib_started_on_the_assessment_day_has_started():
    assert history(medication("sorafenib", AS_OF)).start == AS_OF


def test_sorafenib_starting_after_the_assessment_day_has_not_started():
    later = history(medication("sorafenib", AS_OF + days(1)))
    assert later.start is None
    assert later.records == ()
    assert not later.taking_on(AS_OF)


def test_a_sorafenib_record_without_a_start_date_gives_no_start():
    undated = history(medication("sorafenib", None, ref="MedicationRequest/s"))
    assert undated.start is None
    assert undated.evidence == ()


@pytest.mark.parametrize("status", ["draft", "cancelled", "entered-in-error", "not-taken"])
def test_a_sorafenib_record_never_started_gives_no_start(status):
    assert history(medication("sorafenib", AS_OF - days(30), status=status)).start is None


# -- taking sorafenib on a day ------------------------------------------------------------------------------


def test_sorafenib_is_taken_from_its_start_day_and_not_before():
    start = AS_OF - days(30)
    h = history(medication("sorafenib", start))
    assert h.taking_on(start)
    assert not h.taking_on(start - days(1))


def test_sorafenib_is_taken_through_its_end_date_and_not_after():
    end = AS_OF - days(10)
    h = history(medication("sorafenib", AS_OF - days(60), status="completed", end=end))
    assert h.taking_on(end)
    assert not h.taking_on(end + days(1))


@pytest.mark.parametrize(
    ("status", "taking"),
    [("active", True), ("on-hold", True), ("intended", True), ("unknown", True), ("recorded", True),
     ("stopped", False), ("completed", False)],
)
def test_without_an_end_date_the_status_says_whether_sorafenib_is_still_taken(status, taking):
    assert history(medication("sorafenib", AS_OF - days(30), status=status)).taking_on(AS_OF) is taking


def test_a_later_course_listed_first_does_not_hide_an_earlier_one_covering_the_day():
    later = medication("sorafenib", AS_OF - days(5), ref="MedicationRequest/later")
    earlier = medication("sorafenib", AS_OF - days(90), status="stopped", end=AS_OF - days(40),
                         ref="MedicationRequest/earlier")
    h = history(later, earlier)
    assert h.start == AS_OF - days(90)
    assert h.taking_on(AS_OF - days(50))


# -- completed TACE sessions ---------------------------------------------------------------------------------


def test_a_tace_not_done_before_completed_ones_does_not_hide_them():
    t1, t2 = AS_OF - days(120), AS_OF - days(60)
    snap = make_snapshot(procedures=[
        procedure("tace", None, status="not-done", ref="Procedure/undated-not-done"),
        procedure("tace", t1 - days(30), status="not-done", ref="Procedure/not-done"),
        procedure("tace", t1, ref="Procedure/t1"),
        procedure("tace", t2, ref="Procedure/t2"),
    ])
    assert [s.ref for s in completed_tace(snap, AS_OF, inclusive=True)] == ["Procedure/t1", "Procedure/t2"]
