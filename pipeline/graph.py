"""Wiring only: inputs -> manifest -> layout -> template -> chunk tasks -> finalize.

The store template is written once; each Dask task computes one chunk of segments and writes
its own chunk-aligned region and then its done-flag. Re-running computes only missing chunks.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import dask
import numpy as np

from .config import FeatureConfig
from .errors import ConfigMismatch, InputError, SchedulerError, SchemaError, one_line
from .gate import TemplateGate
from .io import (
    check_url_credentials,
    fingerprint,
    list_inputs,
    probe_file,
    sanitize_storage_options,
)
from .labels import DEFAULT_SPLIT_FRACTIONS, hash_split, label_from_parent, read_labels_csv
from .lock import StoreLock
from .schema import Layout, build_layout, make_template
from .store import (
    TEMPLATE_ATTR,
    as_text,
    chunk_reports,
    consolidate,
    open_group,
    open_raw,
    quiet_zarr,
    remove_store,
    store_config,
    store_exists,
    visible_segments,
    zarr_array,
)

if TYPE_CHECKING:
    from .chunk import ChunkTask

__all__ = ["ExtractReport", "extract", "plan_tasks"]

log = logging.getLogger("pipeline")
_PROBE_BATCH = 64


@dataclass
class ExtractReport:
    """What one ``extract`` run did."""

    store: str
    files: int = 0
    files_ok: int = 0
    files_warned: int = 0
    files_failed: int = 0
    files_pending: int = 0
    segments: int = 0
    chunks_total: int = 0
    chunks_computed: int = 0
    chunks_skipped: int = 0
    audio_seconds: float = 0.0
    audio_seconds_computed: float = 0.0
    elapsed: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)
    warned: list[tuple[str, str]] = field(default_factory=list)
    #: summed over chunk tasks (seconds of each task's own time): decode, resample, compute, write
    timings: dict[str, float] = field(default_factory=dict)
    #: wall time: prepare (listing, probing, layout, cluster start), tasks (template included,
    #: written while the first tasks compute), finalise
    phases: dict[str, float] = field(default_factory=dict)
    #: with labels asked for (a CSV or --label-from): inputs left without a label, and the
    #: labels CSV's paths that matched no input
    unlabeled: int = 0
    unmatched_labels: list[str] = field(default_factory=list)

    def summary(self) -> str:
        speed = self.audio_seconds_computed / self.elapsed if self.elapsed > 0 else 0.0
        return (
            f"{self.files} files ({self.files_ok} ok, {self.files_warned} warned, {self.files_failed} failed"
            + (f", {self.files_pending} pending" if self.files_pending else "")
            + f"), {self.segments} segments, {self.audio_seconds / 3600:.2f} h audio; "
            f"{self.chunks_computed} of {self.chunks_total} chunks computed in {self.elapsed:.1f} s "
            f"({speed:.0f}x real time) -> {self.store}"
            + self._labels_note()
        )

    def _labels_note(self) -> str:
        parts = []
        if self.unlabeled:
            parts.append(f"{self.unlabeled} inputs without a label")
        if self.unmatched_labels:
            first = ", ".join(self.unmatched_labels[:3])
            parts.append(f"{len(self.unmatched_labels)} labels CSV rows matched no input (first: {first})")
        return "; labels: " + "; ".join(parts) if parts else ""


def plan_tasks(layout: Layout, pending: Sequence[int] | None = None) -> list[ChunkTask]:
    """One task per chunk: the parts of files whose segments fall into it."""
    # the chunk module brings the kernels (librosa): imported when there is work, not with graph
    from .chunk import ChunkFile, ChunkTask

    wanted = range(layout.n_chunks) if pending is None else pending
    by_chunk: dict[int, list[ChunkFile]] = {c: [] for c in wanted}
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
        tasks.append(ChunkTask(index=c, start=lo, stop=hi, files=tuple(by_chunk[c])))
    return tasks


# -- execution back-ends -------------------------------------------------------------------
class _Runner:
    """Runs functions either on a Dask client or in this process (``synchronous``)."""

    def __init__(self, client: Any | None) -> None:
        self.client = client

    def map(self, func: Callable[..., Any], items: Sequence[Any], *args: Any, key: str = "task",
            meanwhile: Callable[[], None] | None = None) -> Iterator[Any]:
        """``func(item, *args)`` for each item, in completion order; ``meanwhile()`` runs here
        once the tasks are submitted (in this process, before any task, when there is no client)."""
        if self.client is None:
            if meanwhile is not None:
                meanwhile()
            for item in items:
                yield func(item, *args)
            return
        from distributed import as_completed

        futures = [
            self.client.submit(func, item, *args, key=f"{key}-{i}-{os.urandom(4).hex()}", retries=2, pure=False)
            for i, item in enumerate(items)
        ]
        try:
            if meanwhile is not None:
                meanwhile()
            for future in as_completed(futures, loop=self.client.loop):
                yield future.result()
        finally:
            for future in futures:
                future.release()


@contextlib.contextmanager
def _cluster(client: Any | None, scheduler: str | None, workers: int | None, out: TextIO) -> Iterator[Any | None]:
    """Yield a distributed client (given, connected, or a new local cluster) or None."""
    if client is not None:
        yield client
        return
    if scheduler == "synchronous":
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise SchedulerError("dask.distributed is needed for a cluster run") from exc
    if scheduler:
        try:
            own = Client(scheduler, timeout="5s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(f"Cannot reach the Dask scheduler at {scheduler}: {one_line(exc)}") from exc
        try:
            _print_dashboard(own, out)
            yield own
        finally:
            own.close()
        return
    n = workers or max(1, os.cpu_count() or 1)
    # everything on loopback: the dashboard would otherwise listen on all interfaces. Worker
    # processes start with SIGINT ignored: Ctrl-C (sent to the whole process group) reaches
    # this process alone, which says one line and closes the cluster, instead of every worker
    # printing its KeyboardInterrupt. Their logs stay quiet below CRITICAL: a failing task is
    # reported once, by this process, in one line. Workers import the kernels as they start
    # (preload), while this process probes, not in their first task: 3.1 -> 0.8 s of tasks for
    # 1 min of audio on 2 workers.
    with _sigint_ignored():
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL, preload=["pipeline.chunk"],
        )
    own = Client(cluster, set_as_default=False)
    try:
        _print_dashboard(own, out)
        yield own
    finally:
        own.close()
        cluster.close()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while the cluster starts its worker processes, which inherit that (an
    ignored signal stays ignored across exec, and Python then installs no handler of its own).
    A Ctrl-C in those 1-2 s is lost (the next one works). In the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_dashboard(client: Any, out: TextIO) -> None:
    link = getattr(client, "dashboard_link", None)
    if link:
        print(f"Dask dashboard: {link}", file=out)


def _probe_many(uris: Sequence[str], storage_options: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [probe_file(uri, storage_options).to_dict() for uri in uris]


def _assign_labels(
    uris: Sequence[str], labels: str | Mapping[str, tuple[str, str]] | None, label_from: str | None,
    storage_options: Mapping[str, Any] | None, split_fractions: Sequence[float],
) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """``{uri: (label, split)}`` for every input, and the table's paths that match no input."""
    table: Mapping[str, tuple[str, str]] = {}
    if isinstance(labels, str):
        table = read_labels_csv(labels, storage_options)
    elif labels is not None:
        table = labels
    if label_from not in (None, "parent"):
        raise InputError(f"Expected --label-from parent, got {label_from!r}")
    out: dict[str, tuple[str, str]] = {}
    for uri in uris:
        label, split = table.get(uri, ("", ""))
        if not label and label_from == "parent":
            label = label_from_parent(uri)
        out[uri] = (label, split or hash_split(uri, split_fractions))
    return out, sorted(set(table) - set(uris))


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
    store_url = _normalise_store(os.fspath(store))
    check_url_credentials(store_url)
    uris = list_inputs([inputs] if isinstance(inputs, str | os.PathLike) else list(inputs), options)
    assigned, unmatched = _assign_labels(uris, labels, label_from, options, split_fractions)
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
        existing = _check_existing(store_url, options, config)
    elif existing and overwrite:
        remove_store(store_url, options)
        existing = False

    report = ExtractReport(store=store_url)
    template: Callable[[], None] | None = None
    scheduler, probed = _auto_scheduler(uris, options, client=client, scheduler=scheduler, workers=workers, out=out)
    with _cluster(client, scheduler, workers, out) as dask_client:
        runner = _Runner(dask_client)
        if existing:
            # what this process reads of the store (coordinates, reports) is small: read
            # here, not through the cluster's scheduler (chunk and probe tasks go there explicitly)
            with dask.config.set(scheduler="synchronous"):
                _rollback_unfinished_append(store_url, options)
                ds = open_raw(store_url, options)
                known = set(as_text(ds["file_path"]))
                new = [u for u in uris if u not in known]
                layout = _layout_from_store(ds)
                done = np.asarray(ds["chunk_done"].values).astype(bool)
                print(f"resuming: {int(done.sum())} of {done.size} chunks done", file=out)
                stored = dict(zip(as_text(ds["file_path"]), as_text(ds["file_fingerprint"]), strict=True))
                changed = [u for u in uris if stored.get(u) and fingerprint(u, options) != stored[u]]
                if changed:
                    print(f"note: {len(changed)} input files changed since they were extracted (first: {changed[0]}); "
                          "they are not re-extracted: `info` lists them, --overwrite rebuilds the store", file=out)
                if new:
                    entries = _manifest(runner, new, options, assigned, probed)
                    layout = _append(store_url, options, layout, entries, config)
                    print(f"appending {len(new)} new files ({layout.n_chunks - done.size} new chunks)", file=out)
                    done = np.concatenate([done, np.zeros(layout.n_chunks - done.size, dtype=bool)])
            pending = [int(c) for c in np.flatnonzero(~done)]
        else:
            entries = _manifest(runner, uris, options, assigned, probed)
            layout = build_layout(entries, config, chunk=segment_chunk)
            extra = {"split_fractions": [float(f) for f in split_fractions]}
            template = functools.partial(_write_template, store_url, options, layout, config, extra)
            pending = list(range(layout.n_chunks))
        tasks = plan_tasks(layout, pending)
        report.chunks_total = layout.n_chunks
        report.chunks_skipped = layout.n_chunks - len(tasks)
        # on a cluster that lives in this process, a new store's template is written while the
        # first tasks decode and compute: they wait for it (at a gate on the scheduler) only to
        # write. Elsewhere it is written first: a remote cluster outlives a killed client, and
        # tasks waiting for a template that never comes would hold its workers until timeout.
        gate = TemplateGate.create(dask_client) if template is not None and tasks and _owns_cluster(dask_client) else None
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
        _finalize(store_url, options, report)
    report.phases["finalise"] = time.perf_counter() - finalise_started
    report.elapsed = time.perf_counter() - started
    return report


def _manifest(runner: _Runner, uris: Sequence[str], options: Mapping[str, Any], assigned: Mapping[str, tuple[str, str]],
              probed: Mapping[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Header facts of every input (those already ``probed`` reused), the rest probed in batches
    on the cluster, in URI order."""
    known = probed or {}
    entries: list[dict[str, Any]] = [dict(known[u]) for u in uris if u in known]
    todo = [u for u in uris if u not in known]
    batches = [todo[i : i + _PROBE_BATCH] for i in range(0, len(todo), _PROBE_BATCH)]
    for batch in runner.map(_probe_many, batches, options, key="probe"):
        entries.extend(batch)
    entries.sort(key=lambda e: e["uri"])
    for entry in entries:
        entry["label"], entry["split"] = assigned[entry["uri"]]
    return entries


#: audio below which a default run (no client, --scheduler or --workers) stays in this process:
#: a local cluster costs about 8 s here (start, worker imports, close: 12.8 s for 1 min of
#: 30-s clips on 2 workers vs 4.3 s in-process; 5.4 s in-process for 20 min), which its second
#: core earns back only past about 2 h of audio on this 2-core machine and past about 1 h on a
#: laptop with more cores. Set ``pipeline.in-process-below-seconds`` in dask's config to change it.
IN_PROCESS_BELOW_SECONDS = 1800.0


def _auto_scheduler(uris: Sequence[str], options: Mapping[str, Any], *, client: Any | None, scheduler: str | None,
                    workers: int | None, out: TextIO) -> tuple[str | None, dict[str, dict[str, Any]] | None]:
    """``("synchronous", probed)`` for a default run too small to pay for a cluster, else the
    scheduler as given (with the headers probed, when there were few enough to probe here)."""
    if client is not None or scheduler is not None or workers is not None or len(uris) > _PROBE_BATCH:
        return scheduler, None
    probed = {entry["uri"]: entry for entry in _probe_many(uris, options)}
    seconds = sum(e["frames"] / e["sample_rate"] for e in probed.values() if not e["error"] and e["sample_rate"])
    limit = float(dask.config.get("pipeline.in-process-below-seconds", IN_PROCESS_BELOW_SECONDS))
    if seconds >= limit:
        return scheduler, probed
    print(f"in-process: {len(uris)} files, {seconds / 60:.1f} min of audio (a local cluster pays off above "
          f"{limit / 60:.0f} min; --workers N starts one)", file=out)
    return "synchronous", probed


_APPEND_ATTR = "append_in_progress"
_GROWING_DIMS = ("segment", "file", "chunk")


def _resize_all(store_url: str, options: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    """Resize every array along the growing dimensions to ``sizes``."""
    group = open_group(store_url, options, mode="r+")
    for name in list(group.array_keys()):
        array = zarr_array(group, name)
        dims = getattr(array.metadata, "dimension_names", None) or ()
        shape = tuple(sizes.get(str(d), n) if d in _GROWING_DIMS else n for d, n in zip(dims, array.shape, strict=True))
        if shape != array.shape:
            array.resize(shape)


def _append(store_url: str, options: Mapping[str, Any], old: Layout, entries: Sequence[dict[str, Any]], config: FeatureConfig) -> Layout:
    """Grow the store by new files: new segments start on a chunk boundary, so no finished chunk
    is ever rewritten. Marked in the attributes until complete (a crash is rolled back on rerun)."""
    from .schema import file_coords, segment_coords

    start = old.n_chunks * old.chunk
    layout = build_layout(entries, config, chunk=old.chunk, first_segment=start, first_file_records=old.files)
    if layout.n_segments == start:  # no new segments (every new file failed): no padding either
        layout = Layout(files=layout.files, n_segments=old.n_segments, chunk=old.chunk)
    group = open_group(store_url, options, mode="r+")
    # a JSON string, like every attribute a netCDF tool may meet (schema.netcdf_safe)
    group.attrs[_APPEND_ATTR] = json.dumps({"segment": old.n_segments, "file": len(old.files), "chunk": old.n_chunks})
    _resize_all(store_url, options, {"segment": layout.n_segments, "file": len(layout.files), "chunk": layout.n_chunks})
    seg = segment_coords(layout, config)
    for name, values in seg.items():
        zarr_array(group, name)[old.n_segments :] = _storable(values[old.n_segments :])
    for name, (values, _, _) in file_coords(layout.files).items():
        zarr_array(group, name)[len(old.files) :] = _storable(values[len(old.files) :])
    if layout.n_chunks > old.n_chunks:
        zarr_array(group, "chunk_report")[old.n_chunks :] = _storable(np.full(layout.n_chunks - old.n_chunks, "", dtype=object))
    del group.attrs[_APPEND_ATTR]
    consolidate(store_url, options)
    return layout


def _rollback_unfinished_append(store_url: str, options: Mapping[str, Any]) -> None:
    group = open_group(store_url, options, mode="r+")
    before = group.attrs.get(_APPEND_ATTR)
    if isinstance(before, str):
        before = json.loads(before)
    if not isinstance(before, dict):
        return
    _resize_all(store_url, options, {k: int(v) for k, v in before.items()})
    del group.attrs[_APPEND_ATTR]
    consolidate(store_url, options)


def _storable(values: np.ndarray) -> np.ndarray:
    """Object string arrays as numpy's variable-width strings, which zarr stores as such."""
    return values.astype(np.dtypes.StringDType()) if values.dtype == object else values


def _normalise_store(url: str) -> str:
    if "://" in url and not url.startswith("file://"):
        return url.rstrip("/")
    return os.path.abspath(os.path.expanduser(url.removeprefix("file://")))


def _check_existing(store_url: str, options: Mapping[str, Any], config: FeatureConfig) -> bool:
    """True when the store can be resumed; False when it holds only a half-written template."""
    group = open_group(store_url, options, mode="r")
    attrs = dict(group.attrs)
    if attrs.get(TEMPLATE_ATTR) != "complete":
        if "sr" in attrs and "n_fft" in attrs and "segment_chunk" in attrs:
            return False  # our template, interrupted while written: nothing computed yet, rewrite it
        raise SchemaError(f"Expected a feature store at {store_url}, found another Zarr store (use another path, or --overwrite)")
    theirs = store_config(attrs)
    diffs = config.differences(theirs)
    if diffs:
        raise ConfigMismatch(
            f"{store_url} was made with a different config ({'; '.join(diffs)} [new != stored]); "
            "use the same options, another store, or --overwrite"
        )
    return True


def _layout_from_store(ds: Any) -> Layout:
    """The layout a store was written with, read back from its per-file coordinates."""
    from .schema import FileRecord

    text = {k: as_text(ds[f"file_{k}"]) for k in ("path", "label", "split", "fingerprint", "format", "error", "warning")}
    ints = {k: np.asarray(ds[f"file_{k}"].values) for k in ("bytes", "sample_rate", "channels", "frames", "first_segment", "segments")}
    records = [
        FileRecord(
            uri=str(text["path"][i]), label=str(text["label"][i]), split=str(text["split"][i]),
            size=int(ints["bytes"][i]), fingerprint=str(text["fingerprint"][i]),
            sample_rate=int(ints["sample_rate"][i]), channels=int(ints["channels"][i]),
            frames=int(ints["frames"][i]), format=str(text["format"][i]), error=str(text["error"][i]),
            first_segment=int(ints["first_segment"][i]), n_segments=int(ints["segments"][i]),
            warning=str(text["warning"][i]),
        )
        for i in range(ds.sizes["file"])
    ]
    return Layout(files=tuple(records), n_segments=ds.sizes["segment"], chunk=int(ds.attrs["segment_chunk"]))


def _write_template(store_url: str, options: Mapping[str, Any], layout: Layout, config: FeatureConfig,
                    extra_attrs: dict[str, Any] | None = None) -> None:
    ds, encoding = make_template(layout, config, extra_attrs=extra_attrs)
    with quiet_zarr():
        ds.to_zarr(
            store_url, mode="w", compute=False, encoding=encoding, consolidated=False, zarr_format=3,
            storage_options=dict(options) if "://" in store_url else None,
        )
    group = open_group(store_url, options, mode="r+")
    group.attrs[TEMPLATE_ATTR] = "complete"
    consolidate(store_url, options)


def _owns_cluster(client: Any | None) -> bool:
    """Whether the client's cluster is a LocalCluster of this process, which ends with it
    (a Kubernetes, SSH or jobqueue cluster object outlives a killed client)."""
    if client is None or getattr(client, "cluster", None) is None:
        return False
    from distributed import LocalCluster

    return isinstance(client.cluster, LocalCluster)


def _template_then_open(template: Callable[[], None], gate: TemplateGate) -> None:
    """Write the template, then open the gate the tasks wait at (a failure fails it: extract)."""
    template()
    gate.open(ok=True)


def _run_tasks(
    runner: _Runner, tasks: Sequence[ChunkTask], store_url: str, config: FeatureConfig,
    options: Mapping[str, Any], progress: bool, out: TextIO, report: ExtractReport,
    *, gate: str | None = None, meanwhile: Callable[[], None] | None = None,
) -> None:
    from tqdm import tqdm

    from .chunk import run_chunk

    sizes = {t.index: t.stop - t.start for t in tasks}  # a result's task in O(1), not a list search
    total_segments = sum(sizes.values())
    files_total = len({f.file_index for t in tasks for f in t.files})
    files_seen: set[int] = set()
    timings: dict[str, float] = {}
    bar = tqdm(total=total_segments, unit="seg", file=out, disable=not progress or not tasks,
               dynamic_ncols=True, mininterval=0.5)
    t0 = time.perf_counter()
    audio = 0.0
    try:
        for result in runner.map(run_chunk, tasks, store_url, config.to_dict(), options, gate, key="chunk",
                                 meanwhile=meanwhile):
            report.chunks_computed += 1
            audio += float(result["audio_seconds"])
            files_seen.update(int(k) for k in result["files"])
            for k, v in result["timings"].items():
                timings[k] = timings.get(k, 0.0) + float(v)
            rate = audio / 3600 / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix_str(f"files {len(files_seen)}/{files_total}, {rate:.3f} audio-h/s", refresh=False)
            bar.update(sizes[int(result["chunk"])])
    finally:
        bar.close()
    report.timings = timings
    report.audio_seconds_computed = audio


def _finalize(store_url: str, options: Mapping[str, Any], report: ExtractReport) -> None:
    """Merge chunk reports into per-file status, error and warning; refresh metadata."""
    ds = open_raw(store_url, options)
    reports = chunk_reports(ds)
    done = np.asarray(ds["chunk_done"].values).astype(bool)
    n_files = ds.sizes["file"]
    status = as_text(ds["file_status"])
    errors = as_text(ds["file_error"])
    # the probe's warnings (a header that declares more than the file holds) stay; a chunk's
    # warning fills in where there is none
    warnings_ = np.asarray(as_text(ds["file_warning"]), dtype=object).copy()
    first = np.asarray(ds["file_first_segment"].values)
    count = np.asarray(ds["file_segments"].values)
    chunk = int(ds.attrs["segment_chunk"])
    header_error = np.array([bool(e) for e in errors])
    for rep in reports:
        for key, info in rep.get("files", {}).items():
            i = int(key)
            if info["status"] == "error" and not errors[i]:
                errors[i] = info["error"]
            if info.get("warning") and not warnings_[i]:
                warnings_[i] = info["warning"]
    audio_seconds = 0.0
    for i in range(n_files):
        if header_error[i] or errors[i]:
            status[i] = "error"
            continue
        chunks = range(int(first[i]) // chunk, (int(first[i]) + int(count[i]) - 1) // chunk + 1) if count[i] else range(0)
        status[i] = "ok" if all(done[c] for c in chunks) else "pending"
    for rep in reports:
        audio_seconds += float(rep.get("audio_seconds", 0.0))
    group = open_group(store_url, options, mode="r+")
    zarr_array(group, "file_status")[:] = _storable(status)
    zarr_array(group, "file_error")[:] = _storable(errors)
    zarr_array(group, "file_warning")[:] = _storable(warnings_)
    group.attrs["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
    consolidate(store_url, options)

    paths = as_text(ds["file_path"])
    report.files = n_files
    report.files_failed = int((status == "error").sum())
    report.files_pending = int((status == "pending").sum())
    report.files_warned = int(sum(1 for i in range(n_files) if status[i] == "ok" and warnings_[i]))
    report.files_ok = int((status == "ok").sum())
    report.failed = [(str(paths[i]), str(errors[i])) for i in range(n_files) if status[i] == "error"]
    report.warned = [(str(paths[i]), str(warnings_[i])) for i in range(n_files) if warnings_[i]]
    report.segments = int(visible_segments(ds, status).size)  # as open_store shows them
    report.audio_seconds = audio_seconds

