"""service.gc_pause: the collector is paused while a large body is parsed or a long record mapped, and is
running again afterwards (also after an error, across threads, and never turned on when it was off)."""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterator

import pytest

from service.gc_pause import collector_paused
from service.json_parse import PAUSE_COLLECTOR_FROM_BYTES, parse_json


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_paused_inside_running_after():
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_running_again_after_an_error():
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_collector_turned_off_stays_off():
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads_end_with_the_last():
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with collector_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    with collector_paused():
        thread.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # this thread's pause ended first: the other's still holds
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_a_large_body_is_parsed_paused_and_read_the_same(monkeypatch):
    seen: list[bool] = []
    import service.json_parse as json_parse

    real = json_parse._parse

    def spy(body):
        seen.append(gc.isenabled())
        return real(body)

    monkeypatch.setattr(json_parse, "_parse", spy)
    small = json.dumps({"a": [1, 2.5, "x"]})
    large = json.dumps({"entry": [{"resource": {"id": str(n), "value": n / 3}} for n in range(20_000)]})
    assert len(large) >= PAUSE_COLLECTOR_FROM_BYTES > len(small)
    assert parse_json(small) == json.loads(small)
    assert parse_json(large.encode()) == json.loads(large)
    assert seen == [True, False]
    assert gc.isenabled()
    assert parse_json('{"n": NaN}')["n"] != parse_json('{"n": NaN}')["n"]  # the standard library's reading still


def test_a_long_record_is_mapped_paused(monkeypatch):
    import service.mapping as mapping

    seen: list[tuple[int, bool]] = []

    def spy(patient, resources, k, prior_issues, strict):
        seen.append((len(resources), gc.isenabled()))
        raise RuntimeError("stop here")

    monkeypatch.setattr(mapping, "_snapshot_of", spy)
    patient = {"resourceType": "Patient", "id": "p"}
    for count in (mapping.PAUSE_COLLECTOR_FROM_RESOURCES, mapping.PAUSE_COLLECTOR_FROM_RESOURCES + 1):
        resources = ({"resourceType": "Observation", "id": str(n)} for n in range(count))  # any iterable
        with pytest.raises(RuntimeError):
            mapping.map_to_snapshot(patient, resources, None)  # type: ignore[arg-type]
    assert seen == [(200, True), (201, False)]
    assert gc.isenabled()
