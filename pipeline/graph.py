"""Wiring only: inputs -> manifest -> layout -> template -> chunk tasks -> finalise.

The store template is written once; each Dask task computes one chunk of segments and writes
its own chunk-aligned region and then its done-flag. Re-running computes only missing chunks.
What writes the store is :mod:`pipeline.write` (template, append, finalise) and
:mod:`pipeline.chunk` (a task's region); where tasks run is :mod:`pipeline.cluster`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO, cast

import dask
import numpy as np

from .cluster import Runner, auto_scheduler, cluster, owns_cluster
from .config import FeatureConfig
from .families.plugins import loaded_sources
from .gate import TemplateGate
from .grow import add_families, added_families, pending_families
from .io import check_url_credentials, list_inputs, normalise_store_url, sanitize_storage_options
from .labels import DEFAULT_SPLIT_FRACTIONS, assign_labels
from .lock import StoreLock
from .probe import FileInfo, ManifestEntry, probe_many
from .results import ExtractReport
from .schema import Layout, build_layout
from .settings import setting
from .store import (
    as_text,
    changed_files,
    family_flags,
    open_raw,
    remove_store,
    store_config,
    store_exists,
)
from .write import (
    append,
    check_existing,
    finalize,
    layout_from_store,
    rollback_unfinished_append,
    write_template,
)

if TYPE_CHECKING:
    from .chunk import ChunkTask
    from .results import ChunkReport

__all__ = ["ExtractReport", "extract", "plan_tasks"]


def plan_tasks(layout: Layout, pending: Sequence[int] | None = None, *, flags: Sequence[str] = (),
               partial: Mapping[int, tuple[str, ...]] | None = None) -> list[ChunkTask]:
    """One task per chunk: the parts of files whose segments fall into it.

    ``pending`` chunks are computed whole and set the added families' ``flags`` before
    ``chunk_done``; ``partial`` chunks (done) compute only the families given for each.
    """
    # the chunk module brings the kernels (librosa): imported when there is work, not with graph
    from .chunk import ChunkFile, ChunkTask

    wanted = range(layout.n_chunks) if pending is None else pending
    partial = partial or {}
    by_chunk: dict[int, list[ChunkFile]] = {c: [] for c in [*wanted, *partial]}
    for index, record in enumerate(layout.files):
        if record.n_segments == 0:
            continue
        first, last = record.first_segment, record.first_segment + record.n_segments
        for c in range(first // layout.chunk, (last - 1) // layout.chunk + 1):
            if c not in by_chunk:
                continue
            lo, hi = layout.chunk_bounds(c)
            by_chunk[c].append(ChunkFile(
                file_index=index, uri=record.uri, sample_rate=record.sample_rate, frames=record.frames,
                first_segment=first, seg_lo=max(lo, first) - first, seg_hi=min(hi, last) - first,
            ))
    tasks = []
    for c in wanted:
        lo, hi = layout.chunk_bounds(c)
        tasks.append(ChunkTask(index=c, start=lo, stop=hi, files=tuple(by_chunk[c]), flags=tuple(flags)))
    for c, names in partial.items():
        lo, hi = layout.chunk_bounds(c)
        tasks.append(ChunkTask(index=c, start=lo, stop=hi, files=tuple(by_chunk[c]), families=names))
    return tasks


def extract(
    inputs: Sequence[str | os.PathLike[str]] | str,
    store: str | os.PathLike[str],
    config: FeatureConfig | None = None,
    *,
    client: Any | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    labels: str | Mapping[str, tuple[str, str]] | None = None,
    label_from: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
    progress: bool = True,
    out: TextIO | None = None,
    segment_chunk: int | None = None,
) -> ExtractReport:
    """Turn audio inputs into a feature store (or resume one), and return what happened.

    Parameters
    ----------
    inputs : files, directories (recursive), globs or fsspec URLs
    store : local path or fsspec URL of the Zarr store
    client : an existing ``distributed.Client``; else ``scheduler`` (address or
        ``"synchronous"`` for in-process) ; else a local cluster of ``workers`` processes.
    labels : a CSV path (``path,label[,split]``) or a ``{uri: (label, split)}`` mapping
    label_from : ``"parent"`` takes the label from the parent folder's name
    segment_chunk : segments per chunk (default: about 16 MiB of the largest variable)
    """
    started = time.perf_counter()
    out = out or sys.stderr
    config = config or FeatureConfig()
    options = sanitize_storage_options(storage_options)
    store_url = normalise_store_url(os.fspath(store))
    check_url_credentials(store_url)
    uris = list_inputs([inputs] if isinstance(inputs, str | os.PathLike) else list(inputs), options)
    assigned, unmatched = assign_labels(uris, labels, label_from, options, split_fractions)
    # one writer at a time: a second run refuses here, before it looks at the store
    with StoreLock(store_url, options) as claim:
        if claim.taken_over is not None:
            print(f"note: took over a stale claim on the store ({claim.taken_over.describe()})", file=out)
        report = _extract_claimed(store_url, options, config, uris, assigned, claim, started=started, client=client,
                                  scheduler=scheduler, workers=workers, overwrite=overwrite,
                                  split_fractions=split_fractions, progress=progress, out=out,
                                  segment_chunk=segment_chunk)
    if labels is not None or label_from is not None:
        report.unlabeled = sum(1 for uri in uris if not assigned[uri][0])
        report.unmatched_labels = unmatched
    return report


def _extract_claimed(
    store_url: str, options: Mapping[str, Any], config: FeatureConfig, uris: Sequence[str],
    assigned: Mapping[str, tuple[str, str]], claim: StoreLock, *, started: float, client: Any | None,
    scheduler: str | None, workers: int | None, overwrite: bool, split_fractions: Sequence[float],
    progress: bool, out: TextIO, segment_chunk: int | None,
) -> ExtractReport:
    """:func:`extract` once the store is claimed: layout, template, tasks, finalise."""
    existing = store_exists(store_url, options)
    if existing and not overwrite:
        existing = check_existing(store_url, options, config)
    elif existing and overwrite:
        remove_store(store_url, options)
        existing = False

    report = ExtractReport(store=store_url)
    template: Callable[[], None] | None = None
    scheduler, probed = auto_scheduler(uris, options, client=client, scheduler=scheduler, workers=workers, out=out)
    with cluster(client, scheduler, workers, out) as dask_client:
        runner = Runner(dask_client)
        plugins = loaded_sources(config.features)
        if dask_client is not None and plugins:
            from .families.worker import ship_plugins

            ship_plugins(dask_client, plugins)
        flags: tuple[str, ...] = ()
        partial: dict[int, tuple[str, ...]] = {}
        if existing:
            layout, pending, flags, partial = _resume(store_url, options, config, uris, assigned, runner, probed, out)
        else:
            entries = _manifest(runner, uris, options, assigned, probed)
            layout = build_layout(entries, config, chunk=segment_chunk)
            extra = {"split_fractions": [float(f) for f in split_fractions]}
            template = functools.partial(write_template, store_url, options, layout, config, extra)
            pending = list(range(layout.n_chunks))
        tasks = plan_tasks(layout, pending, flags=flags, partial=partial)
        report.chunks_total = layout.n_chunks
        report.chunks_skipped = layout.n_chunks - len(tasks)
        # on a cluster that lives in this process, a new store's template is written while the
        # first tasks decode and compute: they wait for it (at a gate on the scheduler) only to
        # write. Elsewhere it is written first: a remote cluster outlives a killed client, and
        # tasks waiting for a template that never comes would hold its workers until timeout.
        gate = TemplateGate.create(dask_client) if template is not None and tasks and owns_cluster(dask_client) else None
        meanwhile = None
        if template is not None and gate is None:
            template()
        elif template is not None and gate is not None:
            meanwhile = functools.partial(_template_then_open, template, gate)
        tasks_started = time.perf_counter()
        report.phases["prepare"] = tasks_started - started
        try:
            _run_tasks(runner, tasks, store_url, config, options, progress, out, report,
                       gate=gate.name if gate else None, meanwhile=meanwhile)
        except BaseException:
            if gate is not None and not gate.opened:
                # tasks still running fail fast at the gate; the gate is left for them to read.
                # If the scheduler is gone too, the original error is the one to report.
                with contextlib.suppress(Exception):
                    gate.open(ok=False)
            raise
        if gate is not None:
            gate.close()
        report.phases["tasks"] = time.perf_counter() - tasks_started
    claim.check()
    finalise_started = time.perf_counter()
    with dask.config.set(scheduler="synchronous"):
        finalize(store_url, options, report)
    report.phases["finalise"] = time.perf_counter() - finalise_started
    report.elapsed = time.perf_counter() - started
    return report


def _resume(store_url: str, options: Mapping[str, Any], config: FeatureConfig, uris: Sequence[str],
            assigned: Mapping[str, tuple[str, str]], runner: Runner, probed: Mapping[str, FileInfo] | None,
            out: TextIO) -> tuple[Layout, list[int], tuple[str, ...], dict[int, tuple[str, ...]]]:
    """An existing store's layout (grown by the inputs it does not hold yet, and by the families
    ``config`` adds), its chunks not done, the added families' flags those set, and the done
    chunks whose added families are not (each with those families)."""
    # what this process reads of the store (coordinates, reports) is small: read here, not
    # through the cluster's scheduler (chunk and probe tasks go there explicitly)
    with dask.config.set(scheduler="synchronous"):
        rollback_unfinished_append(store_url, options)
        ds = open_raw(store_url, options)
        added = added_families(store_url, store_config(ds.attrs), config)
        if added:
            add_families(store_url, options, config, added)
            ds = open_raw(store_url, options)
        known = set(as_text(ds["file_path"]))
        new = [u for u in uris if u not in known]
        layout = layout_from_store(ds)
        done = np.asarray(ds["chunk_done"].values).astype(bool)
        print(f"resuming: {int(done.sum())} of {done.size} chunks done", file=out)
        changed = changed_files(ds, options, only=uris)
        if changed:
            print(f"note: {len(changed)} input files changed since they were extracted (first: {changed[0][0]}); "
                  "they are not re-extracted: `info` lists them, --overwrite rebuilds the store", file=out)
        if new:
            entries = _manifest(runner, new, options, assigned, probed)
            layout = append(store_url, options, layout, entries, config)
            print(f"appending {len(new)} new files ({layout.n_chunks - done.size} new chunks)", file=out)
            done = np.concatenate([done, np.zeros(layout.n_chunks - done.size, dtype=bool)])
        partial = pending_families(ds, config)
        if partial:
            names = sorted({name for names in partial.values() for name in names})
            print(f"adding families {', '.join(names)}: {len(partial)} done chunks to compute them for", file=out)
        flags = tuple(flag for name, flag in family_flags(ds.attrs).items() if name in config.features)
    return layout, [int(c) for c in np.flatnonzero(~done)], flags, partial


def _manifest(runner: Runner, uris: Sequence[str], options: Mapping[str, Any], assigned: Mapping[str, tuple[str, str]],
              probed: Mapping[str, FileInfo] | None = None) -> list[ManifestEntry]:
    """Header facts of every input (those already ``probed`` reused), the rest probed in batches
    of ``pipeline.probe-batch`` on the cluster, in URI order."""
    known = probed or {}
    facts: list[FileInfo] = [known[u] for u in uris if u in known]
    todo = [u for u in uris if u not in known]
    size = setting("probe-batch")
    batches = [todo[i : i + size] for i in range(0, len(todo), size)]
    for batch in runner.map(probe_many, batches, options, key="probe"):
        facts.extend(batch)
    facts.sort(key=lambda info: info.uri)
    return [ManifestEntry(info, *assigned[info.uri]) for info in facts]


def _template_then_open(template: Callable[[], None], gate: TemplateGate) -> None:
    """Write the template, then open the gate the tasks wait at (a failure fails it: extract)."""
    template()
    gate.open(ok=True)


def _run_tasks(
    runner: Runner, tasks: Sequence[ChunkTask], store_url: str, config: FeatureConfig,
    options: Mapping[str, Any], progress: bool, out: TextIO, report: ExtractReport,
    *, gate: str | None = None, meanwhile: Callable[[], None] | None = None,
) -> None:
    from tqdm import tqdm

    from .chunk import run_chunk

    sizes = {t.index: t.stop - t.start for t in tasks}  # a result's task in O(1), not a list search
    files_total = len({f.file_index for t in tasks for f in t.files})
    files_seen: set[int] = set()
    timings: dict[str, float] = {}
    crash_after = setting("crash-after-chunks")
    bar = tqdm(total=sum(sizes.values()), unit="seg", file=out, disable=not progress or not tasks,
               dynamic_ncols=True, mininterval=0.5)
    t0 = time.perf_counter()
    audio = 0.0
    try:
        result: ChunkReport
        for result in runner.map(run_chunk, tasks, store_url, config.to_dict(), options, gate, key="chunk",
                                 meanwhile=meanwhile):
            report.chunks_computed += 1
            if report.chunks_computed == crash_after:
                _crash()
            audio += float(result["audio_seconds"])
            files_seen.update(int(k) for k in result["files"])
            for k, v in cast("Mapping[str, float]", result["timings"]).items():
                timings[k] = timings.get(k, 0.0) + float(v)
            rate = audio / 3600 / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix_str(f"files {len(files_seen)}/{files_total}, {rate:.3f} audio-h/s", refresh=False)
            bar.update(sizes[int(result["chunk"])])
    finally:
        bar.close()
    report.timings = timings
    report.audio_seconds_computed = audio


def _crash() -> None:
    """``pipeline.crash-after-chunks``: die here as a killed client does (SIGKILL, no cleanup),
    with the worker processes this process started (a local cluster's), so that the store holds
    exactly the chunks done so far."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()
    os.kill(os.getpid(), signal.SIGKILL)
