"""The arrays of a new store, declared once from the families and the layout, and created
through zarr alone, as ``xarray.Dataset.to_zarr`` would create them.

:func:`store_arrays` lists every array of a store (:class:`ArraySpec`: dimensions, shape,
chunks, dtype, attributes, whether a coordinate; the values of the small axes);
:func:`family_arrays` those of some families (an added family's). :func:`create_arrays` makes
them in a group with xarray's conventions (the ``coordinates`` attributes that tell
coordinates from data variables, NaN fill values and their ``_FillValue``), so that
``xr.open_zarr`` reads the store as if xarray had written it (tests/test_write.py compares the
two). Writing them through zarr spares the command line xarray, pandas and dask.array (about
1.2 s of imports) when a run is small. :func:`as_dataset` turns the same declarations into the
``xr.Dataset`` xarray would write, with Dask placeholders where tasks write.
"""

from __future__ import annotations

import base64
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from .config import FeatureConfig
from .families import family, iter_variables
from .schema import SUMMARY_STATS, Layout, netcdf_safe, package_versions

if TYPE_CHECKING:
    import dask.array as da
    import xarray as xr

__all__ = [
    "COMPRESSORS",
    "FILE_DERIVED",
    "FILE_FIELDS",
    "PLAN_CHUNKS",
    "PLAN_COORDS",
    "ArraySpec",
    "as_dataset",
    "create_arrays",
    "family_arrays",
    "placeholder",
    "root_attributes",
    "root_coordinates",
    "storable",
    "store_arrays",
]

#: what a chunk task writes (the features, their summaries) is compressed so
COMPRESSORS = (ZstdCodec(level=1),)
#: segment coordinates only the client writes (template, append) are stored this many chunks
#: to an object: one object per chunk would make 238,000 of them for 12 million segments
PLAN_CHUNKS = 64

#: ``FileRecord`` field -> its ``file_*`` coordinate: (name, dtype, description, units). Both
#: directions of the round trip read this table (:mod:`pipeline.write`); ``file_status`` and
#: ``file_duration`` are derived from it (from ``error``; from ``frames`` and ``sample_rate``).
FILE_FIELDS: dict[str, tuple[str, Any, str, str]] = {
    "uri": ("file_path", object, "the input URI as given", "1"),
    "label": ("file_label", object, "label", "1"),
    "split": ("file_split", object, "train/val/test split", "1"),
    "error": ("file_error", object, "why the file failed, one line (empty when ok)", "1"),
    "warning": ("file_warning", object, "what was odd but kept, one line (empty when none)", "1"),
    "sample_rate": ("file_sample_rate", np.int32, "native sample rate", "Hz"),
    "frames": ("file_frames", np.int64, "frames the file holds (as far as its header and size tell), at the native rate", "1"),
    "channels": ("file_channels", np.int32, "channels", "1"),
    "size": ("file_bytes", np.int64, "size", "bytes"),
    "fingerprint": ("file_fingerprint", object, "size + mtime or ETag, to detect changes", "1"),
    "format": ("file_format", object, "container format from the header", "1"),
    "first_segment": ("file_first_segment", np.int64, "index of the file's first segment", "1"),
    "n_segments": ("file_segments", np.int32, "segments allocated to the file", "1"),
}

#: ``file_*`` coordinates derived from a ``FileRecord``'s fields: (dtype, description, units)
FILE_DERIVED: dict[str, tuple[Any, str, str]] = {
    "file_status": (object, "ok, error, or pending (not all its chunks done)", "1"),
    "file_duration": (np.float64, "duration from the header", "s"),
}

#: per-segment coordinates the client writes from the plan (``schema.segment_coords``):
#: (dtype, description, units)
PLAN_COORDS: dict[str, tuple[Any, str, str]] = {
    "segment_file": (np.int32, "index into the file dimension (-1: padding, never data)", "1"),
    "segment_offset": (np.float64, "segment start from the file's start", "s"),
    "label": (object, "label of the segment's file", "1"),
    "split": (object, "train/val/test split of the segment's file", "1"),
}


@dataclass(frozen=True)
class ArraySpec:
    """One array of the store, as declared (nothing written).

    ``dtype`` ``object`` is a string array. ``chunks`` None lets zarr choose (as xarray lets it
    for an array given whole). ``values`` are written with the structure (the small axes);
    without them the array is left at its fill value for a later step or the tasks.
    """

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: Any
    description: str
    units: str
    coord: bool = False
    chunks: tuple[int, ...] | None = None
    compressed: bool = False
    family: str | None = None
    values: np.ndarray | None = field(default=None, compare=False)

    @property
    def attrs(self) -> dict[str, Any]:
        """The variable's attributes, as a reader sees them."""
        own = {"description": self.description, "units": self.units}
        return {**own, "family": self.family} if self.family is not None else own


def family_arrays(n: int, chunk: int, config: FeatureConfig, names: Sequence[str]) -> list[ArraySpec]:
    """The arrays of the families ``names`` for ``n`` segments in chunks of ``chunk``: their
    variables and summaries (data variables, written by the tasks), their frame times and
    bins axes (coordinates, with their values)."""
    out: list[ArraySpec] = []
    axes: set[str] = set()
    for fam, var in iter_variables(tuple(names)):
        dims = fam.dims(var)
        shape = (n, *fam.shape(var, config))
        out.append(ArraySpec(var.name, dims, shape, np.float32, var.description, var.units,
                             chunks=(chunk, *shape[1:]), compressed=True, family=fam.name))
        framing = fam.framing
        name = f"{framing.dim}_time"
        if var.per_frame and name not in axes:
            axes.add(name)
            times = framing.times(config)
            out.append(ArraySpec(name, (framing.dim,), times.shape, times.dtype,
                                 f"frame centre from the segment start ({framing.description})", "s", coord=True,
                                 values=times))
        axis = var.bins
        if axis is not None and (axis.coord_name or axis.name) not in axes:
            axes.add(axis.coord_name or axis.name)
            values = axis.coordinate(config)
            out.append(ArraySpec(axis.coord_name or axis.name, (axis.name,), values.shape,
                                 object if values.dtype.kind in "OUT" else values.dtype, axis.description,
                                 axis.units, coord=True, values=values))
        if not var.per_frame:
            continue
        for stat in SUMMARY_STATS:
            sshape = (shape[0], *shape[2:])
            out.append(ArraySpec(f"{var.name}_{stat}", (dims[0], *dims[2:]), sshape, np.float32,
                                 f"{stat} over the segment's valid frames of {var.name}", var.units,
                                 chunks=(chunk, *sshape[1:]), compressed=True, family=fam.name))
    return out


def store_arrays(layout: Layout, config: FeatureConfig) -> list[ArraySpec]:
    """Every array of a new store of ``layout``: the families' (:func:`family_arrays`), the
    plan's per-segment coordinates, the columns tasks write besides their features, the file
    table, the per-chunk flag and report. Only the axes carry values here."""
    n, chunk, n_files, n_chunks = layout.n_segments, layout.chunk, len(layout.files), layout.n_chunks
    out = family_arrays(n, chunk, config, config.features)
    out += [ArraySpec(name, ("segment",), (n,), dtype, desc, units, coord=True, chunks=(chunk * PLAN_CHUNKS,))
            for name, (dtype, desc, units) in PLAN_COORDS.items()]
    # what a chunk task writes (its region) stays unwritten here: 0 until the chunk is done
    out.append(ArraySpec("segment_valid_frames", ("segment",), (n,), np.int32,
                         "frames holding real audio; the rest is zero-padding", "1", coord=True, chunks=(chunk,)))
    out.append(ArraySpec("segment_valid", ("segment",), (n,), np.bool_,
                         "true once the segment's chunk stored real audio for it", "1", coord=True, chunks=(chunk,)))
    files = [*((name, dtype, desc, units) for name, dtype, desc, units in FILE_FIELDS.values()),
             *((name, dtype, desc, units) for name, (dtype, desc, units) in FILE_DERIVED.items())]
    # the file table in one object per column (what finalise rewrites whole)
    out += [ArraySpec(name, ("file",), (n_files,), dtype, desc, units, coord=True, chunks=(max(1, n_files),))
            for name, dtype, desc, units in files]
    out.append(ArraySpec("chunk_done", ("chunk",), (n_chunks,), np.uint8,
                         "1 once the chunk's data is written (written last)", "1", coord=True, chunks=(1,)))
    out.append(ArraySpec("chunk_report", ("chunk",), (n_chunks,), object,
                         "JSON: per-file status of the chunk's decode", "1", coord=True, chunks=(1,)))
    return out


def root_attributes(config: FeatureConfig, chunk: int, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A new store's root attributes: its config, families, versions and dates."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    families = {name: family(name).describe() for name in config.features}
    attrs: dict[str, Any] = {**config.to_dict(), "segment_chunk": chunk, "families": families,
                             "versions": package_versions(), "created": now, "updated": now,
                             "description": "Audio features (librosa reference) per segment; see docs/store.md"}
    attrs.update(extra or {})
    return netcdf_safe(attrs)


#: xarray's ``_FillValue`` attribute of a float array filled with NaN: the float64 NaN's bytes
_NAN_FILL = base64.standard_b64encode(struct.pack("<d", float("nan"))).decode()


def _coordinates(specs: Sequence[ArraySpec]) -> tuple[dict[str, str], str]:
    """xarray's ``coordinates`` attributes: per variable, the non-dimension coordinates whose
    dimensions it has; for the root, those no variable names."""
    non_dim = [s for s in specs if s.coord and s.dims != (s.name,)]
    named: dict[str, str] = {}
    for spec in specs:
        if spec.coord and spec.dims != (spec.name,):
            continue
        mine = sorted(c.name for c in non_dim if set(c.dims) <= set(spec.dims))
        if mine:
            named[spec.name] = " ".join(mine)
    used = {name for text in named.values() for name in text.split()}
    return named, " ".join(sorted(c.name for c in non_dim if c.name not in used))


def create_arrays(group: zarr.Group, specs: Sequence[ArraySpec]) -> None:
    """Create ``specs``' arrays in ``group`` (overwriting any of their names) as xarray would,
    their values written where declared. The group's own ``coordinates`` attribute is the
    caller's (:func:`root_coordinates`)."""
    named, _ = _coordinates(specs)
    for spec in specs:
        extra: dict[str, Any] = {}
        if spec.name in named:
            extra["coordinates"] = named[spec.name]
        if spec.dtype is object:
            dtype: Any = str
            fill: Any = ""
        else:
            dtype = np.dtype(spec.dtype)
            fill = np.nan if dtype.kind == "f" else 0
            if dtype.kind == "f":
                extra["_FillValue"] = _NAN_FILL
        array = group.create_array(
            spec.name, shape=spec.shape, dtype=dtype, chunks=spec.chunks or "auto", fill_value=fill,
            compressors=COMPRESSORS if spec.compressed else "auto", dimension_names=spec.dims,
            attributes={**spec.attrs, **extra}, overwrite=True)
        if spec.values is not None and spec.values.size:
            array[...] = storable(spec.values)


def storable(values: np.ndarray) -> np.ndarray:
    """Strings (an object or a fixed-width array) as NumPy's variable-width strings, which
    zarr stores as such; numbers as they are."""
    return values.astype(np.dtypes.StringDType()) if values.dtype.kind in "OU" else values


def root_coordinates(specs: Sequence[ArraySpec]) -> dict[str, str]:
    """The root attribute xarray writes for ``specs``: ``{"coordinates": ...}`` naming the
    coordinates no variable names (the file table, the flags), or nothing."""
    _, root = _coordinates(specs)
    return {"coordinates": root} if root else {}


def placeholder(shape: tuple[int, ...], dtype: Any) -> da.Array:
    """A Dask placeholder of a variable tasks write (never computed): one dask chunk for the
    whole array (its zarr chunking is the encoding's)."""
    import dask.array as da

    # named: dask need not hash anything to name a placeholder that is never computed. One dask
    # chunk: ``to_zarr(compute=False)`` builds a graph of every placeholder chunk it will never
    # run, which took 247 s and 8 GiB of client memory for a 10,000-hour store (47,600 chunks
    # of 30 arrays; benchmarks/scale.py). Zarr's chunks come from the encoding either way.
    lazy: da.Array = da.zeros(shape, dtype=dtype, chunks=shape, name=f"placeholder-{uuid.uuid4().hex}")
    return lazy


def as_dataset(specs: Sequence[ArraySpec], values: Mapping[str, np.ndarray] | None = None,
               attrs: Mapping[str, Any] | None = None) -> tuple[xr.Dataset, dict[str, dict[str, Any]]]:
    """The ``xr.Dataset`` of ``specs`` (values from ``values``, else the declared ones, else Dask
    placeholders) and its zarr encoding: what ``to_zarr(compute=False)`` writes as
    :func:`create_arrays` does."""
    import xarray as xr

    given = values or {}
    data_vars: dict[str, xr.Variable] = {}
    coords: dict[str, xr.Variable] = {}
    encoding: dict[str, dict[str, Any]] = {}
    for spec in specs:
        data = given.get(spec.name, spec.values)
        if data is None and spec.dtype is object:
            raise ValueError(f"The string array {spec.name!r} needs its values (a placeholder has a number dtype)")
        lazy = placeholder(spec.shape, spec.dtype) if data is None else data
        (coords if spec.coord else data_vars)[spec.name] = xr.Variable(spec.dims, lazy, spec.attrs)
        enc: dict[str, Any] = {}
        if spec.chunks is not None:
            enc["chunks"] = spec.chunks
        if spec.compressed:
            enc["compressors"] = COMPRESSORS
        if enc:
            encoding[spec.name] = enc
    return xr.Dataset(data_vars, coords=coords, attrs=dict(attrs or {})), encoding
