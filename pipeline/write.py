"""The store's writes: template, append, rollback, finalise, and the file table's round trip.

Everything that changes a store apart from a chunk task's own region (:mod:`pipeline.chunk`)
happens here, in the client, under the store's claim (:mod:`pipeline.lock`):

- :func:`write_template`: a new store's arrays (declared in :mod:`pipeline.template`),
  coordinates and attributes, what the tasks write left unwritten, in two steps:
  :func:`write_structure` (what tasks need to start) and :func:`write_values` (the plan's
  coordinates, while they compute); ``pipeline_template = "complete"`` last.
- :func:`append`: new files grow every array along ``segment``/``file``/``chunk``, starting on a
  chunk boundary (no finished chunk is rewritten); marked until complete, and
  :func:`rollback_unfinished_append` undoes a crashed one on the next run.
- :func:`finalize`: the chunk reports merged into per-file status, error and warning.
- :func:`file_columns` / :func:`file_records`: ``FileRecord``s to the ``file_*`` coordinates
  and back.

A new store is written and finalised through zarr alone: no xarray, pandas or dask.array
(about 1.2 s of imports, most of a small run's time on the command line).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from .config import FeatureConfig
from .errors import ConfigMismatch, SchemaError
from .families import family
from .flags import flag
from .grow import added_families
from .nogc import gc_paused
from .peek import StoreView, peek_store
from .results import ChunkResults, ExtractReport, keep_first_messages
from .schema import FileRecord, Layout, build_layout, segment_coords
from .store import (
    COPIED,
    FINALIZED,
    KNOWN,
    READ,
    TEMPLATE_ATTR,
    TEMPLATE_COMPLETE,
    TEMPLATE_FILES,
    as_text,
    consolidate,
    finalized_copy,
    new_group,
    open_group,
    store_config,
    store_families,
    task_columns,
    visible_segments,
    zarr_array,
)
from .template import (
    COMPRESSORS,
    FILE_DERIVED,
    FILE_FIELDS,
    as_dataset,
    create_arrays,
    root_attributes,
    root_coordinates,
    storable,
    store_arrays,
)

if TYPE_CHECKING:
    import xarray as xr

    from .probe import ManifestEntry
    from .store import Readable

__all__ = [
    "append",
    "check_existing",
    "complete_template",
    "file_columns",
    "file_records",
    "finalize",
    "layout_from_store",
    "make_template",
    "rollback_unfinished_append",
    "write_structure",
    "write_template",
    "write_values",
]

_APPEND_ATTR = "append_in_progress"
_GROWING_DIMS = ("segment", "file", "chunk")


def file_columns(files: Sequence[FileRecord]) -> dict[str, tuple[np.ndarray, str, str]]:
    """The ``file_*`` coordinates of ``files``: ``{name: (values, description, units)}``."""
    # field by field from the records transposed (1.2 million at 10,000 hours): not a getattr
    # per field per file; 13 tuples of a million, built without the cyclic collector's pauses
    with gc_paused():
        fields = dict(zip(FileRecord._fields, zip(*files, strict=True), strict=True)) if files else {}
    out: dict[str, tuple[np.ndarray, str, str]] = {
        name: (np.array(fields.get(key, ()), dtype=dtype), desc, units)
        for key, (name, dtype, desc, units) in FILE_FIELDS.items()
    }
    errors, frames, rates = out["file_error"][0], out["file_frames"][0], out["file_sample_rate"][0]
    derived = {"file_status": np.where(errors != "", "error", "pending"),
               "file_duration": np.divide(frames, rates, out=np.zeros(len(files)), where=rates != 0)}
    for name, (dtype, desc, units) in FILE_DERIVED.items():
        out[name] = (derived[name].astype(dtype), desc, units)
    return out


def file_records(ds: Readable) -> tuple[FileRecord, ...]:
    """The ``FileRecord`` of every file of a store, read back from its ``file_*`` coordinates."""
    columns: dict[str, list[Any]] = {}
    for key, (name, dtype, _, _) in FILE_FIELDS.items():
        values = as_text(ds[name]) if dtype is object else np.asarray(ds[name].values)
        columns[key] = [str(v) for v in values] if dtype is object else [int(v) for v in values]
    return tuple(FileRecord(**{key: columns[key][i] for key in FILE_FIELDS}) for i in range(ds.sizes["file"]))


def layout_from_store(ds: Readable) -> Layout:
    """The layout a store was written with."""
    return Layout(files=file_records(ds), n_segments=ds.sizes["segment"], chunk=int(ds.attrs["segment_chunk"]))


def make_template(layout: Layout, config: FeatureConfig, *, extra_attrs: dict[str, Any] | None = None
                  ) -> tuple[xr.Dataset, dict[str, dict[str, Any]]]:
    """The store :func:`write_template` writes, as an ``xr.Dataset`` with its values (Dask
    placeholders for everything tasks write) and its zarr encoding: what
    ``to_zarr(compute=False)`` writes the same store from (tests/test_write.py)."""
    values = {**segment_coords(layout, config), **{name: v for name, (v, _, _) in file_columns(layout.files).items()},
              "chunk_report": np.full(layout.n_chunks, "", dtype=object)}
    return as_dataset(store_arrays(layout, config), values, root_attributes(config, layout.chunk, extra_attrs))


def write_template(store_url: str, options: Mapping[str, Any], layout: Layout, config: FeatureConfig,
                   extra_attrs: dict[str, Any] | None = None) -> None:
    """Write a new store's template whole: :func:`write_structure`, then :func:`write_values`."""
    write_structure(store_url, options, layout, config, extra_attrs)
    write_values(store_url, options, layout, config)


def write_structure(store_url: str, options: Mapping[str, Any], layout: Layout, config: FeatureConfig,
                    extra_attrs: dict[str, Any] | None = None) -> None:
    """A new store's first step: the root attributes, every array's metadata, the axes' values
    and the file table (``file_*``); then ``pipeline_template = "files"``; consolidated. All a
    chunk task needs to write its region, so the tasks can start; and all a later run needs to
    complete the template (:func:`complete_template`) if this one stops before
    :func:`write_values` has: a chunk done meanwhile is never lost.

    Through zarr alone (:mod:`pipeline.template`), as xarray would write it. Nothing is
    computed from the layout's files here but the file table: the plan's per-segment
    coordinates (12 million at 10,000 hours) are :func:`write_values`' job, done while the
    tasks compute.
    """
    specs = store_arrays(layout, config)
    # the root attributes first: a store interrupted from here on is known as ours (rewritten)
    group = new_group(store_url, options, {**root_attributes(config, layout.chunk, extra_attrs),
                                           **root_coordinates(specs)})
    create_arrays(group, specs)
    for name, (values, _, _) in file_columns(layout.files).items():
        _fill(zarr_array(group, name), values)
    group.attrs[TEMPLATE_ATTR] = TEMPLATE_FILES  # after the file table: what completes the rest
    consolidate(store_url, options)


def write_values(store_url: str, options: Mapping[str, Any], layout: Layout, config: FeatureConfig) -> None:
    """A new store's second step, after :func:`write_structure` (while the tasks compute: they
    write none of these): the plan's per-segment coordinates; then ``pipeline_template =
    "complete"``, last. Chunk objects only, and the root metadata replaced whole at the end,
    its consolidated metadata kept: a task opening the store meanwhile (consolidated) reads
    the old or the new, never a root without it."""
    group = open_group(store_url, options, mode="r+", consolidated=True)
    for name, values in segment_coords(layout, config).items():
        _fill(zarr_array(group, name), values)
    # opened consolidated, the group writes its root with the consolidated metadata it read
    # (the arrays' metadata is unchanged since write_structure); one put, atomic on every store
    group.attrs[TEMPLATE_ATTR] = TEMPLATE_COMPLETE


def complete_template(store_url: str, options: Mapping[str, Any]) -> None:
    """Finish the template of a store an earlier run left at ``pipeline_template = "files"``
    (stopped while its tasks computed, before :func:`write_values` ended): its per-segment
    coordinates, from the stored file table and config. Nothing to do on a complete store."""
    group = open_group(store_url, options, mode="r")
    if group.attrs.get(TEMPLATE_ATTR) != TEMPLATE_FILES:
        return
    ds = peek_store(store_url, options)
    write_values(store_url, options, layout_from_store(ds), store_config(ds.attrs))


def check_existing(store_url: str, options: Mapping[str, Any], config: FeatureConfig) -> bool:
    """True when the store can be resumed (and grown by families ``config`` adds; one left at
    ``pipeline_template = "files"`` is completed first: :func:`complete_template`); False when
    it holds a template written no further than part of its structure (nothing computed: it
    is rewritten).

    Raises
    ------
    SchemaError
        The path holds a Zarr store this pipeline did not write.
    ConfigMismatch
        The store was made with another config, or holds families ``config`` leaves out.
    """
    group = open_group(store_url, options, mode="r")
    attrs = dict(group.attrs)
    if attrs.get(TEMPLATE_ATTR) not in (TEMPLATE_COMPLETE, TEMPLATE_FILES):
        if "sr" in attrs and "n_fft" in attrs and "segment_chunk" in attrs:
            return False  # our template, interrupted while written: nothing computed yet, rewrite it
        raise SchemaError(f"Expected a feature store at {store_url}, found another Zarr store (use another path, or --overwrite)")
    made = store_config(attrs)
    # more families than the store holds: the new ones are added (pipeline.grow); fewer: refused
    diffs = [d for d in config.differences(made) if not d.startswith("features:")]
    if not diffs:
        added_families(store_url, made, config)
    stored = store_families(attrs)
    for name in made.features:
        mine = family(name).describe()
        # stores from before the registry record no families; an added family's flag is the store's
        theirs = {k: v for k, v in stored.get(name, mine).items() if k != "flag"}
        if mine != theirs:
            diffs.append(f"family {name}: {_describe(mine)} != {_describe(theirs)}")
    if diffs:
        raise ConfigMismatch(
            f"{store_url} was made with a different config ({'; '.join(diffs)} [new != stored]); "
            "use the same options, another store, or --overwrite"
        )
    return True


def _describe(origin: Mapping[str, str]) -> str:
    return " ".join(f"{key}={origin[key]}" for key in sorted(origin))


def _resize_all(store_url: str, options: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    """Resize every array along the growing dimensions to ``sizes``."""
    group = open_group(store_url, options, mode="r+")
    for name in list(group.array_keys()):
        array = zarr_array(group, name)
        dims = getattr(array.metadata, "dimension_names", None) or ()
        shape = tuple(sizes.get(str(d), n) if d in _GROWING_DIMS else n for d, n in zip(dims, array.shape, strict=True))
        if shape != array.shape:
            array.resize(shape)


def append(store_url: str, options: Mapping[str, Any], old: Layout, entries: Sequence[ManifestEntry],
           config: FeatureConfig) -> Layout:
    """Grow the store by new files: new segments start on a chunk boundary, so no finished chunk
    is ever rewritten. Marked in the attributes until complete (a crash is rolled back on rerun)."""
    start = old.n_chunks * old.chunk
    layout = build_layout(entries, config, chunk=old.chunk, first_segment=start, first_file_records=old.files)
    if layout.n_segments == start:  # no new segments (every new file failed): no padding either
        layout = Layout(files=layout.files, n_segments=old.n_segments, chunk=old.chunk)
    group = open_group(store_url, options, mode="r+")
    # a JSON string, like every attribute a netCDF tool may meet (schema.netcdf_safe)
    group.attrs[_APPEND_ATTR] = json.dumps({"segment": old.n_segments, "file": len(old.files), "chunk": old.n_chunks})
    _resize_all(store_url, options, {"segment": layout.n_segments, "file": len(layout.files), "chunk": layout.n_chunks})
    for name, values in segment_coords(layout, config).items():
        zarr_array(group, name)[old.n_segments :] = storable(values[old.n_segments :])
    for name, (values, _, _) in file_columns(layout.files).items():
        zarr_array(group, name)[len(old.files) :] = storable(values[len(old.files) :])
    if layout.n_chunks > old.n_chunks:
        zarr_array(group, "chunk_report")[old.n_chunks :] = storable(np.full(layout.n_chunks - old.n_chunks, "", dtype=object))
    del group.attrs[_APPEND_ATTR]
    consolidate(store_url, options)
    return layout


def rollback_unfinished_append(store_url: str, options: Mapping[str, Any]) -> None:
    """Shrink the store back to its size before an append that did not finish (if any)."""
    group = open_group(store_url, options, mode="r+")
    before = group.attrs.get(_APPEND_ATTR)
    if isinstance(before, str):
        before = json.loads(before)
    if not isinstance(before, dict):
        return
    _resize_all(store_url, options, {k: int(v) for k, v in before.items()})
    del group.attrs[_APPEND_ATTR]
    consolidate(store_url, options)


def _fill(array: zarr.Array[Any], values: np.ndarray | None) -> None:
    """``array[:] = values`` (strings or numbers), skipped where nothing would be stored: no
    values, or strings all "" (the fill value)."""
    if values is not None and values.size and (values.dtype != object or (values != "").any()):
        array[:] = storable(values)


#: task chunks per object of the finalised copy's per-segment columns (47 objects for 12
#: million segments in chunks of 252)
_COPY_CHUNKS = 1024


def finalize(store_url: str, options: Mapping[str, Any], report: ExtractReport, results: ChunkResults | None = None) -> None:
    """Merge the chunk reports into per-file status, error and warning, write the finalised copy
    of the per-segment columns tasks write (:func:`pipeline.store.task_columns`), and fill
    ``report``'s file and segment counts from the result.

    ``results`` (what this run's tasks returned, merged as they arrived) stands for their chunks'
    reports and columns; the last finalise's copy for the chunks it covers (their reports'
    errors and warnings are in the file columns it wrote); only chunks done elsewhere (a
    crashed run, a store older than the copy) are read one object per chunk.
    """
    # the consolidated metadata is current: nothing changes a shape while tasks run
    group = open_group(store_url, options, mode="r", consolidated=True)
    ds = StoreView(group)  # the small variables, each read whole once, through zarr alone
    done = flag(ds)
    n_files = ds.sizes["file"]
    chunk = int(ds.attrs["segment_chunk"])
    known = None if results is None else (results.received, {"segment_valid": results.valid,
                                                              "segment_valid_frames": results.valid_frames})
    all_known = results is not None and results.received.size == done.size and not (done & ~results.received).any()
    copy = None if all_known else finalized_copy(group)
    columns, source = task_columns(group, done, chunk, known, copy)
    errors = as_text(ds["file_error"])
    # the probe's warnings (a header that declares more than the file holds) stay; a chunk's
    # warning fills in where there is none
    warnings_ = np.asarray(as_text(ds["file_warning"]), dtype=object).copy()
    first = np.asarray(ds["file_first_segment"].values)
    count = np.asarray(ds["file_segments"].values)
    audio = np.zeros(done.size, dtype=np.float64)
    found_errors: dict[int, tuple[int, str]] = {}
    found_warnings: dict[int, tuple[int, str]] = {}
    if results is not None:
        mine = source == KNOWN
        audio[mine] = results.audio_seconds[: done.size][mine]
        found_errors.update(results.errors)
        found_warnings.update(results.warnings)
    if copy is not None:
        covered = source == COPIED
        audio[covered] = copy[1][np.flatnonzero(covered)]
    unread = np.flatnonzero(source == READ)
    texts: list[str] = [str(t) for t in np.asarray(zarr_array(group, "chunk_report").get_orthogonal_selection(unread))] if unread.size else []
    for c, text in zip(unread.tolist(), texts, strict=True):
        if not text:
            continue  # no report (written before its done-flag: never, unless by hand)
        rep = json.loads(text)
        audio[c] = float(rep["audio_seconds"])
        keep_first_messages(rep, c, found_errors, found_warnings)
    for i, (_, message) in found_errors.items():
        if not errors[i]:
            errors[i] = message
    for i, (_, message) in found_warnings.items():
        if not warnings_[i]:
            warnings_[i] = message
    # a file is ok once every chunk holding one of its segments is done: vectorised over files
    # (1.2 million at 10,000 hours) with a running count of the chunks not done
    not_done = np.concatenate([[0], np.cumsum(~done)])
    has = count > 0  # a file with no segments (failed, or too short for one) is in no chunk
    lo, hi = np.where(has, first // chunk, 0), np.where(has, (first + count - 1) // chunk, 0)
    pending = has & (not_done[hi + 1] - not_done[lo] > 0)
    status = np.where(errors != "", "error", np.where(pending, "pending", "ok")).astype(object)
    writable = open_group(store_url, options, mode="r+")
    covered_array = _write_copy(writable, columns, audio, chunk)
    zarr_array(writable, "file_status")[:] = storable(status)
    zarr_array(writable, "file_error")[:] = storable(errors)
    zarr_array(writable, "file_warning")[:] = storable(warnings_)
    writable.attrs["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
    consolidate(store_url, options)
    # last: the copy covers these chunks only once all of it and the file columns are written
    covered_array[:] = done.astype(np.uint8)

    paths = as_text(ds["file_path"])
    report.files = n_files
    report.files_failed = int((status == "error").sum())
    report.files_pending = int((status == "pending").sum())
    report.files_warned = int(((status == "ok") & (warnings_ != "")).sum())
    report.files_ok = int((status == "ok").sum())
    report.failed = [(str(paths[i]), str(errors[i])) for i in np.flatnonzero(status == "error").tolist()]
    report.warned = [(str(paths[i]), str(warnings_[i])) for i in np.flatnonzero(warnings_ != "").tolist()]
    # as open_store shows them
    report.segments = int(visible_segments(ds, status, columns["segment_valid"]).size)
    report.audio_seconds = float(audio[done].sum())


def _write_copy(group: zarr.Group, columns: Mapping[str, np.ndarray], audio: np.ndarray, chunk: int) -> zarr.Array[Any]:
    """The finalised copy (group ``finalized``), its ``chunk_covered`` left unset (all 0, as an
    earlier copy's is erased first): returned, for the caller to set last."""
    sub = group.create_group(FINALIZED, overwrite=True, attributes={
        "description": "what chunk tasks write per chunk, copied in few objects at the last finalise; "
                       "current for the chunks chunk_covered names that are done (see docs/store.md)"})
    n_chunks = int(audio.size)

    def one(name: str, values: np.ndarray | None, dim: str, size: int, per: int, dtype: Any, description: str) -> zarr.Array[Any]:
        array = sub.create_array(name, shape=(size,), chunks=(max(1, min(size, per)),), dtype=dtype, fill_value=0,
                                 compressors=COMPRESSORS, dimension_names=(dim,),
                                 attributes={"description": description})
        if values is not None and size:
            array[:] = values
        return array

    covered = one("chunk_covered", None, "chunk", n_chunks, n_chunks, np.uint8,
                  "1 where the copy holds the chunk's values (written last)")
    one("chunk_audio_seconds", audio, "chunk", n_chunks, n_chunks, np.float64, "audio seconds the chunk decoded")
    for name, values in columns.items():
        one(name, values, "segment", int(values.size), chunk * _COPY_CHUNKS, values.dtype, f"copy of {name}")
    return covered
