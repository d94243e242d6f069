"""Feature families: the registry (:mod:`.registry`) and one module per built-in family.

Importing this package only declares; kernels import what they need when they first run (numpy,
never librosa: :mod:`pipeline.dsp`), references import librosa.
"""

from __future__ import annotations

from .registry import (
    INTERMEDIATES,
    STFT_FRAMING,
    Axis,
    Family,
    Framing,
    Variable,
    all_families,
    default_names,
    family,
    family_names,
    is_frame_dim,
    iter_variables,
    register,
    stft_precision,
    variable,
)

__all__ = [
    "INTERMEDIATES",
    "STFT_FRAMING",
    "Axis",
    "Family",
    "Framing",
    "Variable",
    "all_families",
    "default_names",
    "family",
    "family_names",
    "is_frame_dim",
    "iter_variables",
    "register",
    "stft_precision",
    "variable",
]
