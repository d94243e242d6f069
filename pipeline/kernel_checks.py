"""The feature kernels' argument checks: a bad array is an ``InputError``, a bad parameter a
``ConfigError``, each with one line "Expected ..., got ...". The array checks return the array
as the kernels use it.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError, InputError

__all__ = [
    "check_array",
    "check_batch",
    "check_frame_counts",
    "check_positive_int",
    "check_positive_number",
]

#: dtype kinds a waveform or a spectrogram may have: bool, signed, unsigned, float
_REAL_KINDS = "biuf"


def _describe(value: object) -> str:
    """What ``value`` is, in a few words: its shape and dtype for an array, else its type."""
    if isinstance(value, np.ndarray):
        return f"shape {value.shape} of {value.dtype}"
    return f"a {type(value).__name__}"


def check_batch(y: object) -> np.ndarray:
    """``y`` as a float32 batch of waveforms ``(n, samples)``, with ``n >= 1`` and ``samples >= 1``.

    Parameters
    ----------
    y : np.ndarray [shape=(n, samples)]
        Any real dtype (bool, integer or float): anything but float32 is cast to float32.

    Returns
    -------
    y : np.ndarray [shape=(n, samples), dtype=float32]
        ``y`` itself when it is float32 already, else a float32 copy.

    Raises
    ------
    InputError
        ``y`` is not a 2-D array, has no segments or no samples, or is not real-valued.
    """
    if not isinstance(y, np.ndarray) or y.ndim != 2:
        raise InputError(f"Expected y with shape (n_segments, n_samples), got {_describe(y)}")
    if y.dtype.kind not in _REAL_KINDS:
        raise InputError(f"Expected y of real numbers (float32, or a type cast to it), got dtype {y.dtype}")
    if y.shape[0] == 0 or y.shape[1] == 0:
        raise InputError(f"Expected y with at least one segment of at least one sample, got shape {y.shape}")
    if y.dtype != np.float32:
        y = y.astype(np.float32)
    return y


def check_array(value: object, *, name: str, ndims: tuple[int, ...], layout: str) -> np.ndarray:
    """``value`` as an array of one of ``ndims`` dimensions, real-valued, with at least one segment.

    Parameters
    ----------
    value : array_like
        The argument; converted with ``np.asarray`` (its dtype kept).
    name : str
        The argument's name, for the message.
    ndims : tuple of int
        The numbers of dimensions allowed.
    layout : str
        The expected shape in words, for the message, e.g. ``"(n, frames, bins)"``.

    Returns
    -------
    np.ndarray [shape=layout]
        ``np.asarray(value)``.

    Raises
    ------
    InputError
        ``value`` has another number of dimensions, no segments, or a dtype that is not real.
    """
    array = np.asarray(value)
    if array.ndim not in ndims:
        raise InputError(f"Expected {name} with shape {layout}, got {_describe(array)}")
    if array.dtype.kind not in _REAL_KINDS:
        raise InputError(f"Expected {name} of real numbers, got dtype {array.dtype}")
    if array.shape[0] == 0:
        raise InputError(f"Expected {name} with at least one segment, got shape {array.shape}")
    return array


def check_frame_counts(value: object, *, name: str, n: int) -> np.ndarray:
    """``value`` as integer counts of frames, one per segment: shape ``(n,)``.

    Parameters
    ----------
    value : array_like [shape=(n,)]
        Integer counts (negative ones are the caller's to clip).
    name : str
        The argument's name, for the message.
    n : int
        The number of segments of the batch the counts belong to.

    Returns
    -------
    np.ndarray [shape=(n,)]
        ``np.asarray(value)``.

    Raises
    ------
    InputError
        ``value`` is not ``n`` integers.
    """
    array = np.asarray(value)
    if array.shape != (n,) or array.dtype.kind not in "iu":
        raise InputError(f"Expected {name} of {n} integers (one per segment), got {_describe(array)}")
    return array


def check_positive_int(value: object, *, name: str) -> None:
    """Refuse ``value`` unless it is an integer ``>= 1``.

    Parameters
    ----------
    value : int > 0
        A Python or NumPy integer (not a bool, not a float).
    name : str
        The parameter's name, for the message.

    Raises
    ------
    ConfigError
        ``value`` is not an integer, or is ``<= 0``.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ConfigError(f"Expected {name} to be a positive integer, got {value!r}")


def check_positive_number(value: object, *, name: str) -> None:
    """Refuse ``value`` unless it is a finite number ``> 0``.

    Parameters
    ----------
    value : number > 0
        A Python or NumPy integer or float (not a bool).
    name : str
        The parameter's name, for the message.

    Raises
    ------
    ConfigError
        ``value`` is not a number, or is not finite and positive.
    """
    if (isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating)
            or not math.isfinite(value) or value <= 0):
        raise ConfigError(f"Expected {name} to be a finite number > 0, got {value!r}")
