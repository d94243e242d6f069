"""The shared intermediates of one batch of segments, each computed once and only if asked for.

:func:`compute` runs the requested families on a batch; each family reads what it consumes
from an :class:`Inputs` (``inputs.power``, ``inputs.mel_db``, ``inputs.family("mfcc")``...).
The first family to ask computes an intermediate; the rest reuse it (the one-STFT rule: one
STFT of the config's framing per segment, whatever families run).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, cast

import numpy as np

from ..errors import ConfigError, FamilyError, InputError, one_line
from ..kernel_checks import check_batch
from .registry import Family, family

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from ..spectrum import Precision

__all__ = ["Inputs", "compute", "extend"]


def extend(values: np.ndarray, n_frames: int, fill: float) -> np.ndarray:
    """``values`` ``(n, frames[, bins])`` padded along frames to ``n_frames`` with ``fill``."""
    if values.shape[1] >= n_frames:
        if values.shape[1] != n_frames:
            raise InputError(f"Expected at most {n_frames} frames, got {values.shape[1]}")
        return values
    out = np.empty((values.shape[0], n_frames, *values.shape[2:]), dtype=np.float32)
    out[:, : values.shape[1]] = values
    out[:, values.shape[1] :] = fill
    return out


class Inputs:
    """A batch of segments and its intermediates (see :data:`~pipeline.families.registry.INTERMEDIATES`).

    Spectra are computed only over the frames up to the batch's last one with audio
    (``n_live``): the frames after it lie in zero-padding and their features are a family's
    constants for a zero spectrum, which it fills in with :meth:`extend`.

    Parameters
    ----------
    y : np.ndarray [shape=(n, config.segment_samples)]
        Zero-padded segments at ``config.sr``.
    config : FeatureConfig
    precision : {"float64", "float32"} or None
        The STFT's (:data:`~pipeline.spectrum.Precision`); by default the config's
        ``stft_dtype`` (the store's: librosa's float64 bits where one of its families
        declares ``float64_stft``, as chroma does, else float32 unless asked otherwise).
    """

    def __init__(self, y: np.ndarray, config: FeatureConfig, precision: Precision | None = None) -> None:
        self.config = config
        self.precision: Precision = cast("Precision", config.stft_dtype) if precision is None else precision
        self.waveform = check_batch(y)
        if self.waveform.shape[1] != config.segment_samples:
            raise InputError(f"Expected segments of {config.segment_samples} samples, got {self.waveform.shape[1]}")
        self._outputs: dict[str, dict[str, np.ndarray]] = {}
        self._running: set[str] = set()

    @property
    def n(self) -> int:
        return int(self.waveform.shape[0])

    @cached_property
    def live(self) -> np.ndarray:
        """STFT frames of each segment with audio ``[shape=(n,)]``."""
        from ..spectrum import live_frames

        return live_frames(self.waveform, self.config.n_fft, self.config.hop_length)

    @cached_property
    def n_live(self) -> int:
        """Frames computed: up to the batch's last one with audio (at least 1)."""
        return max(1, int(self.live.max(initial=0)))

    @cached_property
    def magnitude(self) -> np.ndarray:
        """``|STFT|`` ``[shape=(n, n_live, 1 + n_fft // 2)]``, float32, at :attr:`precision`."""
        from ..spectrum import magnitude_spectrogram

        c = self.config
        return magnitude_spectrogram(y=self.waveform, n_fft=c.n_fft, hop_length=c.hop_length,
                                     n_frames=self.n_live, live=self.live, precision=self.precision)

    @cached_property
    def power(self) -> np.ndarray:
        """``|STFT|^2`` ``[shape=(n, n_live, 1 + n_fft // 2)]``, float32."""
        power: np.ndarray = np.square(self.magnitude)
        return power

    @cached_property
    def mel_power(self) -> np.ndarray:
        """Mel filterbank of :attr:`power` ``[shape=(n, n_live, n_mels)]``, float32."""
        from ..filterbanks import mel_basis, per_segment_product

        c = self.config
        basis = mel_basis(c.sr, c.n_fft, c.n_mels, c.fmin, float(c.fmax or c.sr / 2))
        return per_segment_product(self.power, basis, self.live)

    @cached_property
    def mel_db(self) -> np.ndarray:
        """``power_to_db(mel_power)`` over every frame ``[shape=(n, frames, n_mels)]``, float32."""
        from ..spectrum import SILENT_DB, power_to_db

        return self.extend(power_to_db(S=self.mel_power), SILENT_DB)

    def extend(self, values: np.ndarray, fill: float) -> np.ndarray:
        """``values`` over :attr:`n_live` frames padded to the config's frames with ``fill``."""
        return extend(values, self.config.n_frames, fill)

    def family(self, name: str) -> dict[str, np.ndarray]:
        """Another family's variables for this batch (computed once, stored or not)."""
        if name not in self._outputs:
            if name in self._running:
                raise ConfigError(f"Expected families without a cycle, got family {name} consuming itself")
            self._running.add(name)
            try:
                self._outputs[name] = _run(family(name), self)
            finally:
                self._running.discard(name)
        return self._outputs[name]


def _run(fam: Family, inputs: Inputs) -> dict[str, np.ndarray]:
    """``fam.compute`` on ``inputs``, its output checked against its declaration.

    Raises
    ------
    FamilyError
        The family raised, or returned a missing, misshapen or (a plugin's) non-finite array.
    """
    config = inputs.config
    try:
        result = fam.compute(inputs, config)
    except FamilyError:
        raise
    except Exception as exc:
        raise FamilyError(f"family {fam.name}{_origin(fam)} failed: {type(exc).__name__}: {one_line(exc)}") from exc
    if not isinstance(result, dict):
        raise FamilyError(f"family {fam.name}{_origin(fam)} returned a {type(result).__name__}, expected a dict of arrays")
    out: dict[str, np.ndarray] = {}
    for var in fam.variables:
        if var.name not in result:
            raise FamilyError(f"family {fam.name}{_origin(fam)} returned no {var.name} (got {', '.join(map(str, result)) or 'nothing'})")
        values = np.asarray(result[var.name])
        shape = (inputs.n, *fam.shape(var, config))
        if values.shape != shape:
            raise FamilyError(f"family {fam.name}{_origin(fam)} returned {var.name} of shape {values.shape}, expected {shape}")
        values = np.ascontiguousarray(values, dtype=np.float32)
        if "source_sha256" in fam.origin and not np.isfinite(values).all():
            bad = int(np.count_nonzero(~np.isfinite(values)))
            raise FamilyError(f"family {fam.name}{_origin(fam)} returned {bad} non-finite values of {var.name}")
        out[var.name] = values
    return out


def _origin(fam: Family) -> str:
    """`` (plugin my_features)`` for a plugin's family, ``""`` for a built-in."""
    return f" (plugin {fam.origin['module']})" if "source_sha256" in fam.origin else ""


def compute(y: np.ndarray, config: FeatureConfig, precision: Precision | None = None) -> dict[str, np.ndarray]:
    """Every variable of ``config.features`` for a batch of segments, in store order.

    Returns one C-contiguous float32 array per variable (per-frame and per-segment ones).
    ``precision``: the STFT's (:class:`Inputs`), by default ``config.stft_dtype``.
    """
    inputs = Inputs(y, config, precision)
    out: dict[str, np.ndarray] = {}
    for name in config.features:
        out.update(inputs.family(name))
    return out
