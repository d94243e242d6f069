"""What the benchmarks share, without librosa (benchmarks/run.py imports it; benchmarks/scale.py
must not, its kernels' figure runs in a process that never needs it): synthetic genre
segments, best-of timing and the extract's batch size."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from pipeline import FeatureConfig
from pipeline.settings import setting
from pipeline.synth import GENRES, genre_clip

SR = 22050
#: segments per ``compute_features`` call in a chunk task (the ``pipeline.batch-segments`` setting)
BATCH_SEGMENTS = int(setting("batch-segments"))


def segments(n: int, config: FeatureConfig) -> np.ndarray:
    """``n`` segments of ``config``'s length cut from 30-s synthetic genre clips at 22,050 Hz."""
    clips = [genre_clip(GENRES[i % len(GENRES)], seconds=30.0, sr=SR, seed=i) for i in range(-(-n // 10))]
    audio = np.concatenate(clips)
    return audio[: n * config.segment_samples].reshape(n, config.segment_samples)


def best_of(repeat: int, func: Callable[[], object]) -> float:
    """The shortest of ``repeat`` wall times of ``func()``, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)
