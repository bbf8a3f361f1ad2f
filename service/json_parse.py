"""JSON read with orjson, and read exactly as the standard library reads it where orjson would refuse it.

A hook call's body is the patient's whole record (40-80 KiB for the cohort, megabytes for a long history),
and so are the FHIR server's answers without prefetch: the standard library's parser took 2-3 times as
long. Where orjson refuses what the standard library accepts (``NaN``, ``Infinity``, a number beyond the
range of a double, lone surrogates, nesting beyond 1 024 levels), the text is parsed again with
``json.loads``, which reads it, or raises what it always raised. One difference is kept: orjson reads an
integer beyond 64 bits as the float of the same value, where the standard library kept an exact integer.
No element the service reads can hold such a number validly (a FHIR integer has 32 bits; a decimal is
read as a float anyway), so the answer is the same.

A large text is parsed with the cyclic garbage collector paused (:mod:`service.gc_pause`): a 4.3 MB body of
10 000 Observations took ~25 ms to parse with it running (start-up objects frozen, as served), ~13 ms paused.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from service.gc_pause import collector_paused

PAUSE_COLLECTOR_FROM_BYTES = 256 * 1024  # the cohort's bodies (40-80 KiB) are parsed as they always were


def parse_json(body: bytes | str) -> Any:
    """The JSON value of ``body``: orjson's reading, else the standard library's."""
    if len(body) < PAUSE_COLLECTOR_FROM_BYTES:
        return _parse(body)
    with collector_paused():
        return _parse(body)


def _parse(body: bytes | str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)
