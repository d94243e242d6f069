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
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO, cast

import dask
import numpy as np

from .cluster import Place, Runner, auto_scheduler, owns_cluster, place
from .config import FeatureConfig
from .families.plugins import loaded_sources
from .gate import TemplateGate
from .io import (
    check_url_credentials,
    is_url,
    list_inputs,
    normalise_store_url,
    sanitize_storage_options,
)
from .labels import DEFAULT_SPLIT_FRACTIONS, assign_labels
from .lock import StoreLock
from .nogc import gc_paused
from .probe import FileInfo, ManifestEntry, probe_many
from .results import ChunkResults, ExtractReport
from .schema import Layout, build_layout
from .settings import setting

# The store's modules (xarray, dask.array, zarr: about 1 s of imports) are imported where they
# are used, after a local cluster has started starting: its workers' start overlaps them.
if TYPE_CHECKING:
    from .chunk import ChunkTask
    from .results import ChunkResult

__all__ = ["ExtractReport", "extract", "plan_tasks"]


def plan_tasks(layout: Layout, pending: Sequence[int] | None = None, *, flags: Sequence[str] = (),
               partial: Mapping[int, tuple[str, ...]] | None = None) -> list[ChunkTask]:
    """One task per chunk: the parts of files whose segments fall into it.

    ``pending`` chunks are computed whole and set the added families' ``flags`` before
    ``chunk_done``; ``partial`` chunks (done) compute only the families given for each.
    """
    # the chunk module brings the kernels (numpy, scipy.fft): imported when there is work, not with graph
    from .chunk import ChunkFile, ChunkTask

    wanted = range(layout.n_chunks) if pending is None else pending
    partial = partial or {}
    by_chunk: dict[int, list[ChunkFile]] = {c: [] for c in [*wanted, *partial]}
    # every (file, chunk) pair, vectorised over files (1.2 million at 10,000 hours)
    files = layout.files
    first = np.fromiter((r.first_segment for r in files), dtype=np.int64, count=len(files))
    count = np.fromiter((r.n_segments for r in files), dtype=np.int64, count=len(files))
    index = np.flatnonzero(count)
    first, last = first[index], first[index] + count[index]
    c_first, c_last = first // layout.chunk, (last - 1) // layout.chunk
    spans = c_last - c_first + 1
    pair_file = np.repeat(index, spans)
    pair_first, pair_last = np.repeat(first, spans), np.repeat(last, spans)
    pair_chunk = np.repeat(c_first, spans) + (np.arange(pair_file.size) - np.repeat(np.cumsum(spans) - spans, spans))
    keep = np.isin(pair_chunk, np.fromiter(by_chunk, dtype=np.int64, count=len(by_chunk)))
    pair_file, pair_first, pair_last, pair_chunk = pair_file[keep], pair_first[keep], pair_last[keep], pair_chunk[keep]
    lo = pair_chunk * layout.chunk
    hi = np.minimum(lo + layout.chunk, layout.n_segments)
    seg_lo = np.maximum(lo, pair_first) - pair_first
    seg_hi = np.minimum(hi, pair_last) - pair_first
    records = [files[f] for f in pair_file.tolist()]
    made = map(ChunkFile, pair_file.tolist(), [r.uri for r in records], [r.sample_rate for r in records],
               [r.frames for r in records], pair_first.tolist(), seg_lo.tolist(), seg_hi.tolist())
    tasks = []
    with gc_paused():
        for c, part in zip(pair_chunk.tolist(), made, strict=True):
            by_chunk[c].append(part)
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
        ``"synchronous"`` for in-process) ; else a local cluster of ``workers`` processes
        (started in the background at once, while the inputs are listed and probed), or, for a
        default run with little audio, this process (:func:`pipeline.cluster.auto_scheduler`).
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
    sources = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    asked = client is None and scheduler is None and workers is not None
    with contextlib.ExitStack() as stack:
        # a local cluster asked for (--workers N) starts in the background as soon as the
        # inputs are known to exist, and is closed on every path (by the stack): its scheduler,
        # worker processes and their imports overlap the probing, the layout and this process's
        # own imports. Before listing URLs (object storage lists slowly), after listing local
        # paths (milliseconds: a bad path fails at once instead of after a cluster's start)
        remote = any(is_url(os.fspath(item)) for item in sources)
        where = stack.enter_context(place(None, None, workers, out)) if asked and remote else None
        uris = list_inputs(sources, options)
        assigned, unmatched = assign_labels(uris, labels, label_from, options, split_fractions)
        # one writer at a time: a second run refuses here, before it looks at the store
        claim = stack.enter_context(StoreLock(store_url, options))
        if claim.taken_over is not None:
            print(f"note: took over a stale claim on the store ({claim.taken_over.describe()})", file=out)
        probed: dict[str, FileInfo] | None = None
        if where is None:
            # a default run decides here, from its inputs, whether a local cluster pays off
            scheduler, probed = auto_scheduler(uris, options, client=client, scheduler=scheduler, workers=workers, out=out)
            where = stack.enter_context(place(client, scheduler, workers, out))
        report = _extract_claimed(store_url, options, config, uris, assigned, claim, where, probed, started=started,
                                  overwrite=overwrite, split_fractions=split_fractions, progress=progress, out=out,
                                  segment_chunk=segment_chunk)
    if labels is not None or label_from is not None:
        report.unlabeled = sum(1 for uri in uris if not assigned[uri][0])
        report.unmatched_labels = unmatched
    return report


def _extract_claimed(
    store_url: str, options: Mapping[str, Any], config: FeatureConfig, uris: Sequence[str],
    assigned: Mapping[str, tuple[str, str]], claim: StoreLock, where: Place, probed: Mapping[str, FileInfo] | None,
    *, started: float, overwrite: bool, split_fractions: Sequence[float], progress: bool, out: TextIO,
    segment_chunk: int | None,
) -> ExtractReport:
    """:func:`extract` once the store is claimed: layout, template, tasks, finalise (``where``
    may still be starting: its client is waited for once the inputs are probed)."""
    from .store import remove_store, store_exists

    existing = store_exists(store_url, options)
    if existing and not overwrite:
        from .write import check_existing

        existing = check_existing(store_url, options, config)
    elif existing and overwrite:
        remove_store(store_url, options)
        existing = False

    report = ExtractReport(store=store_url)
    template: Callable[[], None] | None = None
    values: Callable[[], None] | None = None
    flags: tuple[str, ...] = ()
    partial: dict[int, tuple[str, ...]] = {}
    if existing:
        layout, pending, flags, partial = _resume(store_url, options, config, uris, assigned, where, probed, out)
    else:
        entries = _manifest(where, uris, options, assigned, probed)
        layout = build_layout(entries, config, chunk=segment_chunk)
        extra = {"split_fractions": [float(f) for f in split_fractions]}
        from .write import write_structure, write_values

        template = functools.partial(write_structure, store_url, options, layout, config, extra)
        values = functools.partial(write_values, store_url, options, layout, config)
        pending = list(range(layout.n_chunks))
    tasks = plan_tasks(layout, pending, flags=flags, partial=partial)
    report.chunks_total = layout.n_chunks
    report.chunks_skipped = layout.n_chunks - len(tasks)
    dask_client = where.client()
    plugins = loaded_sources(config.features)
    if dask_client is not None and plugins:
        from .families.worker import ship_plugins

        ship_plugins(dask_client, plugins)
    # a new store's template is written in two steps: its structure (every array's metadata),
    # all a task needs to write; then the plan's coordinates, while the tasks compute (at
    # 10,000 hours most of the template: docs/scaling.md). On a cluster that lives in this
    # process even the structure is written while the first tasks decode and compute: they
    # wait for it (at a gate on the scheduler) only to write. Elsewhere it is written first: a
    # remote cluster outlives a killed client, and tasks waiting for a template that never
    # comes would hold its workers until timeout.
    gate = TemplateGate.create(dask_client) if template is not None and tasks and owns_cluster(dask_client) else None
    meanwhile = values
    if template is not None and gate is None:
        template()
    elif template is not None and gate is not None and values is not None:
        meanwhile = functools.partial(_template_then_open, template, gate, values)
    tasks_started = time.perf_counter()
    report.phases["prepare"] = tasks_started - started
    # what the tasks return, merged as it arrives: finalising reads back only what earlier runs wrote
    results = ChunkResults(layout.n_segments, layout.n_chunks)
    try:
        _run_tasks(Runner(dask_client), tasks, store_url, config, options, progress, out, report, results,
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
    # a local cluster started here closes while this process finalises (nothing runs there now)
    where.close_in_background()
    claim.check()
    finalise_started = time.perf_counter()
    # the store's small reads go through this process, not the cluster (a callable scheduler:
    # naming "synchronous" would make dask import distributed to look for a default client)
    from .write import finalize

    with dask.config.set(scheduler=_in_process):
        finalize(store_url, options, report, results)
    report.phases["finalise"] = time.perf_counter() - finalise_started
    report.elapsed = time.perf_counter() - started
    return report


def _in_process(*args: Any, **kwargs: Any) -> Any:
    """Dask's synchronous scheduler, imported when used."""
    from dask.local import get_sync

    return get_sync(*args, **kwargs)


def _resume(store_url: str, options: Mapping[str, Any], config: FeatureConfig, uris: Sequence[str],
            assigned: Mapping[str, tuple[str, str]], where: Place, probed: Mapping[str, FileInfo] | None,
            out: TextIO) -> tuple[Layout, list[int], tuple[str, ...], dict[int, tuple[str, ...]]]:
    """An existing store's layout (grown by the inputs it does not hold yet, and by the families
    ``config`` adds), its chunks not done, the added families' flags those set, and the done
    chunks whose added families are not (each with those families)."""
    from .flags import flag
    from .grow import add_families, added_families, pending_families
    from .store import as_text, changed_files, family_flags, open_raw, store_config
    from .write import append, complete_template, layout_from_store, rollback_unfinished_append

    # what this process reads of the store (coordinates, reports) is small: read here, not
    # through the cluster's scheduler (chunk and probe tasks go there explicitly)
    with dask.config.set(scheduler=_in_process):
        complete_template(store_url, options)  # a run stopped while its tasks computed: from its file table
        rollback_unfinished_append(store_url, options)
        ds = open_raw(store_url, options)
        added = added_families(store_url, store_config(ds.attrs), config)
        if added:
            add_families(store_url, options, config, added)
            ds = open_raw(store_url, options)
        known = set(as_text(ds["file_path"]))
        new = [u for u in uris if u not in known]
        layout = layout_from_store(ds)
        done = flag(ds)
        print(f"resuming: {int(done.sum())} of {done.size} chunks done", file=out)
        changed = changed_files(ds, options, only=uris)
        if changed:
            print(f"note: {len(changed)} input files changed since they were extracted (first: {changed[0][0]}); "
                  "they are not re-extracted: `info` lists them, --overwrite rebuilds the store", file=out)
        if new:
            entries = _manifest(where, new, options, assigned, probed)
            layout = append(store_url, options, layout, entries, config)
            print(f"appending {len(new)} new files ({layout.n_chunks - done.size} new chunks)", file=out)
            done = np.concatenate([done, np.zeros(layout.n_chunks - done.size, dtype=bool)])
        partial = pending_families(ds, config)
        if partial:
            names = sorted({name for names in partial.values() for name in names})
            print(f"adding families {', '.join(names)}: {len(partial)} done chunks to compute them for", file=out)
        flags = tuple(flag for name, flag in family_flags(ds.attrs).items() if name in config.features)
    return layout, [int(c) for c in np.flatnonzero(~done)], flags, partial


#: files this process probes at a time while a local cluster starts (a local WAV header: about 0.6 ms)
_PROBE_HERE = 16


def _manifest(where: Place, uris: Sequence[str], options: Mapping[str, Any], assigned: Mapping[str, tuple[str, str]],
              probed: Mapping[str, FileInfo] | None = None) -> list[ManifestEntry]:
    """Header facts of every input (those already ``probed`` reused), in URI order.

    While a local cluster starts, this process probes; what is left once it is up (or all of
    it, on a running cluster) is probed there in batches of ``pipeline.probe-batch``.
    """
    known = probed or {}
    facts: list[FileInfo] = [known[u] for u in uris if u in known]
    todo = [u for u in uris if u not in known]
    here = 0
    while here < len(todo) and where.starting:
        facts.extend(probe_many(todo[here : here + _PROBE_HERE], options))
        here += _PROBE_HERE
    size = setting("probe-batch")
    batches = [todo[i : i + size] for i in range(here, len(todo), size)]
    if batches:
        for batch in Runner(where.client()).map(probe_many, batches, options, key="probe"):
            facts.extend(batch)
    facts.sort(key=lambda info: info.uri)
    return [ManifestEntry(info, *assigned[info.uri]) for info in facts]


def _template_then_open(template: Callable[[], None], gate: TemplateGate, values: Callable[[], None]) -> None:
    """Write the template's structure, open the gate the tasks wait at (a failure fails it:
    extract), then write its values while they compute."""
    template()
    gate.open(ok=True)
    values()


def _run_tasks(
    runner: Runner, tasks: Sequence[ChunkTask], store_url: str, config: FeatureConfig,
    options: Mapping[str, Any], progress: bool, out: TextIO, report: ExtractReport, results: ChunkResults,
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
        returned: ChunkResult
        # the run's name: a worker opens the store once for all the run's tasks it computes
        run = uuid.uuid4().hex
        for returned in runner.map(run_chunk, tasks, store_url, config.to_dict(), options, gate, run, key="chunk",
                                   meanwhile=meanwhile):
            results.add(returned)
            result = returned.report
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
