"""Feature families: the registry (:mod:`.registry`) and one module per built-in family.

Importing this package only declares; kernels import librosa when they first run.
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
    "variable",
]
