"""One unit of work: decode the audio of one chunk of segments, featurise it, write its region.

A chunk task is idempotent: it always writes the same fixed, chunk-aligned region of every
segment-dimension array, then its report, then its done-flag, last.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .config import FeatureConfig
from .errors import DecodeError, StorageError, one_line
from .features import compute_features, summarize
from .io import decode_range
from .schema import VARIABLES, bins_size, resampled_length, segment_starts
from .store import open_group, zarr_array

__all__ = ["ChunkFile", "ChunkTask", "compute_chunk", "run_chunk"]

#: Segments featurised at once: bounds the STFT's memory whatever the chunk size.
BATCH_SEGMENTS = 32


@dataclass(frozen=True)
class ChunkFile:
    """The part of one file that falls into a chunk: segments ``[seg_lo, seg_hi)`` of the file."""

    file_index: int
    uri: str
    sample_rate: int
    frames: int
    first_segment: int
    seg_lo: int
    seg_hi: int


@dataclass(frozen=True)
class ChunkTask:
    """Everything a worker needs for one chunk; small, picklable, free of credentials."""

    index: int
    start: int
    stop: int
    files: tuple[ChunkFile, ...] = field(default_factory=tuple)


def compute_chunk(task: ChunkTask, config: FeatureConfig, storage_options: Mapping[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays for the chunk's region and its report; pure apart from reading audio."""
    n = task.stop - task.start
    n_frames = config.n_frames
    length = config.segment_samples
    valid = np.zeros(n, dtype=bool)
    valid_frames = np.zeros(n, dtype=np.int32)
    rows: list[int] = []
    audio: list[np.ndarray] = []
    files_report: dict[str, dict[str, str]] = {}
    timings = {"decode": 0.0, "compute": 0.0, "write": 0.0}
    audio_seconds = 0.0
    for part in task.files:
        t0 = time.perf_counter()
        n_out = resampled_length(part.frames, part.sample_rate, config.sr)
        starts = segment_starts(n_out, config)[part.seg_lo : part.seg_hi]
        lo = int(starts[0])
        hi = int(min(n_out, starts[-1] + length))
        try:
            decoded = decode_range(
                part.uri, sr=config.sr, native_sr=part.sample_rate, declared_frames=part.frames,
                start=lo, stop=hi, storage_options=storage_options,
            )
        except DecodeError as exc:
            files_report[str(part.file_index)] = {"status": "error", "error": str(exc), "warning": ""}
            timings["decode"] += time.perf_counter() - t0
            continue
        except OSError as exc:
            raise StorageError(f"reading {part.uri} failed: {one_line(exc)}") from exc
        timings["decode"] += time.perf_counter() - t0
        y = decoded.y
        files_report[str(part.file_index)] = {"status": "ok", "error": "", "warning": decoded.warning}
        for k, start in enumerate(starts):
            offset = int(start) - lo
            real = max(0, min(length, y.size - offset))
            is_first = part.seg_lo + k == 0
            if real == 0 or (2 * real < length and not is_first):
                continue  # audio ended early (truncated file): the segment stays invalid
            seg = np.zeros(length, dtype=np.float32)
            seg[:real] = y[offset : offset + real]
            row = part.first_segment + part.seg_lo + k - task.start
            rows.append(row)
            audio.append(seg)
            valid[row] = True
            valid_frames[row] = config.valid_frames(real)
            audio_seconds += real / config.sr

    arrays: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    for name in config.frame_variables:
        arrays[name] = np.full((n, n_frames, *_bins(name, config)), np.nan, dtype=np.float32)
        for stat in ("mean", "std"):
            arrays[f"{name}_{stat}"] = np.full((n, *_bins(name, config)), np.nan, dtype=np.float32)
    # one BLAS thread: a chunk's numbers do not depend on where (or how threaded) it ran
    with threadpool_limits(limits=1, user_api="blas"):
        _featurise(rows, audio, valid_frames, config, arrays)
    timings["compute"] = time.perf_counter() - t0
    arrays["segment_valid"] = valid
    arrays["segment_valid_frames"] = valid_frames
    report = {"chunk": task.index, "files": files_report, "segments": int(valid.sum()),
              "audio_seconds": audio_seconds, "timings": timings}
    return arrays, report


def _featurise(rows: list[int], audio: list[np.ndarray], valid_frames: np.ndarray, config: FeatureConfig, arrays: dict[str, np.ndarray]) -> None:
    """Features and summaries of the collected segments, in bounded batches, into ``arrays``."""
    for b in range(0, len(rows), BATCH_SEGMENTS):
        batch_rows = np.asarray(rows[b : b + BATCH_SEGMENTS])
        batch = np.stack(audio[b : b + BATCH_SEGMENTS])
        feats = compute_features(batch, config)
        for name, values in feats.items():
            arrays[name][batch_rows] = values
            stats = summarize(values, valid_frames[batch_rows])
            arrays[f"{name}_mean"][batch_rows] = stats["mean"]
            arrays[f"{name}_std"][batch_rows] = stats["std"]


def _bins(name: str, config: FeatureConfig) -> tuple[int, ...]:
    dim = VARIABLES[name].bins_dim
    return (bins_size(dim, config),) if dim else ()


def run_chunk(task: ChunkTask, store_url: str, config_dict: dict[str, Any], storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Compute one chunk and write its region, report and done-flag (in that order)."""
    config = FeatureConfig.from_dict(config_dict)
    arrays, report = compute_chunk(task, config, storage_options)
    t0 = time.perf_counter()
    try:
        group = open_group(store_url, storage_options, mode="r+")
        for name, values in arrays.items():
            zarr_array(group, name)[task.start : task.stop] = values
        zarr_array(group, "chunk_report")[task.index] = json.dumps(report, sort_keys=True)
        zarr_array(group, "chunk_done")[task.index] = 1
    except (OSError, KeyError, ValueError) as exc:
        raise StorageError(f"writing chunk {task.index} to {store_url} failed: {one_line(exc)}") from exc
    report["timings"]["write"] = time.perf_counter() - t0
    return report
