"""Similarity search: the store segments nearest to a store segment or to an outside file.

Distances are cosine distances between summary vectors (:func:`pipeline.query.summary_matrix`)
standardised with :func:`pipeline.query.standardize_stats`; they are computed chunk by chunk
with :mod:`dask.array` and only the ``k`` best are brought back. An outside file is
featurised with the store's config by :func:`pipeline.featurize.featurize_file`, exactly as a
chunk task featurises the store's own files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from ._callable import make_module_callable
from .errors import DecodeError, InputError, SchemaError
from .featurize import featurize_file, segment_count
from .probe import probe_file
from .query import (
    as_dataset,
    compute_arrays,
    segment_files,
    segment_ids,
    standardize_stats,
    summary_matrix,
    summary_variables,
)
from .settings import setting
from .store import as_text, embedding_names, store_config

__all__ = ["featurise_audio", "similar"]

#: the columns of a :func:`similar` table
_SIMILAR_COLUMNS: tuple[str, ...] = ("segment", "distance", "file", "offset", "label")


def _flat(values: np.ndarray) -> np.ndarray:
    """``(n, ...)`` -> ``(n, prod(...))``, also for ``n == 0``."""
    return values.reshape(values.shape[0], int(np.prod(values.shape[1:], dtype=np.int64)))


def _check_stored_variables(names: Sequence[str], arrays: Mapping[str, np.ndarray]) -> None:
    """The store's summary variables ``names`` are all among the featurised ``arrays``."""
    missing = [name for name in names if name not in arrays]
    if missing:
        raise SchemaError(f"Expected the store's config to produce {', '.join(missing)}, got only {', '.join(sorted(arrays))}")


def featurise_audio(
    uri: str,
    ds: xr.Dataset,
    vars: Sequence[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    embedders: Mapping[str, Callable[[Mapping[str, np.ndarray]], np.ndarray]] | None = None,
) -> np.ndarray:
    """Summary vectors of an outside audio file's segments, made as the store made its own.

    The file is decoded, cut into segments and featurised with the store's config (from its
    attributes) by :func:`pipeline.featurize.featurize_file`, the code a chunk task runs,
    ``pipeline.outside-batch-segments`` segments at a time (which bounds memory for long files).

    Parameters
    ----------
    uri : str
        Local path or fsspec URL of the audio file.
    ds : xr.Dataset
        The store whose config and summary variables to use.
    vars : sequence of str, optional
        As for :func:`pipeline.query.summary_variables`.
    storage_options : mapping, optional
        fsspec options for a URL.
    embedders : mapping, optional
        For each learned embedding among ``vars``, its model (:func:`pipeline.embed.stored_embedder`),
        run on the file's featurised segments.

    Returns
    -------
    np.ndarray [shape=(n_valid_segments, n_features)], float32
        Rows in :func:`pipeline.query.summary_matrix` column order, one per segment holding audio.

    Raises
    ------
    InputError
        The file cannot be probed or decoded, or yields no segment.
    """
    config = store_config(ds.attrs)
    info = probe_file(uri, storage_options)
    if info.error:
        raise InputError(f"Expected a readable audio file, got {uri}: {info.error}")
    names = summary_variables(ds, vars)
    total = segment_count(info.frames, info.sample_rate, config)
    rows: list[np.ndarray] = []
    batch = setting("outside-batch-segments")
    for lo in range(0, total, batch):
        part = range(lo, min(total, lo + batch))
        try:
            result = featurize_file(uri, config, segments=part, storage_options=storage_options, info=info)
        except DecodeError as exc:
            raise InputError(f"Expected decodable audio, got {uri}: {exc}") from exc
        arrays = {name: values[result.valid] for name, values in result.arrays.items()}
        for name, embedder in (embedders or {}).items():
            if name in names:
                arrays[name] = embedder(arrays)
        _check_stored_variables(names, arrays)
        rows.append(np.concatenate([_flat(arrays[name]) for name in names], axis=1))
    vectors = np.concatenate(rows, axis=0) if rows else np.zeros((0, 0), dtype=np.float32)
    if vectors.shape[0] == 0:
        raise InputError(f"Expected at least one segment of audio in {uri}, got none")
    return vectors.astype(np.float32)


def similar(
    store: str | xr.Dataset,
    *,
    segment: int | None = None,
    audio: str | None = None,
    k: int = 10,
    vars: Sequence[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    exact: bool = False,
    index: str = "default",
    index_only: bool = False,
) -> pd.DataFrame:
    """The ``k`` segments nearest to a store segment or to an outside audio file.

    Distance is the cosine distance between standardised summary vectors. With an index
    (:mod:`pipeline.index`, built by ``audio-pipeline index``) whose variables are the ones
    asked for, the neighbours come from it (standardised with its statistics), and the visible
    segments it does not hold yet (appended since) are searched exactly and merged in. Without
    one, or with ``exact``, every visible segment is compared, standardised with the mean and
    std of them all, chunk by chunk with Dask; only the ``k`` smallest are brought back
    (``dask.array.argtopk``/``topk``).

    Parameters
    ----------
    store : str or xr.Dataset
        A store path/URL or the dataset :func:`pipeline.store.open_store` returns (a dataset
        has no index: exact search).
    segment : int, optional
        A visible segment, by its store index (the ``segment`` index of :func:`pipeline.query.query`);
        it is left out of the result.
    audio : str, optional
        A path/URL of an audio file, featurised with the store's config; the query vector is
        the mean of its segments' summary vectors.
    k : int
        Neighbours to return (fewer when the store has fewer segments).
    vars : sequence of str, optional
        Summary variables to compare, as for :func:`pipeline.query.summary_variables`.
    storage_options : mapping, optional
        fsspec options for the store URL and for ``audio``.
    exact : bool
        Compare with every visible segment, whatever index there is.
    index : str
        The index to use (``index --name``).
    index_only : bool
        Refuse (rather than search exactly) when there is no such index, or it lacks some
        visible segments.

    Returns
    -------
    pandas.DataFrame
        Columns ``segment``, ``distance``, ``file``, ``offset``, ``label``, sorted by
        distance (ties by segment).

    Raises
    ------
    InputError
        Not exactly one of ``segment``/``audio``, ``k < 1``, an invisible segment, audio
        that cannot be featurised, or ``index_only`` without a fresh index.
    """
    if (segment is None) == (audio is None):
        raise InputError(f"Expected exactly one of segment or audio, got {'both' if segment is not None else 'neither'}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"Expected k to be a positive integer, got {k!r}")
    if exact and index_only:
        raise InputError("Expected at most one of exact and index_only, got both")
    ds = as_dataset(store, storage_options)
    ids = segment_ids(ds)
    names = summary_variables(ds, vars)
    matrix = summary_matrix(ds, names)
    n = int(matrix.shape[0])
    if n == 0:
        raise InputError("Expected a store with visible segments, got none")
    loaded = None
    if not exact and isinstance(store, str | os.PathLike):
        from .index import load_index

        loaded = load_index(os.fspath(store), index, storage_options)
        if loaded is not None and loaded[1].variables != names:
            if index_only:
                raise InputError(f"Expected the variables of index {index} ({', '.join(loaded[1].variables)}), "
                                 f"got {', '.join(names)}")
            loaded = None
    if loaded is None and index_only:
        raise InputError(f"Expected an index {index!r} of the store (audio-pipeline index STORE), got none")
    exclude = -1
    if audio is not None:
        embedders = _embedders(store, ds, names, storage_options)
        vector = featurise_audio(audio, ds, names, storage_options, embedders).astype(np.float64).mean(axis=0)
    else:
        if isinstance(segment, bool) or not isinstance(segment, int | np.integer):
            raise InputError(f"Expected segment to be an integer store index, got {segment!r}")
        where = np.flatnonzero(ids == int(segment))
        if where.size == 0:
            raise InputError(f"Expected a visible segment index (the segment index of query), got {segment}")
        exclude = int(where[0])
        (vector,) = compute_arrays(matrix[exclude].astype(np.float64))
    k_eff = min(int(k), n - (1 if exclude >= 0 else 0))
    if k_eff <= 0:
        return pd.DataFrame({name: [] for name in _SIMILAR_COLUMNS})
    if loaded is None:
        mean, std = standardize_stats(ds, names, split=None)  # after the query: fail fast on bad input
        index_rows, values = _exact(matrix, vector, mean, std, k_eff, exclude)
    else:
        index_rows, values = _with_index(loaded, matrix, ids, vector, k_eff, exclude, index, index_only)
    order = np.lexsort((ids[index_rows], values))
    index_rows, values = index_rows[order][:k_eff], values[order][:k_eff]
    sub = ds.isel(segment=index_rows)
    return pd.DataFrame(
        {
            "segment": ids[index_rows],
            "distance": values,
            "file": segment_files(sub),
            "offset": np.asarray(sub["segment_offset"].values, dtype=np.float64),
            "label": as_text(sub["label"]),
        }
    )


def _embedders(store: str | xr.Dataset, ds: xr.Dataset, names: Sequence[str],
               storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The models of the learned embeddings among ``names``, from the store (:mod:`pipeline.embed`)."""
    learned = [name for name in embedding_names(ds.attrs) if name in names]
    if not learned:
        return {}
    if not isinstance(store, str | os.PathLike):
        raise InputError(f"Expected a store path or URL to embed an outside file with {', '.join(learned)}, got a dataset")
    from .embed import stored_embedder

    try:
        return {name: stored_embedder(os.fspath(store), name, storage_options) for name in learned}
    except ImportError as exc:  # the train extra (PyTorch) is missing
        raise InputError(str(exc)) from exc


def _exact(matrix: da.Array, vector: np.ndarray, mean: np.ndarray, std: np.ndarray, k: int, exclude: int,
           rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions (in ``matrix``) and cosine distances of the ``k`` rows nearest ``vector``, all
    standardised with ``mean``/``std``; ``rows`` restricts the search; ``exclude`` is left out."""
    q = (vector - mean) / std
    q_norm = float(np.linalg.norm(q))
    sub = matrix if rows is None else matrix[rows]
    n = int(sub.shape[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    positions = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    z = (sub.astype(np.float64) - mean) / std
    norms = da.sqrt((z**2).sum(axis=1))
    denom = norms * q_norm
    dist = 1.0 - (z @ q) / da.where(denom > 0, denom, 1.0)
    dist = da.where(denom > 0, da.clip(dist, 0.0, 2.0), 1.0)
    excluded = da.from_array(positions == exclude, chunks=dist.chunks[0])  # type: ignore[no-untyped-call]
    dist = da.where(da.isnan(dist) | excluded, np.inf, dist)
    k = min(k, n)
    # one +inf sentinel so that k < len: dask's argtopk fails for k equal to the array's length
    padded = da.concatenate([dist, da.full((1,), np.inf, chunks=1)])  # type: ignore[no-untyped-call]
    index, values = compute_arrays(da.argtopk(padded, -k), da.topk(padded, -k))  # type: ignore[no-untyped-call]
    index = np.asarray(index, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    return positions[index[finite]], values[finite]


def _with_index(loaded: tuple[Any, Any, np.ndarray], matrix: da.Array, ids: np.ndarray, vector: np.ndarray, k: int,
                exclude: int, name: str, index_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """The index's ``k`` nearest (among visible segments), merged with an exact search of the
    visible segments it does not hold, all standardised with the index's statistics."""
    from .index import search_index

    graph, manifest, held = loaded
    missing = np.flatnonzero(~np.isin(ids, held))
    if missing.size and index_only:
        raise InputError(f"Expected index {name} to hold every visible segment, got {ids.size - missing.size} of "
                         f"{ids.size}: run audio-pipeline index STORE to add the rest")
    # a few more than k: the query segment itself, and rows no longer visible, are dropped
    keys, distances = search_index(graph, manifest, vector, k + 1 + max(0, len(graph) - ids.size))
    position = {int(i): p for p, i in enumerate(ids.tolist())}
    pairs = [(position[int(key)], float(d)) for key, d in zip(keys.tolist(), distances.tolist(), strict=True)
             if int(key) in position and position[int(key)] != exclude]
    found = np.asarray([p for p, _ in pairs], dtype=np.int64)
    dist = np.asarray([d for _, d in pairs], dtype=np.float64)
    if missing.size:
        mean, std = manifest.stats()
        more, more_dist = _exact(matrix, vector, mean, std, k, exclude, rows=missing)
        found, dist = np.concatenate([found, more]), np.concatenate([dist, more_dist])
    return found, dist


make_module_callable(__name__, similar)
