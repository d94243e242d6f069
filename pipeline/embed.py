"""``embed``: a trained model's per-segment embedding, written into the store it was trained on.

An embedding is a family computed from the store rather than from audio. It is written like a
family added to a store (:mod:`pipeline.grow`): a variable ``<name>`` ``(segment, <name>_dim)``
and a completeness flag ``chunk_done_<name>`` set after each chunk's rows are written, so an
interrupted run resumes where it stopped and ``open_store`` hides the variable until every
visible segment has it. The store's ``families`` attribute records it (kind ``embedding``, the
model's digest, the flag) but ``features`` does not: ``extract`` never computes it, and after an
append the next ``embed`` computes only the new chunks.

The model itself is kept in the store, as the group ``embed/<name>`` (its ``model.json`` as an
attribute and each weight as a float array: no pickle), so that ``similar AUDIO --vars <name>``
can embed an outside file the way the store's segments were embedded.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xarray as xr
import zarr

from .errors import ConfigMismatch, InputError, SchemaError
from .families import family_names
from .flags import flag
from .grow import commit_variables, flag_name
from .lock import StoreLock
from .settings import setting
from .store import (
    EMBEDDING_KIND,
    consolidate,
    embedding_names,
    open_group,
    open_raw,
    store_families,
    zarr_array,
)

if TYPE_CHECKING:
    from .training.embedder import Embedder, TrainedModel

__all__ = ["EMBED_GROUP", "EmbedResult", "embed", "embedding_names", "stored_embedder"]

#: the group of a store that holds the models of its embeddings (``embed/<name>``)
EMBED_GROUP = "embed"
#: the model config keys that must equal the store's (the inputs' framing)
_FRAMING = ("sr", "n_fft", "hop_length", "n_mels", "n_mfcc", "segment_seconds", "segment_hop_seconds", "fmin", "fmax")


@dataclass(frozen=True)
class EmbedResult:
    """What ``embed`` did: the variable, its width, and the chunks it computed this run."""

    name: str
    dim: int
    computed: int
    chunks_done: int
    chunks_total: int

    def summary(self) -> str:
        return (f"embedding {self.name}: {self.dim} dims; computed {self.computed} chunks this run, "
                f"{self.chunks_done} of {self.chunks_total} done")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or not name[0].isalpha() or not all(c.isalnum() or c == "_" for c in name):
        raise InputError(f"Expected an embedding name of letters, digits and _ (a letter first), got {name!r}")
    if name in family_names():
        raise InputError(f"Expected an embedding name that is not a feature family, got {name!r}")
    return name


def _record(model: TrainedModel, name: str, dim: int) -> dict[str, str]:
    return {
        "kind": EMBEDDING_KIND, "version": model.sha256[:12], "model": model.kind, "model_sha256": model.sha256,
        "inputs": ",".join(model.variables), "classes": ",".join(model.classes), "dim": str(dim),
        "flag": flag_name(name),
        "description": f"penultimate layer of a trained {model.kind} ({', '.join(model.variables)} -> {dim})",
    }


def _check_config(model: TrainedModel, attrs: Mapping[str, Any], variables: Any, model_dir: str) -> None:
    """The model was trained on inputs made as this store makes them."""
    theirs = model.feature_config
    diffs = [f"{key}={theirs[key]} != {attrs.get(key)}" for key in _FRAMING
             if key in theirs and json.dumps(theirs[key]) != json.dumps(attrs.get(key))]
    if diffs:
        raise ConfigMismatch(f"Expected a model trained on a store with this store's config, got {model_dir} with "
                             f"{'; '.join(diffs)} [model != store]")
    missing = [v for v in model.variables if v not in variables]
    if missing:
        raise InputError(f"Expected the model's inputs {', '.join(missing)} in the store, got none such")


def embed(
    store: str,
    model_dir: str,
    *,
    name: str = "embedding",
    storage_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> EmbedResult:
    """Write the per-segment embedding of the model in ``model_dir`` into ``store`` as ``name``.

    Computes the chunks that are done in the store and not yet embedded (all of them the first
    time; after an interruption or an append, only the rest), one chunk at a time in this
    process, each chunk's rows first and its flag last.

    Parameters
    ----------
    store : str
        The store (local path or fsspec URL) the model was trained on, or one made the same way.
    model_dir : str
        A directory written by ``train -o`` (``model.json``, ``model.pt``).
    name : str
        The variable (and family) name; its axis is ``<name>_dim``.
    storage_options : mapping, optional
        fsspec options for a store URL.
    overwrite : bool
        Replace an embedding of that name made by another model (refused otherwise).
    log : callable
        Where progress lines go.

    Raises
    ------
    InputError
        A bad name, a model directory that is not one, a store without the model's inputs.
    ConfigMismatch
        The model was trained on another config, or ``name`` holds another model's embedding.
    """
    from .training.embedder import Embedder, load_model_dir

    _check_name(name)
    model = load_model_dir(model_dir)
    options = dict(storage_options or {})
    with StoreLock(store, options):
        ds = open_raw(store, options)
        _check_config(model, ds.attrs, ds.data_vars, model_dir)
        embedder = Embedder(model)
        existing = store_families(ds.attrs).get(name)
        if existing is not None and existing.get("kind") != EMBEDDING_KIND:
            raise InputError(f"Expected an embedding name that is not one of the store's families, got {name!r}")
        if existing is not None and existing.get("model_sha256") != model.sha256:
            if not overwrite:
                raise ConfigMismatch(f"{store} holds embedding {name} of another model (sha256 "
                                     f"{existing.get('model_sha256', '?')[:12]}); use another --name or --overwrite")
            _remove(store, options, name)
            existing = None
        if existing is None:
            if name in ds.variables or f"{name}_dim" in ds.dims:
                clash = [n for n in ds.variables if ds[n].attrs.get("family") != name and (n == name or f"{name}_dim" in ds[n].dims)]
                if clash:
                    raise InputError(f"Expected a name no store variable uses, got {name!r} ({', '.join(map(str, clash))})")
            _create(store, options, model, name, embedder.dim)
            ds = open_raw(store, options)
        return _compute(store, options, ds, embedder, name, log)


def _remove(store: str, options: Mapping[str, Any], name: str) -> None:
    """Forget embedding ``name``: first its record (the commit), then its arrays and model."""
    group = open_group(store, options, mode="r+")
    attrs = dict(group.attrs)
    families = store_families(attrs)
    families.pop(name, None)
    group.attrs.put({**attrs, "families": json.dumps(families, sort_keys=True)})
    _drop(group, name)
    consolidate(store, options)


def _drop(root: Any, name: str) -> None:
    """Delete embedding ``name``'s arrays and its model group, whichever exist."""
    for key in (name, flag_name(name), f"{name}_dim"):
        if key in root:
            del root[key]
    models = root.get(EMBED_GROUP)
    if models is not None and name in models:
        del models[name]


def _create(store: str, options: Mapping[str, Any], model: TrainedModel, name: str, dim: int) -> None:
    """The model group, the variable and its flag, then the record naming them (the commit)."""
    from .template import placeholder

    ds = open_raw(store, options)
    n, n_chunks = ds.sizes["segment"], ds.sizes["chunk"]
    chunk = int(ds.attrs["segment_chunk"])
    group = open_group(store, options, mode="r+")
    attrs = dict(group.attrs)  # to_zarr(mode="a") replaces the root attributes: put them back
    _drop(group, name)  # leftovers of a creation interrupted before its commit
    models = group.require_group(EMBED_GROUP).require_group(name)
    for key, value in model.weights.items():
        values = np.asarray(value)
        chunks: tuple[int, ...] | Literal["auto"] = tuple(int(d) for d in values.shape) if values.ndim else "auto"
        arr = models.create_array(key, shape=values.shape, dtype=values.dtype, chunks=chunks, overwrite=True)
        arr[...] = values
    models.attrs.put({"model": json.dumps(model.spec, sort_keys=True), "model_sha256": model.sha256})
    record = _record(model, name, dim)
    var = xr.Variable(("segment", f"{name}_dim"), placeholder((n, dim), np.float32),
                      {"description": record["description"], "units": "1", "family": name})
    done_flag = xr.Variable(("chunk",), placeholder((n_chunks,), np.uint8),
                       {"description": f"1 once the chunk's {name} embedding is written (written last)", "units": "1"})
    new = xr.Dataset({name: var}, coords={flag_name(name): done_flag})
    encoding = {name: {"chunks": (chunk, dim)}, flag_name(name): {"chunks": (1,)}}
    commit_variables(store, options, attrs, new, encoding, {name: record})


def _compute(store: str, options: Mapping[str, Any], ds: xr.Dataset, embedder: Embedder, name: str,
             log: Callable[[str], None]) -> EmbedResult:
    """Every chunk done in the store and not embedded yet: rows, then the flag."""
    done = flag(ds)
    embedded = flag(ds, flag_name(name))
    todo = np.flatnonzero(done & ~embedded).tolist()
    n, chunk = ds.sizes["segment"], int(ds.attrs["segment_chunk"])
    log(f"embedding {name}: {len(todo)} of {done.size} chunks to compute ({int((done & embedded).sum())} done)")
    group = open_group(store, options, mode="r+")
    values, flags = zarr_array(group, name), zarr_array(group, flag_name(name))
    inputs = {var: zarr_array(group, var) for var in embedder.model.variables}
    valid, real = zarr_array(group, "segment_valid"), zarr_array(group, "segment_file")
    crash_after = setting("crash-after-chunks")
    for count, c in enumerate(todo, start=1):
        lo, hi = c * chunk, min(n, (c + 1) * chunk)
        arrays = {var: np.asarray(arr[lo:hi]) for var, arr in inputs.items()}
        rows = np.asarray(valid[lo:hi]).astype(bool) & (np.asarray(real[lo:hi]) >= 0)
        for arr in arrays.values():
            rows &= np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
        out = np.full((hi - lo, embedder.dim), np.nan, dtype=np.float32)
        if rows.any():
            out[rows] = embedder({var: arr[rows] for var, arr in arrays.items()})
        values[lo:hi] = out
        flags[c] = 1
        if count % 50 == 0 or count == len(todo):
            log(f"  {count}/{len(todo)} chunks")
        if crash_after and count >= crash_after:  # crash tests only (pipeline.crash-after-chunks)
            os.kill(os.getpid(), signal.SIGKILL)
    total = int(done.size)
    return EmbedResult(name=name, dim=embedder.dim, computed=len(todo), chunks_done=int((done & embedded).sum()) + len(todo),
                       chunks_total=total)


def stored_embedder(store: str, name: str, storage_options: Mapping[str, Any] | None = None) -> Embedder:
    """The model of the store's embedding ``name``, as kept in ``embed/<name>``.

    Raises
    ------
    SchemaError
        The store records no such embedding, or its model group is missing or altered.
    """
    from .training.embedder import Embedder, TrainedModel

    root = open_group(store, storage_options, mode="r")
    record = store_families(root.attrs).get(name)
    group = root.get(f"{EMBED_GROUP}/{name}")
    if record is None or record.get("kind") != EMBEDDING_KIND or not isinstance(group, zarr.Group):
        raise SchemaError(f"Expected an embedding {name!r} with its model in {store}, got none")
    weights = {str(key): np.asarray(arr[...]) for key, arr in group.arrays()}
    model = TrainedModel(spec=json.loads(str(group.attrs["model"])), weights=weights)
    if model.sha256 != record.get("model_sha256"):
        raise SchemaError(f"Expected the model of embedding {name} to match its record, got another (sha256 "
                          f"{model.sha256[:12]} != {record.get('model_sha256', '?')[:12]})")
    return Embedder(model)
