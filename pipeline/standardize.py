"""Standardisation statistics: the one rule for a column's mean and spread.

Every reader that standardises features (the similarity search, the report's PCA, the
training loaders) takes its statistics from :func:`moments`: float64 mean and population
standard deviation along the given axes, with a standard deviation that is not above a floor
(a constant column; 0 unless told) replaced by 1, so that standardising never divides by zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask.base import compute as dask_compute

__all__ = ["moments", "unit_std"]


def unit_std(std: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """``std`` with every value not above ``floor`` (a constant column) replaced by 1.

    Parameters
    ----------
    std : np.ndarray
        Standard deviations.
    floor : float
        Values not above this (and NaN) count as no spread.

    Returns
    -------
    np.ndarray
        A copy, same dtype.
    """
    out = np.array(std, copy=True)
    out[~(out > floor)] = 1.0
    return out


def moments(
    values: np.ndarray | da.Array,
    axis: int | Sequence[int] = 0,
    *,
    skipna: bool = False,
    floor: float = 0.0,
    dtype: type[np.floating[Any]] = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation of ``values`` along ``axis``, computed in float64.

    Parameters
    ----------
    values : np.ndarray or dask.array.Array
        The data; a Dask array is reduced chunk by chunk and computed in one pass (mean and
        std share their reads).
    axis : int or sequence of int
        Axes to reduce over (``0``: per column of a ``(rows, features)`` matrix).
    skipna : bool
        Ignore NaN (``nanmean``/``nanstd``), as xarray's reductions do by default.
    floor : float
        A standard deviation not above this is replaced by 1 (:func:`unit_std`), after the
        cast to ``dtype``.
    dtype : numpy floating type
        Type of the results (the training loaders feed float32).

    Returns
    -------
    mean, std : np.ndarray
        Shaped as ``values`` without the reduced axes.
    """
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if isinstance(values, da.Array):
        data = values.astype(np.float64)  # type: ignore[no-untyped-call]
        if skipna:
            lazy = (da.nanmean(data, axis=axes), da.nanstd(data, axis=axes))
        else:
            lazy = (data.mean(axis=axes), data.std(axis=axes))
        mean, std = dask_compute(*lazy)  # type: ignore[no-untyped-call]
    else:
        data = np.asarray(values, dtype=np.float64)
        if skipna:
            mean, std = np.nanmean(data, axis=axes), np.nanstd(data, axis=axes)
        else:
            mean, std = data.mean(axis=axes), data.std(axis=axes)
    return np.asarray(mean, dtype=dtype), unit_std(np.asarray(std, dtype=dtype), floor)
