"""A nearest-neighbour index kept inside the store, grown with it, used by ``similar``.

The index of a store lives in the store itself, as a Zarr group ``index/<name>``: so it travels
with the store (a copy, an ``s3://`` URL) and ``xr.open_zarr`` never sees it (xarray opens the
root group's arrays only). The group holds

* ``graph_<build>``: the serialised HNSW graph (usearch; cosine distance), bytes as a uint8 array;
* ``segments_<build>``: the store's segment index of every row it holds, ascending;
* its attributes, the manifest: the summary variables, the standardisation statistics (mean and
  std per column, frozen at the first build), the rows covered, the metric, the library and
  its version, and ``build`` naming the arrays above.

A build writes new arrays first and the manifest last, then removes the previous build's
arrays: an interrupted build leaves the previous index whole (and its orphans are removed by
the next build). ``index`` after an append adds only the segments the index does not hold.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import zarr

from .errors import InputError, SchemaError
from .store import open_group

__all__ = ["INDEX_GROUP", "IndexManifest", "IndexState", "build_index", "index_names", "index_state", "load_index",
           "search_index"]

#: the group of a store that holds its indexes (``index/<name>``)
INDEX_GROUP = "index"
_METRIC = "cos"
#: rows standardised and added per step (bounds the memory of a build)
_ADD_ROWS = 65536


@dataclass(frozen=True)
class IndexManifest:
    """What an index holds and how its vectors were made (the group's attributes)."""

    name: str
    build: str
    variables: list[str]
    mean: list[float]
    std: list[float]
    rows: int
    metric: str
    library: str
    library_version: str
    created: str
    updated: str

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.mean, dtype=np.float64), np.asarray(self.std, dtype=np.float64)


@dataclass(frozen=True)
class IndexState:
    """How an index relates to its store now: rows held, visible rows it lacks."""

    manifest: IndexManifest
    visible: int
    missing: int

    @property
    def fresh(self) -> bool:
        return self.missing == 0


def _usearch() -> Any:
    try:
        from usearch.index import Index
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise InputError("Expected the usearch package for similarity indexes (pip install usearch)") from exc
    return Index


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise InputError(f"Expected an index name of letters, digits, - and _, got {name!r}")
    return name


def _manifest(attrs: Mapping[str, Any], name: str) -> IndexManifest | None:
    raw = attrs.get("pipeline_index")
    if not raw:
        return None
    data = json.loads(raw) if isinstance(raw, str) else dict(raw)
    try:
        return IndexManifest(**{key: data[key] for key in IndexManifest.__dataclass_fields__})
    except KeyError as exc:
        raise SchemaError(f"Expected a whole manifest for index {name}, got one without {exc}") from exc


def _group(store: str, options: Mapping[str, Any] | None, name: str, *, create: bool) -> Any:
    root = open_group(store, options, mode="r+" if create else "r")
    if create:
        indexes = root.require_group(INDEX_GROUP)
        return indexes.require_group(name)
    try:
        return root[f"{INDEX_GROUP}/{name}"]
    except KeyError:
        return None


def index_names(store: str, storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """The names of the store's indexes."""
    root = open_group(store, storage_options, mode="r")
    try:
        group = root[INDEX_GROUP]
    except KeyError:
        return []
    if not isinstance(group, zarr.Group):
        raise SchemaError(f"Expected {INDEX_GROUP} of {store} to be a group of indexes, got an array")
    return sorted(str(name) for name in group.group_keys())


def load_index(store: str, name: str = "default", storage_options: Mapping[str, Any] | None = None
               ) -> tuple[Any, IndexManifest, np.ndarray] | None:
    """The index ``name`` of ``store``: (usearch index, manifest, segment of each row), or None."""
    group = _group(store, storage_options, _check_name(name), create=False)
    manifest = None if group is None else _manifest(group.attrs, name)
    if group is None or manifest is None:
        return None
    graph = np.asarray(group[f"graph_{manifest.build}"][:], dtype=np.uint8)
    segments = np.asarray(group[f"segments_{manifest.build}"][:], dtype=np.int64)
    index = _usearch().restore(graph.tobytes())
    if index is None or len(index) != manifest.rows or segments.size != manifest.rows:
        raise SchemaError(f"Expected index {name} of {store} to hold {manifest.rows} rows, got a damaged one")
    return index, manifest, segments


def index_state(store: str, name: str = "default", storage_options: Mapping[str, Any] | None = None,
                ds: Any = None, visible: np.ndarray | None = None) -> IndexState | None:
    """The index ``name`` against the store's visible segments now (None without an index).

    ``visible`` (the store's visible segment indices, :func:`pipeline.store.visible_segments`)
    or ``ds`` (as :func:`pipeline.store.open_store` returns it) spares opening the store again.
    """
    group = _group(store, storage_options, _check_name(name), create=False)
    manifest = None if group is None else _manifest(group.attrs, name)
    if group is None or manifest is None:
        return None
    if visible is None:
        from .query import segment_ids
        from .store import open_store

        visible = segment_ids(open_store(store, storage_options) if ds is None else ds)
    ids = np.asarray(visible, dtype=np.int64)
    held = np.asarray(group[f"segments_{manifest.build}"][:], dtype=np.int64)
    missing = int(np.count_nonzero(~np.isin(ids, held)))
    return IndexState(manifest=manifest, visible=int(ids.size), missing=missing)


def build_index(store: str, *, vars: Sequence[str] | None = None, name: str = "default", rebuild: bool = False,
                storage_options: Mapping[str, Any] | None = None) -> IndexState:
    """Build the index ``name`` of ``store``, or add to it the visible segments it lacks.

    Parameters
    ----------
    store : str
        The store's path or URL.
    vars : sequence of str, optional
        Per-segment vectors to index (families, frame variables or summary variables, as for
        :func:`pipeline.query.summary_variables`); default: every summary variable, the vectors
        ``similar`` compares. An existing index keeps its own; asking for others is an error
        (use another ``name``, or ``rebuild``).
    name : str
        The index's name in the store (several may coexist).
    rebuild : bool
        Build from scratch (new standardisation statistics) instead of adding.
    storage_options : mapping, optional
        fsspec options for a store URL.

    Returns
    -------
    IndexState
        The index as written, against the store's visible segments.

    Raises
    ------
    InputError
        A bad name, unknown variables, other variables than the existing index's, or a store
        without visible segments.
    """
    name = _check_name(name)
    Index = _usearch()
    from .query import (
        compute_arrays,
        segment_ids,
        standardize_stats,
        summary_matrix,
        summary_variables,
    )
    from .store import open_store

    ds = open_store(store, storage_options)
    ids = segment_ids(ds)
    if ids.size == 0:
        raise InputError(f"Expected visible segments in {store} to index, got none")
    existing = None if rebuild else load_index(store, name, storage_options)
    names = summary_variables(ds, vars)
    if existing is not None:
        index, manifest, held = existing
        if vars is not None and names != manifest.variables:
            raise InputError(f"Expected the variables of index {name} ({', '.join(manifest.variables)}), got "
                             f"{', '.join(names)}: choose another --name, or --rebuild")
        names = manifest.variables
        mean, std = manifest.stats()
        created = manifest.created
    else:
        mean, std = standardize_stats(ds, names, split=None)
        index = Index(ndim=int(mean.size), metric=_METRIC, dtype="f32")
        held = np.zeros(0, dtype=np.int64)
        created = _now()
    matrix = summary_matrix(ds, names)
    todo = np.flatnonzero(~np.isin(ids, held))
    for lo in range(0, todo.size, _ADD_ROWS):
        rows = todo[lo : lo + _ADD_ROWS]
        (block,) = compute_arrays(matrix[rows].astype(np.float64))
        z = ((np.asarray(block) - mean) / std).astype(np.float32)
        index.add(ids[rows].astype(np.uint64), z)
    segments = np.union1d(held, ids[todo]).astype(np.int64)
    manifest = IndexManifest(
        name=name, build=uuid.uuid4().hex[:12], variables=list(names), mean=[float(x) for x in mean],
        std=[float(x) for x in std], rows=len(index), metric=_METRIC, library="usearch",
        library_version=_library_version(), created=created, updated=_now(),
    )
    _write(store, storage_options, manifest, bytes(index.save()), segments)
    return IndexState(manifest=manifest, visible=int(ids.size), missing=int(ids.size - np.isin(ids, segments).sum()))


def _write(store: str, options: Mapping[str, Any] | None, manifest: IndexManifest, graph: bytes,
           segments: np.ndarray) -> None:
    """The build's arrays, then the manifest naming them (the commit), then the old arrays go."""
    from .store import consolidate

    group = _group(store, options, manifest.name, create=True)
    data = np.frombuffer(graph, dtype=np.uint8)
    arr = group.create_array(f"graph_{manifest.build}", shape=data.shape, dtype=np.uint8,
                             chunks=(min(max(data.size, 1), 32 * 2**20),), compressors=None, overwrite=True)
    arr[:] = data
    arr = group.create_array(f"segments_{manifest.build}", shape=segments.shape, dtype=np.int64,
                             chunks=(min(max(segments.size, 1), 2**20),), overwrite=True)
    arr[:] = segments
    _commit(group, manifest)
    for key in list(group.array_keys()):
        if not key.endswith(f"_{manifest.build}"):
            del group[key]
    consolidate(store, options or {})


def _commit(group: Any, manifest: IndexManifest) -> None:
    """Name the build's arrays in the manifest: from here on readers use them."""
    group.attrs["pipeline_index"] = json.dumps(asdict(manifest), sort_keys=True)


def search_index(index: Any, manifest: IndexManifest, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment ids and cosine distances of the ``k`` rows nearest the raw summary ``vector``."""
    mean, std = manifest.stats()
    q = ((np.asarray(vector, dtype=np.float64) - mean) / std).astype(np.float32)
    k = min(int(k), len(index))
    if k <= 0 or not np.any(q):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    found = index.search(q, k)
    keys = np.asarray(found.keys, dtype=np.int64)
    distances = np.asarray(found.distances, dtype=np.float64)
    return keys, np.clip(distances, 0.0, 2.0)


def _library_version() -> str:
    from importlib.metadata import version

    return version("usearch")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
