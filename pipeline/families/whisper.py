"""``whisper``: OpenAI Whisper's log-mel input features (16 kHz, 80 bins).

``whisper.audio.log_mel_spectrogram`` of each segment, transposed to ``(frames, 80)``: a
centred 400-point STFT (periodic Hann window, reflect padding) every 160 samples, the last
frame dropped (``frames = samples // 160``); the power spectrum through
``librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)`` (Whisper's ``mel_filters.npz``);
``log10(max(mel, 1e-10))``, floored at the segment's own maximum minus 8, then
``(x + 4) / 4``. A 30 s segment is exactly Whisper's encoder input for that audio
(``log_mel_spectrogram(pad_or_trim(audio))``). Computed in numpy (float64), one segment at a
time, over that segment's frames with audio only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from .registry import Axis, Family, Framing, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs

__all__ = ["FAMILY", "HOP", "N_FFT", "N_MELS", "SR", "log_mel", "mel_filters"]

#: Whisper's sampling rate, FFT length, hop and mel bands
SR = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
#: the floor of the mel power before log10
_AMIN = 1e-10
#: how far (log10 units) below a segment's maximum values are floored
_TOP = 8.0
#: frames transformed together: their float64 copies stay within a few MB
_BLOCK_FRAMES = 1024


@lru_cache(maxsize=2)
def mel_filters(n_mels: int = N_MELS) -> np.ndarray:
    """Whisper's mel filterbank, transposed: ``librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels).T``.

    Parameters
    ----------
    n_mels : {80, 128}
        Mel bands.

    Returns
    -------
    M_t : np.ndarray [shape=(201, n_mels), dtype=float64]
        C-contiguous, read-only, cached.
    """
    from ..filterbanks import mel_basis

    out = np.ascontiguousarray(mel_basis(SR, N_FFT, n_mels, 0.0, SR / 2.0), dtype=np.float64)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    """The periodic Hann window of 400 samples (``torch.hann_window(400)``), float64, read-only."""
    out: np.ndarray = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)
    out.setflags(write=False)
    return out


def check(config: FeatureConfig) -> None:
    """Raise :class:`ConfigError` unless ``sr`` is 16000 and a segment holds a window."""
    if config.sr != SR:
        raise ConfigError(f"Expected sr {SR} for the whisper family (Whisper's log-mel is defined at 16 kHz), got sr {config.sr}")
    if config.segment_samples < N_FFT:
        raise ConfigError(f"Expected segments of at least {N_FFT} samples for the whisper family, "
                          f"got {config.segment_samples} ({config.segment_seconds} s)")


def _live(y: np.ndarray, n_frames: int) -> np.ndarray:
    """Frames of each segment whose window sees a nonzero sample (reflections included)."""
    samples = y.shape[1]
    nonzero = y != 0
    end = np.where(nonzero.any(axis=1), samples - np.argmax(nonzero[:, ::-1], axis=1), 0)
    # frame t sees samples [t * HOP - N_FFT // 2, t * HOP + N_FFT // 2); the reflection at the
    # end mirrors samples from samples - 1 - N_FFT // 2 on: audio there makes every frame live
    count = np.where(end >= samples - 1 - N_FFT // 2, n_frames, -(-(end + N_FFT // 2) // HOP))
    return np.minimum(n_frames, count).astype(np.int64)


def log_mel(*, y: np.ndarray) -> np.ndarray:
    """Whisper's log-mel spectrogram of each 16 kHz segment, ``log_mel_spectrogram(y[i]).T``.

    Parameters
    ----------
    y : np.ndarray [shape=(n, samples)]
        Segments at 16 kHz; any real dtype (cast to float32); at least 400 samples.

    Returns
    -------
    log_mel : np.ndarray [shape=(n, samples // 160, 80), dtype=float32]
        ``(max(l, l.max() - 8) + 4) / 4`` with ``l = log10(max(mel power, 1e-10))``, the
        maximum over each segment's own frames.

    Raises
    ------
    InputError
        ``y`` is not a non-empty 2-D array of real numbers.
    ConfigError
        The segments are shorter than 400 samples.
    """
    from ..kernel_checks import check_batch

    y = check_batch(y)
    if y.shape[1] < N_FFT:
        raise ConfigError(f"Expected segments of at least {N_FFT} samples, got {y.shape[1]}")
    return _log_mel(y, y.shape[1] // HOP)


def _log_mel(y: np.ndarray, n_frames: int) -> np.ndarray:
    """:func:`log_mel` of a checked float32 batch."""
    from numpy.lib.stride_tricks import sliding_window_view

    basis = mel_filters(N_MELS)
    window = _hann()
    silent = np.log10(_AMIN)
    out = np.empty((y.shape[0], n_frames, N_MELS), dtype=np.float32)
    padded = np.pad(y, ((0, 0), (N_FFT // 2, N_FFT // 2)), mode="reflect")
    frames = sliding_window_view(padded, N_FFT, axis=-1)[:, ::HOP]
    for i, live in enumerate(_live(y, n_frames).tolist()):
        # one segment at a time, in blocks fixed by the segment alone: its bits never depend on the batch
        log_spec = np.full((n_frames, N_MELS), silent, dtype=np.float64)
        for start in range(0, live, _BLOCK_FRAMES):
            rows = slice(start, min(start + _BLOCK_FRAMES, live))
            spectrum = np.fft.rfft(frames[i, rows] * window, axis=-1)
            power = np.square(spectrum.real) + np.square(spectrum.imag)
            np.log10(np.maximum(power @ basis, _AMIN), out=log_spec[rows])
        peak = log_spec.max()
        out[i] = (np.maximum(log_spec, peak - _TOP) + 4.0) / 4.0
    return out


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    return {"whisper_log_mel": _log_mel(inputs.waveform, config.segment_samples // HOP)}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    import importlib

    import torch

    whisper: Any = importlib.import_module("whisper")  # untyped, a test need
    log_spec = whisper.audio.log_mel_spectrogram(torch.from_numpy(np.asarray(y, dtype=np.float32)), n_mels=N_MELS)
    return {"whisper_log_mel": log_spec.numpy().T}


def _centres(config: FeatureConfig) -> np.ndarray:
    """Each band's centre frequency (Hz): the peaks of librosa's (Slaney) mel triangles."""
    from ..dsp import mel_frequencies

    values: np.ndarray = mel_frequencies(N_MELS + 2, fmin=0.0, fmax=SR / 2.0)[1:-1]
    return values


WHISPER_MEL = Axis("whisper_mel", lambda c: N_MELS, "Whisper mel band centre", "Hz", values=_centres,
                   coord_name="whisper_frequency")

FRAMING = Framing(
    dim="whisper_frame",
    hop=lambda c: HOP,
    n_frames=lambda c: c.segment_samples // HOP,
    first_centre=lambda c: 0,
    description="Whisper frames: centred 400-sample windows every 160 samples, reflect-padded, the last dropped",
)

FAMILY = register(Family(
    name="whisper", version="1",
    variables=(Variable("whisper_log_mel", "Whisper's log-mel input features: log10 mel power, floored at the "
                        "segment's max - 8, (x + 4) / 4", "log10 (whisper-scaled)", WHISPER_MEL, tolerance="db"),),
    compute=compute, reference_fn=reference, consumes=("waveform",), framing=FRAMING, check=check,
    reference="whisper.audio.log_mel_spectrogram(segment, n_mels=80) transposed",
    origin={"module": __name__},
))
