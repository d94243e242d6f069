"""Assertions for tests of feature stores: librosa parity of one segment, equality of two stores.

Like :mod:`numpy.testing` and :mod:`xarray.testing`, every ``assert_*`` function raises
``AssertionError`` (with a one-line message) on a difference and returns ``None`` otherwise.

* :func:`reference_segment` computes the frame-level variables of one segment with plain
  librosa calls, as the store schema (``docs/store.md``) defines them;
* :func:`assert_segment_close` and :func:`assert_close` hold computed values to that
  reference within the schema's tolerance;
* :func:`assert_stores_equal` checks that two stores hold the same arrays, bit for bit.

Synthetic audio to feed them lives in :mod:`pipeline.synth`. Importing :mod:`pipeline` does
not import this module (it imports librosa at once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from ._librosa import librosa
from .config import FeatureConfig
from .errors import ConfigError
from .families import all_families, family, variable

__all__ = ["assert_close", "assert_segment_close", "assert_stores_equal", "reference_segment", "runnable_families"]

Array = npt.NDArray[Any]

def reference_segment(y: npt.ArrayLike, config: FeatureConfig) -> dict[str, Array]:
    """Every variable of ONE zero-padded segment, by each family's reference library.

    Each family (:mod:`pipeline.families`) declares its reference (``reference_fn``): plain
    librosa calls for librosa's features, ``kaldi-native-fbank`` for ``fbank``, openai-whisper
    for ``whisper``. Those packages are test needs (the ``test`` extra), not the library's.

    Parameters
    ----------
    y : array_like
        The segment's samples (mono, ``config.segment_samples`` long, zero-padded).
    config : FeatureConfig
        Which families, and the analysis parameters.

    Returns
    -------
    dict of str to numpy.ndarray
        One entry per variable of ``config.features``, laid out ``(frames[, bins])`` (or
        ``([bins])`` per segment) as in the store.
    """
    y = np.asarray(y)
    out: dict[str, Array] = {}
    for name in config.features:
        fam = family(name)
        if fam.reference_fn is None:
            raise AssertionError(f"Expected family {name} to declare a reference, got none")
        out.update(fam.reference_fn(y, config))
    return out


def runnable_families(**config: Any) -> tuple[str, ...]:
    """Every registered family that runs with a config of these fields (``whisper`` needs
    ``sr=16000``): ``FeatureConfig(features=runnable_families(**kw), **kw)`` holds them all."""
    out = []
    for fam in all_families():
        try:
            FeatureConfig(**{**config, "features": (fam.name,)})
        except ConfigError:
            continue
        out.append(fam.name)
    return tuple(out)


def _rolloff_ties(y: Array, config: FeatureConfig) -> npt.NDArray[np.bool_]:
    """Frames where librosa's cumulative energy sits within float32 rounding of the 85% threshold
    at the chosen bin or the one before: there, a change of the input in its last bits moves the
    rolloff by one bin, whoever computes it (a step function has no tolerance to offer)."""
    S = np.abs(librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length))
    total = np.cumsum(S, axis=0)
    threshold = 0.85 * total[-1]
    k = np.argmax(total >= threshold, axis=0)
    frames = np.arange(S.shape[1])

    def near(i: Array) -> npt.NDArray[np.bool_]:
        at = total[np.clip(i, 0, S.shape[0] - 1), frames]
        return np.asarray(np.abs(at - threshold) <= 1e-5 * np.maximum(threshold, 1e-30))

    return near(k) | near(k - 1)


def assert_segment_close(
    got: Mapping[str, npt.ArrayLike], ref: Mapping[str, Array], y: npt.ArrayLike, config: FeatureConfig
) -> None:
    """Assert every variable of one segment is within the schema's tolerance of the reference.

    ``spectral_rolloff`` may differ by one bin at frames where the reference sits on a tie
    (the cumulative energy within float32 rounding of the threshold).

    Parameters
    ----------
    got : mapping of str to array_like
        Computed frame-level variables of the segment; every name of ``ref`` must be there.
    ref : mapping of str to numpy.ndarray
        The reference, as :func:`reference_segment` returns it.
    y : array_like
        The segment's samples (to find rolloff ties).
    config : FeatureConfig
        The analysis parameters.

    Raises
    ------
    AssertionError
        If a variable is missing or outside the tolerance of :func:`assert_close`.
    """
    for name, values in ref.items():
        if name not in got:
            raise AssertionError(f"Expected variable {name} in the computed segment, got {sorted(got)}")
        g = np.asarray(got[name], dtype=np.float64)
        if name == "spectral_rolloff":
            tie = _rolloff_ties(np.asarray(y), config) & (np.abs(g - values) <= config.sr / config.n_fft * 1.001)
            g = np.where(tie, values, g)
        assert_close(name, g, values)


def assert_close(name: str, got: npt.ArrayLike, ref: npt.ArrayLike) -> None:
    """Assert one variable of one segment is within the store schema's tolerance of the reference.

    The variable's declared tolerance (:class:`pipeline.families.Variable`) chooses: ``"db"``
    (dB or log units) may differ by 0.01 wherever the reference is within 80 dB of its
    maximum; ``"coefficients"`` (MFCC and its deltas) by 1e-3 of the largest absolute reference
    value (at least 1e-3: the delta of silence is rounding noise around 0) and ``"relative"``
    by 1e-4 of it.

    Parameters
    ----------
    name : str
        The variable's name in the store (its family declares the tolerance).
    got, ref : array_like
        Computed and reference values, of one shape.

    Raises
    ------
    AssertionError
        If the shapes differ, ``got`` has a non-finite value or an error is over the tolerance.
    """
    g = np.asarray(got, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if g.shape != r.shape:
        raise AssertionError(f"Expected {name} of shape {r.shape}, got {g.shape}")
    if not np.all(np.isfinite(g)):
        raise AssertionError(f"Expected finite values of {name}, got {int(np.sum(~np.isfinite(g)))} non-finite")
    tolerance = variable(name)[1].tolerance
    if tolerance == "db":
        relevant = r >= r.max() - 80.0
        err = np.abs(g - r)[relevant].max(initial=0.0)
        if not err <= 0.01:
            raise AssertionError(f"Expected {name} within 0.01 dB, got a max dB error of {err}")
    else:
        # coefficients (MFCC, deltas): 1e-3 of the largest, and at least 1e-3 absolute: the delta
        # of a constant (silence) is rounding noise around 0, and its scale is the MFCC's (~1e3)
        tol = 1e-3 * max(np.abs(r).max(), 1.0) if tolerance == "coefficients" else 1e-4 * max(np.abs(r).max(), 1e-12)
        err = np.abs(g - r).max(initial=0.0)
        if not err <= tol:
            raise AssertionError(f"Expected {name} within {tol}, got a max error of {err}")


def _chunk_reports(var: xr.DataArray) -> list[Any]:
    """The chunk reports without their ``timings`` (seconds a run took, never equal twice)."""
    reports = [json.loads(text) if text else {} for text in np.asarray(var.values).astype(object)]
    for report in reports:
        report.pop("timings", None)
    return reports


def assert_stores_equal(a: xr.Dataset, b: xr.Dataset) -> None:
    """Assert two opened feature stores hold the same arrays, bit for bit.

    Both must have the same data variables and coordinates, and each must be identical in
    both (dtype, dims, values, attributes; NaN equals NaN, as in ``Variable.identical``). What a run records about itself
    is not compared: the dataset attributes (times, versions) and the ``timings`` in each
    ``chunk_report``.

    Parameters
    ----------
    a, b : xarray.Dataset
        The stores, each opened the same way (``open_store`` or ``open_raw``).

    Raises
    ------
    AssertionError
        If a variable is in only one store or differs.
    """
    for kind, names_a, names_b in (("data variables", set(a.data_vars), set(b.data_vars)),
                                   ("coordinates", set(a.coords), set(b.coords))):
        if names_a != names_b:
            raise AssertionError(f"Expected the same {kind}, got {sorted(map(str, names_a ^ names_b))} in one store only")
    for name in [*a.data_vars, *a.coords]:
        if name == "chunk_report":
            if _chunk_reports(a[name]) != _chunk_reports(b[name]):
                raise AssertionError("Expected equal chunk reports (timings aside), got different ones")
            continue
        difference = _difference(a[name].variable, b[name].variable)
        if difference:
            raise AssertionError(f"Expected {name} identical in both stores, got {difference}")


def _difference(a: xr.Variable, b: xr.Variable) -> str:
    """How ``b`` differs from ``a`` (dtype, dims, attributes or values), or ``""``."""
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} != {b.dtype}"
    if a.dims != b.dims or a.shape != b.shape:
        return f"dims {dict(a.sizes)} != {dict(b.sizes)}"
    if a.attrs != b.attrs:
        return f"attributes {a.attrs} != {b.attrs}"
    va, vb = np.asarray(a.values), np.asarray(b.values)
    same = np.asarray(va == vb) | (_missing(va) & _missing(vb))
    if same.all():
        return ""
    return f"{int(np.size(same) - np.count_nonzero(same))} of {va.size} values differ"


def _missing(values: Array) -> npt.NDArray[np.bool_]:
    """Where ``values`` holds NaN, NaT or None (two missing values are equal, as in xarray)."""
    return np.asarray(pd.isna(values), dtype=bool)
