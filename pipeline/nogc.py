"""Build many small objects without the cyclic garbage collector's pauses.

Planning 10,000 hours builds 1.2 million file records and as many chunk parts (tuples, which
hold no cycles). Each allocation burst triggers the cyclic collector, which walks every object
the process holds (the manifest's millions among them): a third of build_layout's and half of
plan_tasks' time at 120,000 files (benchmarks/scale.py). :func:`gc_paused` turns it off for
such a build and back on after (only if it was on: nested and concurrent uses are safe; a
thread allocating meanwhile just skips its collections too, for that short while).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off inside; restored when the outermost use ends."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
