"""librosa for the references, tests and plots (the compute path uses :mod:`pipeline.dsp`), as the package imports it: its cached gufuncs compiled or loaded one process at a time.

librosa declares gufuncs with explicit signatures and ``cache=True`` (``_pi_wrapper`` behind
``librosa.estimate_tuning``, ``_zc_wrapper``, ``_localmax``, ...): numba compiles them when their
module is imported and writes them to its on-disk cache. Two processes doing that at once on a
cold cache (the workers of a first run after an install, parallel test processes) can leave a
kernel and its wrapper from different compilations, and every later import segfaults
(numba issue 10128, open). So the slow imports run in parallel, and the part that compiles or
loads those gufuncs runs under an exclusive lock on a file in the temporary directory: the
first process compiles, the others load its cache.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

import numba  # noqa: F401  (the slow imports, outside the lock)
import scipy.signal  # noqa: F401

__all__ = ["librosa"]

_LOCK_NAME = "audio-pipeline-numba-cache.lock"


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    """An exclusive ``flock`` on a file in the temporary directory; no lock where that cannot
    be had (no ``fcntl``, a lock file this user may not open)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        fd = os.open(os.path.join(tempfile.gettempdir(), _LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


with _machine_lock():
    import librosa
    import librosa.core.audio
    import librosa.core.pitch
    import librosa.util.utils
