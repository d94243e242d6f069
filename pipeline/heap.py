"""Let a worker reuse freed memory, on glibc (Linux).

Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes glibc's
mmap threshold at 128 KiB: every large temporary of the feature kernels is then a fresh
``mmap`` whose pages fault in one by one, and the kernels run about 1.5x slower than in a plain
process (``docs/performance.md``). Restoring the setting after each task and trimming still
cost 3-5% (each task faulted its working set in again), so :func:`keep_freed_memory` raises
both thresholds once, for the worker's life: it then holds on to about one task's working set
(a few hundred MiB at the default chunking) between tasks. Elsewhere (not glibc, or no
threshold pinned in the environment, where glibc's own dynamic threshold does the same) it
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc refuses an mmap threshold above 32 MiB on 64-bit
_MMAP_THRESHOLD = 32 * 2**20
_TRIM_THRESHOLD = 256 * 2**20

_lock = threading.Lock()
_applied = False


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _ = libc.mallopt
    except (OSError, AttributeError):
        return None
    return libc


def _pinned() -> bool:
    """Whether the environment pinned glibc's thresholds (as Dask's nanny does)."""
    return any(os.environ.get(name) for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"))


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process, once; True if they are raised."""
    global _applied
    with _lock:
        if not _applied and _pinned():
            libc = _libc()
            if libc is not None:
                ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
                _applied = libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and ok
        return _applied
