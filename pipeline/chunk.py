"""One unit of work: decode the audio of one chunk of segments, featurise it, write its region.

A chunk task is idempotent: it always writes the same fixed, chunk-aligned region of every
segment-dimension array, then its report, then its done-flag, last.

This module is light (the client imports it to plan the tasks); the kernels and the store's
modules are imported by the tasks, or, on a local cluster, as each worker starts: the cluster
preloads this module, whose :func:`dask_setup` does a worker's set-up once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .config import FeatureConfig
from .errors import DecodeError, StorageError, one_line
from .results import ChunkReport, ChunkResult, FileOutcome, Timings
from .settings import setting

if TYPE_CHECKING:
    import zarr

    from .featurize import SegmentAudio

__all__ = ["ChunkFile", "ChunkTask", "compute_chunk", "dask_setup", "run_chunk", "write_chunk"]


def dask_setup(worker: Any) -> None:
    """A worker's set-up, once, as it starts (``preload=["pipeline.chunk"]``): the kernels and
    the store's modules imported (they would otherwise cost the first task seconds), freed
    memory kept (:mod:`pipeline.heap`) and the BLAS thread pools found."""
    import importlib

    from .cluster import WORKER_MODULES
    from .featurize import blas_controller
    from .heap import keep_freed_memory

    for name in WORKER_MODULES:
        importlib.import_module(name)

    keep_freed_memory()
    blas_controller()


class ChunkFile(NamedTuple):
    """The part of one file that falls into a chunk: segments ``[seg_lo, seg_hi)`` of the file.

    A named tuple, not a frozen dataclass: planning 10,000 hours makes 1.2 million of them,
    four times faster (0.3 s per 120,000; benchmarks/scale.py)."""

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
    #: the added families' flags (:mod:`pipeline.grow`) a whole chunk sets before ``chunk_done``
    flags: tuple[str, ...] = ()
    #: a done chunk: compute only these (added) families and set their flags
    families: tuple[str, ...] = ()


def _decode_part(part: ChunkFile, task: ChunkTask, config: FeatureConfig, audio: np.ndarray,
                 storage_options: Mapping[str, Any] | None) -> tuple[int, FileOutcome, SegmentAudio]:
    """Decode one file's segments of the chunk into their rows of ``audio`` (rows become the
    chunk's); a file that does not decode is reported, not raised: the chunk goes on."""
    from .featurize import SegmentAudio, decode_segments

    row0 = part.first_segment + part.seg_lo - task.start
    out = audio[row0 : row0 + part.seg_hi - part.seg_lo]
    t0 = time.perf_counter()
    try:
        decoded = decode_segments(part.uri, config, sample_rate=part.sample_rate, frames=part.frames,
                                  segments=range(part.seg_lo, part.seg_hi), out=out, storage_options=storage_options)
    except DecodeError as exc:
        return part.file_index, {"status": "error", "error": str(exc), "warning": ""}, SegmentAudio(
            decode_seconds=time.perf_counter() - t0)
    decoded.rows = [row0 + r for r in decoded.rows]
    return part.file_index, {"status": "ok", "error": "", "warning": decoded.warning}, decoded


def compute_chunk(task: ChunkTask, config: FeatureConfig, storage_options: Mapping[str, Any] | None = None) -> tuple[dict[str, np.ndarray], ChunkReport]:
    """Arrays for the chunk's region and its report; pure apart from reading audio.

    One thread decodes the chunk's files in order while this one featurises the segments
    decoded so far, a batch at a time: reading (from disk or object storage) overlaps compute.
    """
    from .featurize import allocate, featurize_rows

    n = task.stop - task.start
    valid = np.zeros(n, dtype=bool)
    valid_frames = np.zeros(n, dtype=np.int32)
    valid_samples = np.zeros(n, dtype=np.int64)
    # the chunk's segments, zero-padded, at their row: a batch of neighbouring rows is a view
    audio = np.zeros((n, config.segment_samples), dtype=np.float32)
    arrays = allocate(n, config)
    batch = int(setting("batch-segments"))

    def where(row: int) -> str:
        """The file and segment (within the file) of a row of the chunk."""
        for part in task.files:
            row0 = part.first_segment + part.seg_lo - task.start
            if row0 <= row < row0 + part.seg_hi - part.seg_lo:
                return f"{part.uri} segment {part.seg_lo + row - row0}"
        return f"segment {task.start + row}"

    files_report: dict[str, FileOutcome] = {}
    timings: Timings = {"decode": 0.0, "resample": 0.0, "compute": 0.0, "write": 0.0}
    audio_seconds = 0.0
    ready: list[int] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunk-decode") as pool:
        futures = [pool.submit(_decode_part, part, task, config, audio, storage_options) for part in task.files]
        try:
            for future in futures:
                file_index, outcome, part = future.result()
                files_report[str(file_index)] = outcome
                timings["decode"] += part.decode_seconds
                timings["resample"] += part.resample_seconds
                audio_seconds += part.audio_seconds
                valid[part.rows] = True
                valid_frames[part.rows] = part.valid_frames
                valid_samples[part.rows] = part.valid_samples
                ready.extend(part.rows)
                if len(ready) >= batch:
                    whole = len(ready) // batch * batch
                    timings["compute"] += featurize_rows(np.asarray(ready[:whole]), audio, valid_samples, config, arrays, where)
                    del ready[:whole]
        finally:
            for future in futures:
                future.cancel()
    timings["compute"] += featurize_rows(np.asarray(ready, dtype=np.int64), audio, valid_samples, config, arrays, where)
    arrays["segment_valid"] = valid
    arrays["segment_valid_frames"] = valid_frames
    report: ChunkReport = {"chunk": task.index, "files": files_report, "segments": int(valid.sum()),
              "audio_seconds": audio_seconds, "timings": timings}
    return arrays, report


def _family_of(name: str, config: FeatureConfig) -> str | None:
    """The family of ``config`` an array of :func:`compute_chunk` belongs to (None: the chunk's own)."""
    from .families import iter_variables

    for fam, var in iter_variables(config.features):
        if name == var.name or (var.per_frame and name.rpartition("_")[0] == var.name):
            return fam.name
    return None


#: the store a worker last opened: (store URL, storage options, run) -> its root group. A run's
#: tasks share one open (its metadata read once per worker, not once per task); another store,
#: other options or another run (the same URL rewritten by --overwrite) opens afresh.
_opened: dict[tuple[str, str, str], zarr.Group] = {}
_opened_lock = threading.Lock()


def _store_group(store_url: str, storage_options: Mapping[str, Any] | None, run: str | None, stop: int) -> zarr.Group:
    """The store's root group, for writing segments up to ``stop``; kept for the rest of the
    ``run`` in this process (not kept without a run)."""
    from .store import open_group, zarr_array

    key = (store_url, json.dumps(dict(storage_options or {}), sort_keys=True, default=str), run or "")
    with _opened_lock:
        group = _opened.get(key) if run else None
    if group is None:
        group = open_group(store_url, storage_options, mode="r+", consolidated=True)
    if int(zarr_array(group, "segment_valid").shape[0]) < stop:
        # consolidated metadata older than the layout (an append): read every array's own
        group = open_group(store_url, storage_options, mode="r+")
    if run:
        with _opened_lock:
            _opened.clear()
            _opened[key] = group
    return group


def write_chunk(group: zarr.Group, task: ChunkTask, arrays: Mapping[str, np.ndarray], report: ChunkReport) -> None:
    """A whole chunk's writes, in their order: the region's ``arrays``, then the report, then
    the added families' flags, then the done-flag, last."""
    from .regions import write_region
    from .store import zarr_array

    write_region(group, arrays, task.start, task.stop)
    zarr_array(group, "chunk_report")[task.index] = json.dumps(report, sort_keys=True)
    for flag in task.flags:
        zarr_array(group, flag)[task.index] = 1
    zarr_array(group, "chunk_done")[task.index] = 1


def run_chunk(task: ChunkTask, store_url: str, config_dict: dict[str, Any], storage_options: Mapping[str, Any] | None = None,
              template_gate: str | None = None, run: str | None = None) -> ChunkResult:
    """Compute one chunk and write its region, report and done-flag (in that order); return
    the report with the per-segment columns written (none for added families only).

    ``template_gate`` names the gate a new store's template opens (:mod:`pipeline.gate`): the
    task computes first and waits there only before writing. ``run`` names the extract run:
    its tasks in one process share the store's open group.
    """
    from .gate import wait_for_template
    from .grow import flag_name
    from .heap import keep_freed_memory
    from .regions import write_region
    from .store import zarr_array

    config = FeatureConfig.from_dict(config_dict)
    if task.families:
        config = replace(config, features=task.families)
    keep_freed_memory()
    arrays, report = compute_chunk(task, config, storage_options)
    wait_for_template(template_gate)
    t0 = time.perf_counter()
    try:
        group = _store_group(store_url, storage_options, run, task.stop)
        if task.families:
            # families added to a done chunk: their arrays, then their flags; nothing else
            owned = {name for name, arr in arrays.items() if _family_of(name, config) is not None}
            write_region(group, {k: v for k, v in arrays.items() if k in owned}, task.start, task.stop)
            for name in task.families:
                zarr_array(group, flag_name(name))[task.index] = 1
            report["timings"]["write"] = time.perf_counter() - t0
            return ChunkResult(report, task.start)
        write_chunk(group, task, arrays, report)
    except (OSError, KeyError, ValueError) as exc:
        raise StorageError(f"writing chunk {task.index} to {store_url} failed: {one_line(exc)}") from exc
    report["timings"]["write"] = time.perf_counter() - t0
    return ChunkResult(report, task.start, arrays["segment_valid"], arrays["segment_valid_frames"])
