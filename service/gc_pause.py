"""Pausing Python's cyclic garbage collector while one large record is parsed or assessed.

Parsing and mapping a record allocate containers (dicts, lists, the snapshot's objects) by the hundred
thousand for a long history, and the collector, run every few hundred container allocations, walks the
growing young objects again and again; its oldest generation's collections, triggered as they pile up, walk
all of them. That made the cost per Observation grow with the record: mapping 10 000 Observations took
~15-25 % longer with the collector running than paused, parsing their 4.3 MB body about twice as long
(start-up objects frozen, as served; BENCHMARKS.md). What these steps allocate holds no reference cycles
(JSON trees, frozen dataclasses), so pausing frees nothing later than it would otherwise be freed; other
calls of the same process allocate meanwhile without collections, for as long as the large record takes
(bounded by HCC_FHIR_MAX_RESOURCES and the call's deadline), and the collector runs again from the next
allocation after the last pause ends.

Pauses nest and may overlap across threads (a large record mapped in a worker thread while the event loop
parses another body): the collector is re-enabled when the last one ends, and only if it was enabled when the
first began (a process that turned it off keeps it off).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_enable_after = False


@contextmanager
def collector_paused() -> Iterator[None]:
    global _depth, _enable_after
    with _lock:
        if _depth == 0:
            _enable_after = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _enable_after:
                gc.enable()
