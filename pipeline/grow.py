"""Adding feature families to an existing store: only the new families are computed.

The families a store was made with are complete in a chunk once its ``chunk_done`` is set. A
family added later gets its variables (placeholders, like a new store's template) and its own
completeness flag ``chunk_done_<family>``, written last by each task that computes the family
for a chunk. The store's ``features`` and ``families`` attributes name the family once its
variables exist: that is the commit point, so an addition interrupted before it is simply
redone. A chunk not done yet (a resumed or appended store) is computed whole, every family
and flag at once. Existing variables are never rewritten.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import FeatureConfig
from .errors import ConfigMismatch
from .families import family, family_names
from .flags import FLAG_PREFIX, flag
from .io import is_url
from .store import (
    consolidate,
    open_group,
    open_raw,
    quiet_zarr,
    store_config,
    store_families,
)

if TYPE_CHECKING:  # imported where a family is added, not with the extract that may add one
    import xarray as xr

__all__ = ["add_families", "added_families", "commit_variables", "flag_name", "pending_families"]


def flag_name(name: str) -> str:
    """The completeness flag of a family added to a store: ``chunk_done_<family>``."""
    return f"{FLAG_PREFIX}{name}"


def added_families(store_url: str, stored: FeatureConfig, config: FeatureConfig) -> tuple[str, ...]:
    """The families ``config`` asks for beyond those of a store made with ``stored``.

    Raises
    ------
    ConfigMismatch
        ``config`` leaves out a family the store holds (a subset is refused: the store would
        claim families the run does not compute for new files).
    """
    missing = [name for name in stored.features if name not in config.features]
    if missing:
        raise ConfigMismatch(
            f"{store_url} holds families {', '.join(missing)} that this run leaves out; ask for all of "
            f"{','.join(stored.features)} (plus any new ones), use another store, or --overwrite"
        )
    return tuple(name for name in config.features if name not in stored.features)


def add_families(store_url: str, options: Mapping[str, Any], config: FeatureConfig, added: Sequence[str]) -> None:
    """Write the variables and flags of the families ``added``, then name them in the attributes."""
    from .template import ArraySpec, as_dataset, family_arrays

    ds = open_raw(store_url, options)
    n, n_chunks = ds.sizes["segment"], ds.sizes["chunk"]
    chunk = int(ds.attrs["segment_chunk"])
    specs = family_arrays(n, chunk, config, added)
    specs += [ArraySpec(flag_name(name), ("chunk",), (n_chunks,), np.uint8,
                        f"1 once the chunk's {name} family is written (written last)", "1", coord=True, chunks=(1,))
              for name in added]
    existing = set(map(str, ds.variables))
    # the axes the store has already (frame times, bins) stay as they are; the flags are new
    specs = [s for s in specs if not (s.coord and s.name in existing and not s.name.startswith(FLAG_PREFIX))]
    new, encoding = as_dataset(specs)
    group = open_group(store_url, options, mode="r+")
    attrs = dict(group.attrs)  # to_zarr(mode="a") replaces the root attributes: put them back
    # leftovers of an addition interrupted before its commit: nothing in them is data yet
    for name in [*map(str, new.data_vars), *(k for k in map(str, new.coords) if k.startswith(FLAG_PREFIX))]:
        if name in group:
            del group[name]
    records = {name: {**family(name).describe(), "flag": flag_name(name)} for name in added}
    recorded = {*store_families(attrs), *records, *store_config(attrs, known_families_only=True).features}
    features = [name for name in family_names() if name in recorded]
    commit_variables(store_url, options, attrs, new, encoding, records,
                     features=features)


def commit_variables(store_url: str, options: Mapping[str, Any], attrs: Mapping[str, Any], new: xr.Dataset,
                     encoding: Mapping[str, Any], records: Mapping[str, Mapping[str, str]], **more: Any) -> None:
    """Write ``new``'s placeholder variables into the store, then record ``records`` in its
    ``families`` attribute (and ``more`` attributes) over the root attributes ``attrs`` read
    before the write: that is the commit point of an added family."""
    with quiet_zarr():
        new.to_zarr(store_url, mode="a", compute=False, encoding=dict(encoding), consolidated=False, zarr_format=3,
                    storage_options=dict(options) if is_url(store_url) else None)
    group = open_group(store_url, options, mode="r+")
    # xarray names the coordinates no variable refers to in a root attribute: keep both lists
    coordinate_names = " ".join(dict.fromkeys(
        f"{attrs.get('coordinates', '')} {group.attrs.get('coordinates', '')}".split()))
    families = {**store_families(attrs), **{name: dict(rec) for name, rec in records.items()}}
    group.attrs.put({**attrs, "families": json.dumps(families, sort_keys=True), **more,
                     **({"coordinates": coordinate_names} if coordinate_names else {})})
    consolidate(store_url, options)


def pending_families(ds: xr.Dataset, config: FeatureConfig) -> dict[int, tuple[str, ...]]:
    """Chunks done whose added families (some of ``config.features``) are not written yet."""
    from .store import family_flags

    flags = family_flags(ds.attrs)
    done = flag(ds)
    out: dict[int, list[str]] = {}
    for name in config.features:
        own = flags.get(name)
        if own is None or own not in ds.variables:
            continue
        todo = done & ~flag(ds, own)
        for c in np.flatnonzero(todo).tolist():
            out.setdefault(c, []).append(name)
    return {c: tuple(names) for c, names in sorted(out.items())}
