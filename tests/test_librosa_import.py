"""Processes that import the package's librosa at once on a cold numba cache leave a usable cache.

The compute path no longer imports librosa (pipeline/dsp.py ports what it needs); the references,
tests and plots still import it through pipeline/_librosa.py, whose lock this holds to.

librosa compiles gufuncs with ``cache=True`` at import; concurrent compilations can pair a kernel
with another compilation's wrapper in the cache, and every later import segfaults (numba issue
10128). Without pipeline/_librosa.py's lock, 6 concurrent first imports here crashed 1 to 6 of
them and often every later process; with it, 24 of 24 and every later one ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# calls two of the gufuncs compiled at import: _parabolic_interpolation's (librosa.estimate_tuning's) and zero_crossings'
CODE = """
import numpy as np
from pipeline._librosa import librosa
x = np.random.default_rng(0).normal(size=(4, 9)).astype(np.float32)
shift = librosa.core.pitch._parabolic_interpolation(x, axis=-1)
print("ok", shift.shape, int(librosa.zero_crossings(x[0]).sum()) >= 0)
"""


def test_concurrent_first_imports_on_a_cold_cache_leave_a_usable_cache(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}  # a cold cache of its own
    procs = [subprocess.Popen([sys.executable, "-c", CODE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(6)]
    results = [(p.wait(timeout=240), p.communicate()) for p in procs]
    assert all(code == 0 and out.startswith("ok (4, 9) True") for code, (out, _) in results), results
    assert any((tmp_path / "numba").rglob("*.nbc")), "nothing was cached: the test did not exercise the cache"
    later = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=240)
    assert later.returncode == 0 and later.stdout.startswith("ok (4, 9) True"), later.stderr[-500:]
