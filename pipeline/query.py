"""Reading a store back as tables and vectors: GTZAN-style tables, summary matrices, statistics.

Everything here works on the lazy dataset :func:`pipeline.store.open_store` returns (only
complete, valid segments, 1-D coordinates loaded). Row selection uses the loaded coordinates,
so only the selected rows of the Dask-backed summary variables are ever read. The similarity
search over these vectors is :mod:`pipeline.similar`.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import compute as dask_compute

from ._callable import make_module_callable
from .errors import ConfigError, InputError, SchemaError, StorageError, one_line
from .families import is_frame_dim, variable
from .schema import SPLITS, SUMMARY_STATS
from .standardize import moments
from .store import as_text, embedding_names, open_store, store_config

__all__ = [
    "as_dataset",
    "check_split",
    "compute_arrays",
    "feature_names",
    "query",
    "segment_files",
    "segment_ids",
    "standardize_stats",
    "summary_matrix",
    "summary_variables",
    "write_table",
]

def _names(value: Sequence[str] | str, what: str) -> list[str]:
    """A sequence of names as a list; a bare string counts as one name."""
    items = [value] if isinstance(value, str) else list(value)
    if not items:
        raise InputError(f"Expected at least one {what}, got none")
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        raise InputError(f"Expected {what} names as strings, got {bad[0]!r}")
    return items


def _family_of(ds: xr.Dataset, name: str) -> str | None:
    """The family a data variable belongs to: its ``family`` attribute (stores before the
    registry: the registry's, from the name)."""
    fam = ds[name].attrs.get("family")
    if fam:
        return str(fam)
    base, _, stat = name.rpartition("_")
    for candidate in (name, base if stat in SUMMARY_STATS else ""):
        try:
            return variable(candidate)[0].name if candidate else None
        except ConfigError:
            continue
    return None


def _store_summaries(ds: xr.Dataset) -> list[str]:
    """Per-segment vectors: each frame-level variable's summaries and per-segment variables
    (``tempo``), of every family the store holds, in store order."""
    out: list[str] = []
    for name in map(str, ds.data_vars):
        dims = ds[name].dims
        if dims[:1] != ("segment",) or any(is_frame_dim(str(d)) for d in dims[1:]):
            continue
        if _family_of(ds, name) is not None:
            out.append(name)
    return out


def summary_variables(ds: xr.Dataset, vars: Sequence[str] | None = None) -> list[str]:
    """The ``<var>_mean``/``<var>_std`` data variables of a store, in store order.

    Parameters
    ----------
    ds : xr.Dataset
        A feature store, as :func:`pipeline.store.open_store` returns it.
    vars : sequence of str, optional
        Frame-level variables (``mfcc`` selects ``mfcc_mean`` and ``mfcc_std``), feature
        families (``spectral``, ``zcr``), summary variables (``rms_mean``) or a learned
        embedding (``embedding``, :mod:`pipeline.embed`). Default: every summary of the audio
        (embeddings only when named).

    Returns
    -------
    list of str
        Summary variable names, de-duplicated, in the order the store holds them.

    Raises
    ------
    InputError
        A name is not in the store (the message lists what is).
    SchemaError
        The dataset holds no summary variables at all.
    """
    available = _store_summaries(ds)
    if not available:
        raise SchemaError("Expected <var>_mean/<var>_std summary variables in the store, got none")
    if vars is None:  # learned embeddings only when named: they are not features of the audio
        learned = set(embedding_names(ds.attrs))
        return [name for name in available if _family_of(ds, name) not in learned]
    wanted: set[str] = set()
    unknown: list[str] = []
    for name in _names(vars, "variable"):
        if name in available:
            wanted.add(name)
            continue
        matches = [v for v in available if _family_of(ds, v) == name]
        matches = matches or [f"{name}_{stat}" for stat in SUMMARY_STATS if f"{name}_{stat}" in available]
        if matches:
            wanted.update(matches)
        else:
            unknown.append(name)
    if unknown:
        families = list(dict.fromkeys(str(_family_of(ds, v)) for v in available))
        raise InputError(
            f"Expected families among {', '.join(families)} or variables among {', '.join(available)}, "
            f"got unknown {', '.join(repr(u) for u in unknown)}"
        )
    return [name for name in available if name in wanted]


def _bin_labels(ds: xr.Dataset, dim: str) -> list[str]:
    """Readable names of a bins axis: its coordinate labels when they are names or integers."""
    if dim in ds.coords and ds[dim].dims == (dim,):
        values = np.asarray(ds[dim].values)
        if values.dtype.kind in "iu":
            return [str(int(v)) for v in values]
        if values.dtype.kind in "OUST":
            return [str(v) for v in as_text(ds[dim])]
    return [str(i) for i in range(ds.sizes[dim])]


def feature_names(ds: xr.Dataset, vars: Sequence[str] | None = None) -> list[str]:
    """Column names of :func:`summary_matrix`: ``mfcc_mean_0``, ``chroma_std_C``, ``rms_mean``.

    Parameters
    ----------
    ds : xr.Dataset
        A feature store.
    vars : sequence of str, optional
        As for :func:`summary_variables`.

    Returns
    -------
    list of str
        One name per feature column, in :func:`summary_matrix` order.
    """
    names: list[str] = []
    for var in summary_variables(ds, vars):
        dims = ds[var].dims[1:]
        if not dims:
            names.append(var)
            continue
        if len(dims) != 1:
            raise SchemaError(f"Expected {var} to have dims (segment[, bins]), got {ds[var].dims}")
        names.extend(f"{var}_{label}" for label in _bin_labels(ds, str(dims[0])))
    return names


def compute_arrays(*arrays: da.Array) -> tuple[np.ndarray, ...]:
    """Compute Dask arrays in one pass (inputs they share are read once) as NumPy arrays."""
    results = dask_compute(*arrays)  # type: ignore[no-untyped-call]
    return tuple(np.asarray(result) for result in results)


def _segment_chunk(ds: xr.Dataset) -> int:
    n = int(ds.sizes["segment"])
    chunk = ds.attrs.get("segment_chunk")
    return max(1, int(chunk)) if isinstance(chunk, int | np.integer) else max(1, n)


def summary_matrix(ds: xr.Dataset, vars: Sequence[str] | None = None) -> da.Array:
    """The summary variables as one lazy ``(n_segments, n_features)`` float32 matrix.

    Parameters
    ----------
    ds : xr.Dataset
        A feature store; Dask-backed variables stay lazy, NumPy-backed ones are wrapped.
    vars : sequence of str, optional
        As for :func:`summary_variables`.

    Returns
    -------
    dask.array.Array
        Bins flattened into columns (names from :func:`feature_names`), chunked along
        segments as the store's variables are, with all features in one chunk.
    """
    n = int(ds.sizes["segment"])
    blocks: list[da.Array] = []
    for var in summary_variables(ds, vars):
        data = ds[var].data
        if not isinstance(data, da.Array):
            data = da.from_array(np.asarray(data), chunks=(_segment_chunk(ds), *np.shape(data)[1:]))  # type: ignore[no-untyped-call]
        if data.ndim != 2:  # (segment,) -> one column; (segment, a, b) -> a * b columns
            data = data.reshape(n, int(np.prod(data.shape[1:], dtype=np.int64)))
        blocks.append(data.rechunk({1: -1}))
    matrix: da.Array = da.concatenate(blocks, axis=1).astype(np.float32)  # type: ignore[no-untyped-call]
    return matrix.rechunk({1: -1})  # type: ignore[no-untyped-call,no-any-return]


def segment_ids(ds: xr.Dataset) -> np.ndarray:
    """Each segment's index in the store (the ``segment`` coordinate ``open_store`` sets).

    Without that coordinate the index is rebuilt from the per-file plan:
    ``file_first_segment + offset / segment hop``.
    """
    if "segment" in ds.coords:
        return np.asarray(ds["segment"].values).astype(np.int64)
    seg_file = np.asarray(ds["segment_file"].values).astype(np.int64)
    first = np.asarray(ds["file_first_segment"].values).astype(np.int64)
    hop = store_config(ds.attrs, known_families_only=True).segment_hop_samples
    sr = int(ds.attrs["sr"])
    within = np.rint(np.asarray(ds["segment_offset"].values, dtype=np.float64) * sr / hop).astype(np.int64)
    ids = np.full(seg_file.shape, -1, dtype=np.int64)
    real = seg_file >= 0
    ids[real] = first[seg_file[real]] + within[real]
    return ids


def as_dataset(store: str | xr.Dataset, storage_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """``store`` itself when it is a dataset, else the store opened with :func:`pipeline.store.open_store`.

    Raises
    ------
    InputError
        ``store`` is neither a path/URL nor a dataset.
    """
    if isinstance(store, xr.Dataset):
        return store
    if isinstance(store, str | os.PathLike):
        return open_store(os.fspath(store), storage_options)
    raise InputError(f"Expected a store path/URL or an xr.Dataset, got {type(store).__name__}")


def check_split(split: str) -> str:
    """``split`` when it is one of :data:`pipeline.schema.SPLITS`.

    Raises
    ------
    InputError
        Another value.
    """
    if split not in SPLITS:
        raise InputError(f"Expected split to be one of {', '.join(SPLITS)}, got {split!r}")
    return split


def segment_files(ds: xr.Dataset) -> np.ndarray:
    """The path of each segment's file (object array of str; ``""`` for padding segments)."""
    paths = as_text(ds["file_path"])
    seg_file = np.asarray(ds["segment_file"].values).astype(np.int64)
    out = np.full(seg_file.shape, "", dtype=object)
    real = seg_file >= 0
    out[real] = paths[seg_file[real]]
    return out


def _select(ds: xr.Dataset, labels: Sequence[str] | None, split: str | None, file_glob: str | None) -> np.ndarray:
    """Positions of the segments that pass the filters, from the loaded 1-D coordinates."""
    keep = np.ones(int(ds.sizes["segment"]), dtype=bool)
    if labels is not None:
        wanted = _names(labels, "label")
        known = set(as_text(ds["file_label"])) | set(as_text(ds["label"]))
        missing = [label for label in wanted if label not in known]
        if missing:
            raise InputError(
                f"Expected labels among {', '.join(sorted(known)) or '(none)'}, "
                f"got unknown {', '.join(repr(m) for m in missing)}"
            )
        keep &= np.isin(as_text(ds["label"]), np.array(wanted, dtype=object))
    if split is not None:
        keep &= as_text(ds["split"]) == check_split(split)
    if file_glob is not None:
        if not isinstance(file_glob, str) or not file_glob:
            raise InputError(f"Expected file_glob to be a non-empty pattern, got {file_glob!r}")
        paths = as_text(ds["file_path"])
        matched = np.array(
            [fnmatch.fnmatchcase(p, file_glob) or fnmatch.fnmatchcase(posixpath.basename(p.replace("\\", "/")), file_glob)
             for p in paths],
            dtype=bool,
        )
        seg_file = np.asarray(ds["segment_file"].values).astype(np.int64)
        keep &= (seg_file >= 0) & matched[np.maximum(seg_file, 0)]
    return np.flatnonzero(keep)


def query(
    store: str | xr.Dataset,
    *,
    labels: Sequence[str] | None = None,
    split: str | None = None,
    file_glob: str | None = None,
    vars: Sequence[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """A GTZAN-style table: one row per visible segment, one column per summary value.

    Parameters
    ----------
    store : str or xr.Dataset
        A store path/URL (opened with :func:`pipeline.store.open_store`) or such a dataset.
    labels : sequence of str, optional
        Keep segments whose label is one of these (labels unknown to the store are an error).
    split : {"train", "val", "test"}, optional
        Keep segments of this split.
    file_glob : str, optional
        An :mod:`fnmatch` pattern on the file path; a match on the basename also counts.
    vars : sequence of str, optional
        Summary variables to include, as for :func:`summary_variables` (default: all).
    storage_options : mapping, optional
        fsspec options for a store URL.

    Returns
    -------
    pandas.DataFrame
        Indexed by the store's segment index (``segment``); columns ``file``, ``offset`` (s),
        ``label``, ``split``, then :func:`feature_names` (float32).

    Raises
    ------
    InputError
        Bad split, unknown label or variable, empty pattern.
    """
    ds = as_dataset(store, storage_options)
    columns = feature_names(ds, vars)
    rows = _select(ds, labels, split, file_glob)
    sub = ds.isel(segment=rows)
    (values,) = compute_arrays(summary_matrix(sub, vars))
    values = values.astype(np.float32).reshape(rows.size, len(columns))
    index = pd.Index(segment_ids(sub), name="segment")
    meta = pd.DataFrame(
        {
            "file": segment_files(sub),
            "offset": np.asarray(sub["segment_offset"].values, dtype=np.float64),
            "label": as_text(sub["label"]),
            "split": as_text(sub["split"]),
        },
        index=index,
    )
    features = pd.DataFrame(values, index=index, columns=columns)
    return pd.concat([meta, features], axis=1)


def write_table(df: pd.DataFrame, out: str) -> None:
    """Write a :func:`query` table as Parquet (``.parquet``, pyarrow) or CSV (``.csv``).

    Parameters
    ----------
    df : pandas.DataFrame
        The table; its index (``segment``) is written as a column.
    out : str
        A local path or an fsspec URL ending in ``.parquet`` or ``.csv``.

    Raises
    ------
    InputError
        Another extension.
    StorageError
        The file cannot be written.
    """
    target = os.fspath(out)
    ext = os.path.splitext(target.split("?", 1)[0])[1].lower()
    if ext not in (".parquet", ".csv"):
        raise InputError(f"Expected an output path ending in .parquet or .csv, got {target!r}")
    try:
        if ext == ".parquet":
            df.to_parquet(target, engine="pyarrow")
        else:
            df.to_csv(target)
    except OSError as exc:
        raise StorageError(f"Cannot write {target}: {one_line(exc)}") from exc


def standardize_stats(
    ds: xr.Dataset, vars: Sequence[str] | None = None, split: str | None = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation of :func:`summary_matrix`, computed with Dask.

    Parameters
    ----------
    ds : xr.Dataset
        A feature store.
    vars : sequence of str, optional
        As for :func:`summary_variables`.
    split : {"train", "val", "test"} or None
        Segments to compute the statistics over; ``None``, or a split with no segments,
        means every segment.

    Returns
    -------
    mean, std : np.ndarray [shape=(n_features,)], float64
        Population std (:func:`pipeline.standardize.moments`); a std of 0 (a constant column) is replaced by 1.

    Raises
    ------
    InputError
        Bad split, or a dataset without segments.
    """
    if split is not None:
        check_split(split)
    matrix = summary_matrix(ds, vars)
    if matrix.shape[0] == 0:
        raise InputError("Expected at least one visible segment to standardise over, got none")
    if split is not None:
        rows = np.flatnonzero(as_text(ds["split"]) == split)
        if rows.size:
            matrix = matrix[rows]
    return moments(matrix, axis=0)


make_module_callable(__name__, query)
