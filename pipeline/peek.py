"""A store read through zarr alone (no xarray, pandas or Dask): what ``info`` needs, quickly.

``xr.open_zarr`` costs about 0.9 s of imports (xarray, pandas) and 0.6 s more for dask.array,
which xarray imports with its first variable; ``info`` reads the attributes and a few small
variables, for which zarr alone (0.4 s of imports) is enough. :class:`StoreView` offers the
part of the ``xr.Dataset`` interface that the store's readers in :mod:`pipeline.store` use
(``attrs``, ``sizes``, ``variables``, ``data_vars``, ``coords``; ``view[name]`` with
``values``, ``dims``, ``dtype``, ``attrs``, ``encoding``), with the same names, order and
values as ``xr.open_zarr(url, chunks=None)``: the same functions serve both.

The flags are listed, as :func:`pipeline.store.open_raw` lists them (:mod:`pipeline.flags`);
``segment_valid`` and ``segment_valid_frames`` (one object per chunk) are read as
:func:`pipeline.store.open_store` reads them, from the last finalise's copy where it is current
(:func:`pipeline.store.task_columns`; 0 for a chunk not done).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import zarr

from .errors import SchemaError
from .flags import DONE, is_flag, listed_flag
from .store import TASK_COLUMNS

__all__ = ["ArrayView", "StoreView", "peek_store"]

#: zarr attributes that xarray turns into structure rather than shows as attributes
_STRUCTURAL = frozenset({"coordinates", "_ARRAY_DIMENSIONS", "_FillValue"})


class ArrayView:
    """One store variable, read on first use of :attr:`values` (and kept)."""

    def __init__(self, name: str, array: zarr.Array[Any], load: Callable[[], np.ndarray] | None = None) -> None:
        self.name = name
        self._array = array
        self._load = load
        self._values: np.ndarray | None = None
        names = getattr(array.metadata, "dimension_names", None)
        dims = names or array.attrs.get("_ARRAY_DIMENSIONS")
        if not isinstance(dims, list | tuple) or len(dims) != array.ndim:
            raise SchemaError(f"Expected the store's array {name!r} to name its dimensions, got {dims!r}")
        self.dims: tuple[str, ...] = tuple(str(d) for d in dims)
        self.shape: tuple[int, ...] = tuple(int(s) for s in array.shape)
        self.dtype = np.dtype(array.dtype) if not hasattr(array.dtype, "to_native_dtype") else \
            array.dtype.to_native_dtype()
        self.attrs: dict[str, Any] = {k: v for k, v in array.attrs.items() if k not in _STRUCTURAL}
        self.encoding: dict[str, Any] = {"chunks": tuple(int(c) for c in array.chunks)}

    @property
    def ndim(self) -> int:
        return len(self.dims)

    @property
    def values(self) -> np.ndarray:
        if self._values is None:
            self._values = np.asarray(self._array[...]) if self._load is None else self._load()
        return self._values

    def set_values(self, values: np.ndarray) -> None:
        """Known values (a listed flag): no read."""
        self._values = values


class StoreView:
    """The store's root group as a read-only, eager-on-demand, Dataset-like view."""

    def __init__(self, group: zarr.Group) -> None:
        self.attrs: dict[str, Any] = {k: v for k, v in group.attrs.items() if k not in _STRUCTURAL}
        arrays = sorted((str(name), node) for name, node in group.arrays())
        self.variables: dict[str, ArrayView] = {name: ArrayView(name, node) for name, node in arrays}
        named: set[str] = set(str(group.attrs.get("coordinates", "")).split())
        for _, node in arrays:
            named.update(str(node.attrs.get("coordinates", "")).split())
        coords = {n for n, v in self.variables.items() if n in named or v.dims == (n,)}
        self.coords: dict[str, ArrayView] = {n: v for n, v in self.variables.items() if n in coords}
        self.data_vars: dict[str, ArrayView] = {n: v for n, v in self.variables.items() if n not in coords}
        self.sizes: dict[str, int] = {}  # in xarray's order: the data variables' dimensions first
        for view in [*self.data_vars.values(), *self.coords.values()]:
            for dim, size in zip(view.dims, view.shape, strict=True):
                self.sizes.setdefault(dim, size)
        for name, view in self.variables.items():
            if is_flag(name) and view.dims == ("chunk",):
                listed = listed_flag(group[name])  # type: ignore[arg-type]
                if listed is not None:
                    view.set_values(listed.astype(view.dtype, copy=False))
        # what chunk tasks write per chunk (one object per chunk each) is read as open_store
        # reads it: from the last finalise's copy where current (store.task_columns)
        self._group = group
        self._task_columns: dict[str, np.ndarray] | None = None
        for name in TASK_COLUMNS:
            if name in self.variables and DONE in self.variables and "segment_chunk" in self.attrs:
                view = self.variables[name]
                self.variables[name] = ArrayView(name, view._array, functools.partial(self._task_column, name))
        self.coords = {n: self.variables[n] for n in self.coords}
        self.data_vars = {n: self.variables[n] for n in self.data_vars}

    def _task_column(self, name: str) -> np.ndarray:
        """``segment_valid`` or ``segment_valid_frames`` as ``store.task_columns`` reads them:
        the stored values of every done chunk, 0 elsewhere."""
        from .store import task_columns

        if self._task_columns is None:
            done = self.variables[DONE].values.astype(bool)
            self._task_columns, _ = task_columns(self._group, done, int(self.attrs["segment_chunk"]))
        return self._task_columns[name].astype(self.variables[name].dtype, copy=False)

    def __getitem__(self, name: str) -> ArrayView:
        try:
            return self.variables[name]
        except KeyError:
            raise KeyError(f"No variable named {name!r} in the store") from None

    def __contains__(self, name: object) -> bool:
        return name in self.variables

    def __iter__(self) -> Iterator[str]:
        return iter(self.data_vars)


def peek_store(url: str, storage_options: Mapping[str, Any] | None = None) -> StoreView:
    """The store at ``url`` through zarr alone (see the module's text).

    Raises
    ------
    SchemaError
        Nothing there, or not a store this pipeline wrote.
    """
    from .store import _zarr_store, quiet_zarr

    try:
        with quiet_zarr():  # consolidated metadata where there is some, as xr.open_zarr reads it
            group = zarr.open_group(store=_zarr_store(url, storage_options, read_only=True), mode="r",
                                    use_consolidated=None)
    except (FileNotFoundError, KeyError) as exc:
        raise SchemaError(f"Expected a feature store at {url}, found none") from exc
    view = StoreView(group)
    if DONE not in view or "segment_valid" not in view:
        raise SchemaError(f"Expected a feature store written by this pipeline at {url}")
    return view
