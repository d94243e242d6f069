"""The fixed costs of a 10,000-hour extract, measured by simulation (no audio).

    python benchmarks/scale.py [--files 1200000] [--hours 10000] [--workers 2] [--store DIR]
                               [--scale FRACTION] [--rate 900] [--target-workers 50]

Plans a synthetic corpus (a manifest of ``--files`` files sharing ``--hours`` of audio, no
audio anywhere), lays out its segments (``pipeline.schema.build_layout``), writes the store's
template's structure (``pipeline.write.write_structure``), runs one task per chunk on a real local cluster
(``pipeline.cluster``, the extract's ``Runner``) that writes what a chunk task writes besides
its features (``segment_valid``, ``segment_valid_frames``, its report, its done-flag, through
``pipeline.regions`` and ``pipeline.store`` as ``pipeline.chunk.run_chunk`` does) and returns
them as ``run_chunk`` does (merged as they arrive: ``pipeline.results.ChunkResults``) while
the client writes the per-segment coordinates (``pipeline.write.write_values``, as the extract does),
finalises (``pipeline.write.finalize``, with those results) and opens the store
(``pipeline.store.open_store``). Each phase's
wall time, the client's peak RSS during it and the objects in the store after it are printed,
then the budget: every fixed cost together against 5% of the compute the plan implies at
``--target-workers`` workers of ``--rate`` x real time each (900x: docs/scaling.md), and
against the same share at the rate of this machine's kernels measured in the same run
(``compute`` on 32 segments of synthetic genre audio, one thread, best of 3: an upper bound of
a task's rate, which also decodes and writes, so this share is an upper bound too).

``--scale 0.01`` runs 1% of the corpus (files and hours) in a few seconds.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray  # noqa: F401  (before any timing: open_store's one-off import, not a cost of the corpus's size)

from pipeline.chunk import ChunkTask, _store_group, write_chunk
from pipeline.cluster import Runner, cluster
from pipeline.config import FeatureConfig
from pipeline.flags import DONE
from pipeline.graph import plan_tasks
from pipeline.labels import hash_split
from pipeline.probe import FileInfo, ManifestEntry
from pipeline.results import ChunkReport, ChunkResult, ChunkResults, ExtractReport
from pipeline.schema import build_layout
from pipeline.store import open_store
from pipeline.write import finalize, write_structure, write_values

SR = 22050
LABELS = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")


@dataclass
class Phase:
    name: str
    seconds: float
    peak_mib: float
    objects: int
    fixed: bool


def manifest(files: int, hours: float) -> list[ManifestEntry]:
    """``files`` synthetic 16-bit mono 22.05 kHz WAV files sharing ``hours`` of audio."""
    frames = round(hours * 3600 / files * SR)
    size = 44 + 2 * frames
    out = []
    for i in range(files):
        uri = f"s3://corpus/{LABELS[i % len(LABELS)]}/{i:07d}.wav"
        info = FileInfo(uri=uri, size=size, fingerprint=f"{size}-{i}", sample_rate=SR, channels=1, frames=frames,
                        format="WAV")
        out.append(ManifestEntry(info, LABELS[i % len(LABELS)], hash_split(uri)))
    return out


def noop_chunk(task: ChunkTask, store_url: str, segment_frames: int, options: dict[str, Any], run: str) -> ChunkResult:
    """What a chunk task writes besides its features, the way ``run_chunk`` writes it: the
    region's ``segment_valid`` and ``segment_valid_frames``, then its report, then its flags,
    through the store's group a worker opens once per run (``chunk._store_group``)."""
    group = _store_group(store_url, options, run, task.stop)
    n = task.stop - task.start
    report: ChunkReport = {
        "chunk": task.index, "segments": n, "audio_seconds": float(n * 3.0),
        "files": {str(f.file_index): {"status": "ok", "error": "", "warning": ""} for f in task.files},
        "timings": {"decode": 0.0, "resample": 0.0, "compute": 0.0, "write": 0.0},
    }
    arrays = {"segment_valid": np.ones(n, dtype=bool), "segment_valid_frames": np.full(n, segment_frames, dtype=np.int32)}
    write_chunk(group, task, arrays, report)
    return ChunkResult(report, task.start, arrays["segment_valid"], arrays["segment_valid_frames"])


def count_objects(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs`` 5); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mib(reset: bool) -> float:
    if reset:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timer:
    def __init__(self, store: Path) -> None:
        self.store = store
        self.phases: list[Phase] = []
        self.inner: list[Phase] = []

    @contextmanager
    def phase(self, name: str, *, fixed: bool = True) -> Iterator[None]:
        reset = _reset_peak()
        t0 = time.perf_counter()
        yield
        seconds = time.perf_counter() - t0
        objects = count_objects(self.store) if self.store.exists() else 0
        self.phases.append(Phase(name, seconds, _peak_mib(reset), objects, fixed))
        print(f"  {name}: {seconds:.2f} s", file=sys.stderr, flush=True)

    def inside(self, name: str, func: Callable[[], None]) -> Callable[[], None]:
        """``func`` timed as a phase not counted as fixed: it runs inside another phase (as the
        extract runs it, while the tasks compute); listed after that phase."""
        def timed() -> None:
            t0 = time.perf_counter()
            func()
            self.inner.append(Phase(name, time.perf_counter() - t0, _peak_mib(False),
                                    count_objects(self.store), False))
        return timed


def kernel_rate(config: FeatureConfig) -> float:
    """Audio seconds per second of one worker's kernels on this machine, now: ``compute`` of
    ``config``'s families on 32 segments (in the extract's batches), one thread, best of 3."""
    from common import BATCH_SEGMENTS, best_of, segments
    from threadpoolctl import threadpool_limits

    from pipeline.families.inputs import compute

    y = segments(32, config)
    with threadpool_limits(limits=1):
        best = best_of(3, lambda: [compute(y[i : i + BATCH_SEGMENTS], config) for i in range(0, len(y), BATCH_SEGMENTS)])
    return 32 * config.segment_seconds / best


def run(args: argparse.Namespace, store: Path, out: Callable[[str], None]) -> dict[str, float]:
    files = max(1, round(args.files * args.scale))
    hours = args.hours * args.scale
    config = FeatureConfig()
    url = str(store / "scale.zarr")
    timer = Timer(Path(url))
    with timer.phase("manifest (synthetic, not a pipeline cost)", fixed=False):
        entries = manifest(files, hours)
    with timer.phase("layout (schema.build_layout)"):
        layout = build_layout(entries, config)
    with timer.phase("tasks planned (graph.plan_tasks)"):
        tasks = plan_tasks(layout)
    with timer.phase("template structure + file table (write.write_structure)"):
        write_structure(url, {}, layout, config)
    segment_frames = config.n_frames
    started = time.perf_counter()
    with cluster(None, None, args.workers, sys.stderr) as client:
        client.wait_for_workers(args.workers)
        timer.phases.append(Phase("local cluster start (a deployment's, not counted)", time.perf_counter() - started,
                                  _peak_mib(False), count_objects(Path(url)), False))
        with timer.phase(f"{len(tasks):,} tasks on {args.workers} workers (per task below)", fixed=False):
            results = ChunkResults(layout.n_segments, layout.n_chunks)
            done = 0
            values = timer.inside("per-segment coords (write.write_values, during the tasks)",
                                  functools.partial(write_values, url, {}, layout, config))
            for result in Runner(client).map(noop_chunk, tasks, url, segment_frames, {}, uuid.uuid4().hex, key="chunk",
                                             meanwhile=values):
                results.add(result)  # as the extract merges its tasks' results
                done += 1
    per_task = timer.phases[-1].seconds * args.workers / max(done, 1)
    timer.phases.extend(timer.inner)
    report = ExtractReport(store=url)
    with timer.phase("finalise (write.finalize)"):
        finalize(url, {}, report, results)
    with timer.phase("open_store"):
        ds = open_store(url)
    visible = ds.sizes["segment"]
    del ds
    if args.compare:
        with timer.phase("chunk_done read as values, one object per chunk (before)", fixed=False):
            import xarray as xr

            xr.open_zarr(url)[DONE].values  # noqa: B018

    compute = args.hours * 3600 / args.rate / args.target_workers
    rate_here = kernel_rate(config)
    compute_here = args.hours * 3600 / rate_here / args.target_workers
    fixed = sum(p.seconds for p in timer.phases if p.fixed)
    scheduler = per_task * len(tasks) / (args.scale * args.target_workers) if args.scale else 0.0
    fixed_full = fixed / args.scale
    out(f"corpus: {files:,} files, {hours:,.1f} h, {layout.n_segments:,} segments, {layout.n_chunks:,} chunks of "
        f"{layout.chunk}; {args.workers} local workers; store {url}")
    out(f"{'phase':<58} {'seconds':>9} {'peak RSS MiB':>13} {'objects':>10}")
    for p in timer.phases:
        out(f"{p.name:<58} {p.seconds:>9.2f} {p.peak_mib:>13.0f} {p.objects:>10,}")
    out(f"visible segments after open_store: {visible:,} (report: {report.files_ok:,} files ok, "
        f"{report.files_pending:,} pending)")
    out(f"per task (wall x workers / tasks): {per_task * 1000:.1f} ms")
    out(f"compute the plan implies: {args.hours:,.0f} h x 3600 / {args.rate:.0f}x per worker / "
        f"{args.target_workers} workers = {compute:,.0f} s; 5% = {0.05 * compute:.1f} s")
    scaled = "" if args.scale == 1 else f" (measured {fixed:.2f} s at scale {args.scale}, x{1 / args.scale:.0f} linearly)"
    out(f"fixed costs (layout, tasks planned, template structure + file table, finalise, open_store): {fixed_full:.1f} s{scaled} "
        f"= {100 * fixed_full / compute:.1f}% of compute")
    out(f"per-task overhead spread over {args.target_workers} workers: {scheduler:.1f} s "
        f"({100 * scheduler / compute:.1f}% of compute)")
    out(f"this machine's kernels, measured in this run: {rate_here:.0f}x real time per worker (one thread); "
        f"compute at that rate = {compute_here:,.0f} s; fixed costs = {100 * fixed_full / compute_here:.1f}% of it")
    return {"fixed": fixed_full, "compute": compute, "per_task": per_task, "visible": float(visible),
            "segments": float(layout.n_segments), "rate_here": rate_here}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=1_200_000)
    parser.add_argument("--hours", type=float, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--store", help="directory for the store (default: a temporary one, removed after)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the corpus to run (files and hours)")
    parser.add_argument("--rate", type=float, default=900.0, help="audio seconds per second per worker")
    parser.add_argument("--target-workers", type=int, default=50)
    parser.add_argument("--compare", action="store_true", help="also time reading chunk_done one object per chunk")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    if args.store:
        Path(args.store).mkdir(parents=True, exist_ok=True)
        run(args, Path(args.store), print)
    else:
        with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
            run(args, Path(tmp), print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
