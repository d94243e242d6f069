"""The per-chunk completeness flags (``chunk_done``, ``chunk_done_<family>``), read by listing.

A flag array holds one ``uint8`` per chunk in chunks of one element, fill value 0. Nothing
writes a flag but ``1`` (a chunk task, ``embed``), and zarr does not store a chunk equal to
the fill value (``write_empty_chunks`` is off by default: a 0 written deletes the chunk); the
template leaves every flag unwritten, and shrinking an array (a rolled-back append) deletes
the chunks outside it. So a flag's chunk object exists exactly where the flag is 1, and one
listing of the array's chunk keys (a few requests per 1,000 chunks on S3) gives what reading
each chunk (one request per chunk) would.

Where listing cannot tell, the values are read instead: an array chunked otherwise than by
one element, sharded, with another fill value or of another dtype; a store that cannot list
(an HTTP URL); a listing refused or failed (a bucket that grants reads but not listing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.core.sync import sync

if TYPE_CHECKING:  # info reads flags without xarray (pipeline.peek)
    import xarray as xr

    from .peek import StoreView

__all__ = ["DONE", "FLAG_PREFIX", "flag", "is_flag", "listed_flag", "with_listed_flags"]

#: the flag of a chunk whose data (every family the store was made with) is written
DONE = "chunk_done"
#: a family added to a store after it was made has its own completeness flag: this prefix + name
FLAG_PREFIX = "chunk_done_"


def is_flag(name: str) -> bool:
    """Whether the store variable ``name`` is a per-chunk completeness flag."""
    return name == DONE or name.startswith(FLAG_PREFIX)


def _listable(store: Any) -> bool:
    """A store whose listing is the set of its keys (not, for one, an HTTP server's pages)."""
    if not getattr(store, "supports_listing", False):
        return False
    fs = getattr(store, "fs", None)
    protocols = getattr(fs, "protocol", ()) if fs is not None else ()
    protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
    return not any(p in ("http", "https") for p in protocols)


def listed_flag(array: zarr.Array[Any]) -> np.ndarray | None:
    """The values of a flag array from the listing of its chunk keys, or None where listing
    cannot tell them (the caller reads the values then)."""
    if array.ndim != 1 or tuple(array.chunks) != (1,) or array.shards is not None:
        return None
    if np.dtype(array.dtype).kind not in "biu" or array.metadata.fill_value != 0:
        return None
    store = array.store
    if not _listable(store):
        return None
    n = int(array.shape[0])
    meta = array.metadata
    # the chunk keys under the array, as its key encoding spells them ("c/<i>" by default)
    first = meta.encode_chunk_key((0,))
    folder, _, _ = first.rpartition("/")
    prefix = "/".join(p for p in (array.path, folder) if p)
    index = {meta.encode_chunk_key((i,)): i for i in range(n)}
    fs = getattr(store, "fs", None)
    if fs is not None:  # an fsspec listing may be cached: tasks wrote flags since
        fs.invalidate_cache(f"{getattr(store, 'path', '')}/{prefix}".strip("/"))

    async def names() -> list[str]:
        return [name async for name in store.list_dir(prefix)]

    try:
        listed = sync(names())
    except Exception:  # refused or failed: read the values (a failure there is the reader's)
        return None
    values = np.zeros(n, dtype=np.dtype(array.dtype))
    for name in listed:
        i = index.get(f"{folder}/{name}" if folder else name)
        if i is not None:
            values[i] = 1
    return values


def with_listed_flags(ds: xr.Dataset, group: zarr.Group) -> xr.Dataset:
    """``ds`` (opened from ``group``'s store) with every flag variable's values taken from the
    listing of its chunk keys, in memory; a flag listing cannot tell stays as it was."""
    import xarray as xr

    listed: dict[str, xr.Variable] = {}
    for name in map(str, ds.variables):
        if not is_flag(name) or ds[name].dims != ("chunk",):
            continue
        node = group.get(name)
        if not isinstance(node, zarr.Array) or int(node.shape[0]) != ds.sizes["chunk"]:
            continue
        values = listed_flag(node)
        if values is None:
            continue
        var = ds.variables[name]
        listed[name] = xr.Variable(var.dims, values.astype(var.dtype, copy=False), var.attrs, var.encoding)
    if not listed:
        return ds
    coords = {k: v for k, v in listed.items() if k in ds.coords}
    data = {k: v for k, v in listed.items() if k not in ds.coords}
    return ds.assign_coords(coords).assign(data)


def flag(ds: xr.Dataset | StoreView, name: str = DONE) -> np.ndarray:
    """Per chunk, whether flag ``name`` of ``ds`` is set ``[shape=(chunks,), bool]``.

    The values :func:`pipeline.store.open_raw` listed; a dataset opened otherwise (its flags
    lazily backed) is read.
    """
    return np.asarray(ds[name].values).astype(bool)
