"""Bins axes several families share (a family's own axis lives in its module)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .registry import Axis

if TYPE_CHECKING:
    from ..config import FeatureConfig

__all__ = ["FREQ", "MEL_BAND", "MFCC_COEF", "PITCH_CLASS", "PITCH_CLASSES"]

PITCH_CLASSES: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _mel_frequencies(config: FeatureConfig) -> np.ndarray:
    from ..dsp import mel_frequencies

    return mel_frequencies(config.n_mels, fmin=config.fmin, fmax=float(config.fmax or config.sr / 2))


FREQ = Axis("freq", lambda c: c.n_freq, "STFT bin frequency", "Hz",
            values=lambda c: np.fft.rfftfreq(n=c.n_fft, d=1.0 / c.sr))
MEL_BAND = Axis("mel_band", lambda c: c.n_mels, "mel band centre", "Hz", values=_mel_frequencies,
                coord_name="mel_frequency")
MFCC_COEF = Axis("mfcc_coef", lambda c: c.n_mfcc, "MFCC index")
PITCH_CLASS = Axis("pitch_class", lambda c: c.n_chroma, "pitch class",
                   values=lambda c: np.array(PITCH_CLASSES[: c.n_chroma], dtype=object))
