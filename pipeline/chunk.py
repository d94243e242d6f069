"""One unit of work: decode the audio of one chunk of segments, featurise it, write its region.

A chunk task is idempotent: it always writes the same fixed, chunk-aligned region of every
segment-dimension array, then its report, then its done-flag, last.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from .config import FeatureConfig
from .errors import DecodeError, StorageError, one_line
from .features import SUMMARY_STATS, compute_features, summarize
from .gate import wait_for_template
from .heap import keep_freed_memory
from .io import decode_range
from .regions import write_region
from .schema import VARIABLES, bins_size, resampled_length, segment_starts
from .store import open_group, zarr_array

__all__ = ["ChunkFile", "ChunkTask", "compute_chunk", "run_chunk"]

#: Segments featurised at once: bounds the kernels' memory whatever the chunk size. Eight keep
#: the spectra of a batch (about 4 MiB each) close to the cache: 16% faster than 32.
BATCH_SEGMENTS = 8


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


@dataclass
class _Decoded:
    """One file's part of a chunk, decoded into the chunk's audio rows (by the prefetch thread)."""

    file_index: int
    report: dict[str, str]
    rows: list[int] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    audio_seconds: float = 0.0
    decode: float = 0.0
    resample: float = 0.0


def _decode_part(part: ChunkFile, task: ChunkTask, config: FeatureConfig, audio: np.ndarray,
                 storage_options: Mapping[str, Any] | None) -> _Decoded:
    """Decode one file's segments of the chunk into their rows of ``audio``."""
    t0 = time.perf_counter()
    length = config.segment_samples
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
        return _Decoded(part.file_index, {"status": "error", "error": str(exc), "warning": ""},
                        decode=time.perf_counter() - t0)
    except OSError as exc:
        raise StorageError(f"reading {part.uri} failed: {one_line(exc)}") from exc
    y = decoded.y
    out = _Decoded(part.file_index, {"status": "ok", "error": "", "warning": decoded.warning})
    for k, start in enumerate(starts):
        offset = int(start) - lo
        real = max(0, min(length, y.size - offset))
        is_first = part.seg_lo + k == 0
        if real == 0 or (2 * real < length and not is_first):
            continue  # audio ended early (truncated file): the segment stays invalid
        row = part.first_segment + part.seg_lo + k - task.start
        audio[row, :real] = y[offset : offset + real]
        out.rows.append(row)
        out.frames.append(config.valid_frames(real))
        out.audio_seconds += real / config.sr
    out.resample = decoded.resample_seconds
    out.decode = time.perf_counter() - t0 - decoded.resample_seconds
    return out


def compute_chunk(task: ChunkTask, config: FeatureConfig, storage_options: Mapping[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays for the chunk's region and its report; pure apart from reading audio.

    One thread decodes the chunk's files in order while this one featurises the segments
    decoded so far, a batch at a time: reading (from disk or object storage) overlaps compute.
    """
    n = task.stop - task.start
    valid = np.zeros(n, dtype=bool)
    valid_frames = np.zeros(n, dtype=np.int32)
    # the chunk's segments, zero-padded, at their row: a batch of neighbouring rows is a view
    audio = np.zeros((n, config.segment_samples), dtype=np.float32)
    arrays = _allocate(n, config)
    files_report: dict[str, dict[str, str]] = {}
    timings = {"decode": 0.0, "resample": 0.0, "compute": 0.0, "write": 0.0}
    audio_seconds = 0.0
    ready: list[int] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunk-decode") as pool:
        futures = [pool.submit(_decode_part, part, task, config, audio, storage_options) for part in task.files]
        try:
            for future in futures:
                part = future.result()
                files_report[str(part.file_index)] = part.report
                timings["decode"] += part.decode
                timings["resample"] += part.resample
                audio_seconds += part.audio_seconds
                valid[part.rows] = True
                valid_frames[part.rows] = part.frames
                ready.extend(part.rows)
                if len(ready) >= BATCH_SEGMENTS:
                    whole = len(ready) // BATCH_SEGMENTS * BATCH_SEGMENTS
                    timings["compute"] += _featurise(np.asarray(ready[:whole]), audio, valid_frames, config, arrays)
                    del ready[:whole]
        finally:
            for future in futures:
                future.cancel()
    timings["compute"] += _featurise(np.asarray(ready, dtype=np.int64), audio, valid_frames, config, arrays)
    arrays["segment_valid"] = valid
    arrays["segment_valid_frames"] = valid_frames
    report = {"chunk": task.index, "files": files_report, "segments": int(valid.sum()),
              "audio_seconds": audio_seconds, "timings": timings}
    return arrays, report


def _allocate(n: int, config: FeatureConfig) -> dict[str, np.ndarray]:
    """The region's arrays, NaN until a valid segment's values arrive."""
    arrays: dict[str, np.ndarray] = {}
    for name in config.frame_variables:
        bins = _bins(name, config)
        arrays[name] = np.full((n, config.n_frames, *bins), np.nan, dtype=np.float32)
        for stat in SUMMARY_STATS:
            arrays[f"{name}_{stat}"] = np.full((n, *bins), np.nan, dtype=np.float32)
    return arrays


def _runs(rows: np.ndarray, size: int) -> Iterator[slice | np.ndarray]:
    """Batches of at most ``size`` rows: a slice where the rows are consecutive, else the rows."""
    for b in range(0, rows.size, size):
        batch = rows[b : b + size]
        if batch[-1] - batch[0] == batch.size - 1:
            yield slice(int(batch[0]), int(batch[-1]) + 1)
        else:
            yield batch


def _featurise(rows: np.ndarray, audio: np.ndarray, valid_frames: np.ndarray, config: FeatureConfig, arrays: dict[str, np.ndarray]) -> float:
    """Features and summaries of ``rows``, in bounded batches, into ``arrays``; returns the seconds taken."""
    t0 = time.perf_counter()
    # one BLAS thread: a chunk's numbers do not depend on where (or how threaded) it ran
    with _blas().limit(limits=1, user_api="blas"):
        for batch in _runs(rows, BATCH_SEGMENTS):
            feats = compute_features(audio[batch], config)
            frames = valid_frames[batch]
            for name, values in feats.items():
                arrays[name][batch] = values
                stats = summarize(values, frames)
                for stat in SUMMARY_STATS:
                    arrays[f"{name}_{stat}"][batch] = stats[stat]
    return time.perf_counter() - t0


@functools.lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    """The process's thread pools, found once (finding them costs about 2 ms a time)."""
    return ThreadpoolController()


def _bins(name: str, config: FeatureConfig) -> tuple[int, ...]:
    dim = VARIABLES[name].bins_dim
    return (bins_size(dim, config),) if dim else ()


def run_chunk(task: ChunkTask, store_url: str, config_dict: dict[str, Any], storage_options: Mapping[str, Any] | None = None,
              template_gate: str | None = None) -> dict[str, Any]:
    """Compute one chunk and write its region, report and done-flag (in that order).

    ``template_gate`` names the gate a new store's template opens (:mod:`pipeline.gate`): the
    task computes first and waits there only before writing.
    """
    config = FeatureConfig.from_dict(config_dict)
    keep_freed_memory()
    arrays, report = compute_chunk(task, config, storage_options)
    wait_for_template(template_gate)
    t0 = time.perf_counter()
    try:
        group = open_group(store_url, storage_options, mode="r+", consolidated=True)
        if int(zarr_array(group, "segment_valid").shape[0]) < task.stop:
            # consolidated metadata older than the layout: read every array's own
            group = open_group(store_url, storage_options, mode="r+")
        # the region's arrays, then the report, then the done-flag, last
        write_region(group, arrays, task.start, task.stop)
        zarr_array(group, "chunk_report")[task.index] = json.dumps(report, sort_keys=True)
        zarr_array(group, "chunk_done")[task.index] = 1
    except (OSError, KeyError, ValueError) as exc:
        raise StorageError(f"writing chunk {task.index} to {store_url} failed: {one_line(exc)}") from exc
    report["timings"]["write"] = time.perf_counter() - t0
    return report
