"""``onset``: the onset strength envelope of the mel spectrogram, and the tempo it implies."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from .registry import Family, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs

#: librosa's defaults: ``power_to_db``'s clip, the onset lag, the tempo prior and its window
TOP_DB = 80.0
LAG = 1
START_BPM = 120.0
STD_BPM = 1.0
MAX_TEMPO = 320.0
AC_SIZE = 8.0


def _win_length(config: FeatureConfig) -> int:
    """Frames of the tempogram's window: ``time_to_frames(AC_SIZE, sr, hop_length)``."""
    return int(AC_SIZE * config.sr) // config.hop_length


def check(config: FeatureConfig) -> None:
    if config.n_frames < 1 + LAG:
        raise ConfigError(f"Expected segments of at least {1 + LAG} frames for the onset family, got {config.n_frames}")
    if _win_length(config) < 1:
        raise ConfigError(f"Expected hop_length <= {AC_SIZE:g} s of samples for the onset family's tempo, "
                          f"got {config.hop_length}")


def onset_envelope(mel_db: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """``librosa.onset.onset_strength`` of each segment from its log-power mel spectrogram.

    ``power_to_db``'s ``top_db=80`` clip at each segment's own maximum, the positive first
    difference (lag 1, no maximum filter), its mean over the mel bands (a float32 running sum from
    the lowest band up: numpy's order along the slow axis of librosa's C-ordered ``(bands,
    frames)`` array, ``np.cumsum``'s here), shifted right by ``lag + n_fft // (2 * hop_length)`` frames
    behind zeros (librosa's centring).

    Parameters
    ----------
    mel_db : np.ndarray [shape=(n, frames, n_mels), dtype=float32]
        ``power_to_db(melspectrogram)`` with ``top_db=None`` (every frame of the segments).
    n_fft : int > 0 [scalar]
        The STFT's frame length (sets the centring shift).
    hop_length : int > 0 [scalar]
        Samples between frames.

    Returns
    -------
    envelope : np.ndarray [shape=(n, frames), dtype=float32]
        Non-negative; the first ``lag + n_fft // (2 * hop_length)`` frames are zero.
    """
    from ..spectrum import clip_top_db

    S = clip_top_db(mel_db, TOP_DB)
    rise = np.maximum(np.float32(0.0), S[:, LAG:] - S[:, :-LAG])
    mean = np.cumsum(rise, axis=-1)[..., -1] / np.float32(S.shape[-1])
    n, frames = S.shape[:2]
    shift = LAG + n_fft // (2 * hop_length)
    envelope = np.zeros((n, frames), dtype=np.float32)
    if shift < frames:
        envelope[:, shift:] = mean[:, : frames - shift]
    return envelope


@lru_cache(maxsize=8)
def _tempo_grid(sr: int, hop_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The autocorrelation window, each lag's BPM and its log prior (``-inf`` at or above
    ``MAX_TEMPO``), as ``librosa.feature.tempo`` builds them."""
    from ..dsp import hann_window, tempo_frequencies

    win = int(AC_SIZE * sr) // hop_length
    window = hann_window(win)
    bpms = tempo_frequencies(win, hop_length=hop_length, sr=sr)
    logprior = -0.5 * ((np.log2(bpms) - np.log2(START_BPM)) / STD_BPM) ** 2
    logprior[: int(np.argmax(bpms < MAX_TEMPO))] = -np.inf
    for array in (window, bpms, logprior):
        array.setflags(write=False)
    return window, bpms, logprior


def tempo(envelope: np.ndarray, *, sr: int, hop_length: int) -> np.ndarray:
    """``librosa.feature.tempo(onset_envelope=envelope[i], sr, hop_length)[0]`` of each segment.

    The mean over frames of the autocorrelation tempogram (centred windows of ``AC_SIZE``
    seconds, linear-ramp padded, Hann-weighted, each lag's autocorrelation over its maximum),
    weighted by librosa's log-normal prior around 120 BPM; the BPM of its largest lag. The
    same operations in the same layout as librosa's, one segment at a time (each segment's
    FFTs have its own shape: its bits do not depend on the batch).

    Parameters
    ----------
    envelope : np.ndarray [shape=(n, frames), dtype=float32]
        Onset strength envelopes (:func:`onset_envelope`).
    sr : int > 0 [scalar]
        Sampling rate.
    hop_length : int > 0 [scalar]
        Samples between the envelope's frames.

    Returns
    -------
    bpm : np.ndarray [shape=(n,), dtype=float64]
    """
    import scipy.fft

    from ..dsp import abs2

    window, bpms, logprior = _tempo_grid(sr, hop_length)
    win = window.size
    n_pad = scipy.fft.next_fast_len(2 * win - 1, real=True)
    frames = envelope.shape[1]
    out = np.empty(envelope.shape[0])
    for i in range(envelope.shape[0]):
        padded = np.pad(envelope[i], (win // 2, win // 2), mode="linear_ramp", end_values=[0, 0])
        windows = np.lib.stride_tricks.sliding_window_view(padded, win)[:frames] * window  # (frames, win)
        # numpy.fft: librosa's FFT unless librosa.set_fftlib replaced it
        ac = np.fft.irfft(abs2(np.fft.rfft(windows, n=n_pad, axis=-1)), n=n_pad, axis=-1)[:, :win]
        peak = np.max(np.abs(ac), axis=-1, keepdims=True)
        peak[peak < np.finfo(np.float64).tiny] = 1.0
        # librosa averages its (lags, frames) tempogram along its contiguous frames axis
        mean_tg = np.mean(np.ascontiguousarray((ac / peak).T), axis=-1)
        out[i] = bpms[int(np.argmax(np.log1p(1e6 * mean_tg) + logprior))]
    return out


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    envelope = onset_envelope(inputs.mel_db, n_fft=config.n_fft, hop_length=config.hop_length)
    return {"onset_strength": envelope,
            "tempo": tempo(envelope, sr=config.sr, hop_length=config.hop_length).astype(np.float32)}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    from .._librosa import librosa

    envelope = librosa.onset.onset_strength(y=y, sr=config.sr, hop_length=config.hop_length, n_fft=config.n_fft,
                                            n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax)
    bpm = librosa.feature.tempo(onset_envelope=envelope, sr=config.sr, hop_length=config.hop_length)
    return {"onset_strength": envelope, "tempo": np.asarray(bpm[0])}


FAMILY = register(Family(
    name="onset", version="1",
    variables=(
        Variable("onset_strength", "librosa.onset.onset_strength of the mel spectrogram (power_to_db top_db=80, lag 1, "
                 "max_size 1, mean over mel bands, centred)", "1"),
        Variable("tempo", "librosa.feature.tempo of the segment's onset_strength (prior 120 BPM, 8 s autocorrelation "
                 "windows, mean over frames)", "BPM", per_frame=False),
    ),
    # float32 spectra: a tone's onset strength (differences of quiet mel bands) 1.4x its tolerance
    compute=compute, reference_fn=reference, consumes=("mel_db",), check=check, figure="lines", float64_stft=True,
    reference="onset_strength(y, sr, hop_length, n_fft, n_mels, fmin, fmax); tempo(onset_envelope, sr, hop_length)",
    origin={"module": __name__},
))
