"""Keep freed memory for reuse while a chunk task runs, on glibc (Linux).

Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes glibc's
mmap threshold at 128 KiB: every large temporary of the feature kernels is then a fresh
``mmap`` whose pages fault in one by one, and the kernels run about 1.5x slower than in a plain
process (measured in ``docs/performance.md``). While at least one task runs, :func:`task_heap`
raises both thresholds so freed blocks are reused; when the last task ends it restores the
worker's settings and hands the memory back with ``malloc_trim``, so the worker's memory
between tasks is what Dask expects. Elsewhere (not glibc, or no threshold set in the
environment) it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import threading
from collections.abc import Iterator

__all__ = ["task_heap"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc refuses an mmap threshold above 32 MiB on 64-bit
_TASK_MMAP_THRESHOLD = 32 * 2**20
_TASK_TRIM_THRESHOLD = 1 << 30
_DEFAULT_THRESHOLD = 128 * 1024

_lock = threading.Lock()
_active = 0


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        _ = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def _env_threshold(name: str) -> int | None:
    value = os.environ.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _applies() -> bool:
    """Only where the environment pinned the thresholds (as Dask's nanny does)."""
    return _LIBC is not None and (
        _env_threshold("MALLOC_TRIM_THRESHOLD_") is not None or _env_threshold("MALLOC_MMAP_THRESHOLD_") is not None
    )


@contextlib.contextmanager
def task_heap() -> Iterator[None]:
    """Reuse freed heap memory inside the block; trim it when the last such block ends."""
    global _active
    if not _applies():
        yield
        return
    assert _LIBC is not None
    with _lock:
        _active += 1
        if _active == 1:
            _LIBC.mallopt(_M_MMAP_THRESHOLD, _TASK_MMAP_THRESHOLD)
            _LIBC.mallopt(_M_TRIM_THRESHOLD, _TASK_TRIM_THRESHOLD)
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                _LIBC.mallopt(_M_TRIM_THRESHOLD, _env_threshold("MALLOC_TRIM_THRESHOLD_") or _DEFAULT_THRESHOLD)
                _LIBC.mallopt(_M_MMAP_THRESHOLD, _env_threshold("MALLOC_MMAP_THRESHOLD_") or _DEFAULT_THRESHOLD)
                _LIBC.malloc_trim(0)
