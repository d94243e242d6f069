"""``fbank``: Kaldi's log-mel filterbank (80 bins, 25 ms frames every 10 ms, ``snip_edges``).

The numbers of ``kaldi_native_fbank.OnlineFbank`` with its default ``FbankOptions`` but
``dither = 0`` and 80 bins, fed the segment's float samples as they are: each 25 ms frame
(Kaldi's ``snip_edges``: only frames wholly inside the segment) has its mean removed, is
pre-emphasised (0.97), multiplied by Kaldi's "povey" window, zero-padded to a power of two,
transformed; its power spectrum is summed by Kaldi's triangular mel bins (20 Hz to Nyquist)
and the natural log taken, floored at float32's epsilon. Computed in numpy (float64), one
segment at a time, over that segment's frames with audio only.
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

__all__ = ["FAMILY", "LOG_FLOOR", "N_BINS", "fbank", "kaldi_mel_banks", "window_sizes"]

#: mel bins
N_BINS = 80
#: Kaldi's log floor: float32's machine epsilon (``std::numeric_limits<float>::epsilon()``)
LOG_FLOOR = float(np.finfo(np.float32).eps)
#: the value of a frame without audio: ``log(LOG_FLOOR)``
_SILENT = float(np.log(np.float32(LOG_FLOOR)))
_PREEMPH = 0.97
_LOW_FREQ = 20.0
#: the lowest sampling rate accepted: 80 bins over a 256-point FFT are all non-empty from there
_MIN_SR = 8000
#: frames transformed together: their float64 copies stay within a few MB
_BLOCK_FRAMES = 512


def window_sizes(sr: int) -> tuple[int, int, int]:
    """Kaldi's frame length, frame shift and FFT length in samples at ``sr``.

    Kaldi's arithmetic: ``int(samp_freq * 0.001f * 25.0f)`` in float32, truncated (so 551 and
    220 at 22050 Hz), the FFT length the next power of two of the frame length.

    Parameters
    ----------
    sr : int > 0 [scalar]
        Sampling rate.

    Returns
    -------
    win, hop, n_fft : int
        Samples per frame, between frame starts, and per FFT.
    """
    f32 = np.float32
    win = int(f32(sr) * f32(0.001) * f32(25.0))
    hop = int(f32(sr) * f32(0.001) * f32(10.0))
    return win, hop, 1 << max(0, win - 1).bit_length()


@lru_cache(maxsize=8)
def kaldi_mel_banks(sr: int) -> np.ndarray:
    """Kaldi's triangular mel bins (``MelBanks``, not HTK mode), transposed.

    Bin ``b`` rises from mel ``lo + b * d`` to ``lo + (b + 1) * d`` and falls to ``lo + (b + 2) * d``,
    ``d = (mel(sr / 2) - mel(20)) / 81``, ``mel(f) = 1127 ln(1 + f / 700)``, sampled at the FFT
    bins ``0 .. n_fft / 2 - 1`` (Kaldi leaves the Nyquist bin out); float32 arithmetic, as Kaldi's.

    Parameters
    ----------
    sr : int > 0 [scalar]
        Sampling rate.

    Returns
    -------
    M_t : np.ndarray [shape=(n_fft // 2, 80), dtype=float64]
        C-contiguous, read-only, cached (``n_fft`` of :func:`window_sizes`).
    """
    f32 = np.float32
    n_fft = window_sizes(sr)[2]

    def mel(freq: np.ndarray) -> np.ndarray:
        out: np.ndarray = f32(1127.0) * np.log(f32(1.0) + freq / f32(700.0))
        return out

    low, high = mel(np.asarray(_LOW_FREQ, dtype=f32)), mel(np.asarray(f32(0.5) * f32(sr), dtype=f32))
    delta = (high - low) / f32(N_BINS + 1)
    bins = np.arange(N_BINS, dtype=f32)[None, :]
    left, centre, right = low + bins * delta, low + (bins + 1) * delta, low + (bins + 2) * delta
    m = mel((f32(sr) / f32(n_fft)) * np.arange(n_fft // 2, dtype=f32))[:, None]
    rising, falling = (m - left) / (centre - left), (right - m) / (right - centre)
    weights = np.where((m > left) & (m < right), np.where(m <= centre, rising, falling), f32(0.0))
    out = np.ascontiguousarray(weights, dtype=np.float64)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=8)
def _povey_window(win: int) -> np.ndarray:
    """Kaldi's "povey" window, ``(0.5 - 0.5 cos(2 pi i / (win - 1))) ** 0.85``, float64, read-only."""
    i = np.arange(win, dtype=np.float64)
    out: np.ndarray = np.power(0.5 - 0.5 * np.cos(2.0 * np.pi / (win - 1) * i), 0.85)
    out.setflags(write=False)
    return out


def _n_frames(config: FeatureConfig) -> int:
    win, hop, _ = window_sizes(config.sr)
    return 1 + (config.segment_samples - win) // hop


def check(config: FeatureConfig) -> None:
    """Raise :class:`ConfigError` for a sampling rate or segment length Kaldi's framing cannot use."""
    if config.sr < _MIN_SR:
        raise ConfigError(f"Expected sr >= {_MIN_SR} for the fbank family (80 Kaldi mel bins of a 25 ms frame), got sr {config.sr}")
    win = window_sizes(config.sr)[0]
    if config.segment_samples < win:
        raise ConfigError(f"Expected segments of at least one 25 ms frame ({win} samples) for the fbank family, "
                          f"got {config.segment_samples} samples ({config.segment_seconds} s)")


def _live(y: np.ndarray, win: int, hop: int, n_frames: int) -> np.ndarray:
    """Frames of each segment that see a nonzero sample (the rest are zero spectra)."""
    nonzero = y != 0
    end = np.where(nonzero.any(axis=1), y.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)
    live: np.ndarray = np.minimum(n_frames, -(-end // hop)).astype(np.int64)
    return live


def fbank(*, y: np.ndarray, sr: int) -> np.ndarray:
    """Kaldi's 80-bin log-mel filterbank of each segment (``snip_edges``, no dither).

    Parameters
    ----------
    y : np.ndarray [shape=(n, samples)]
        Segments; any real dtype (cast to float32), at least one frame long.
    sr : int >= 8000 [scalar]
        Their sampling rate.

    Returns
    -------
    fbank : np.ndarray [shape=(n, frames, 80), dtype=float32]
        ``frames = 1 + (samples - win) // hop`` (:func:`window_sizes`); natural log of the mel
        energies, ``log(LOG_FLOOR)`` where an energy is below ``LOG_FLOOR`` (all of a frame
        without audio).

    Raises
    ------
    InputError
        ``y`` is not a non-empty 2-D array of real numbers.
    ConfigError
        ``sr`` is not an integer >= 8000, or the segments are shorter than one frame.
    """
    from ..kernel_checks import check_batch, check_positive_int

    y = check_batch(y)
    check_positive_int(sr, name="sr")
    if sr < _MIN_SR:
        raise ConfigError(f"Expected sr >= {_MIN_SR}, got {sr}")
    win, hop, n_fft = window_sizes(sr)
    if y.shape[1] < win:
        raise ConfigError(f"Expected segments of at least {win} samples (one 25 ms frame), got {y.shape[1]}")
    n_frames = 1 + (y.shape[1] - win) // hop
    return _fbank(y, win, hop, n_fft, n_frames, kaldi_mel_banks(sr))


def _fbank(y: np.ndarray, win: int, hop: int, n_fft: int, n_frames: int, basis: np.ndarray) -> np.ndarray:
    """:func:`fbank` of a checked float32 batch."""
    from numpy.lib.stride_tricks import sliding_window_view

    out = np.full((y.shape[0], n_frames, N_BINS), _SILENT, dtype=np.float32)
    window = _povey_window(win)
    n_bins = n_fft // 2
    frames = sliding_window_view(y, win, axis=-1)[:, ::hop]
    for i, live in enumerate(_live(y, win, hop, n_frames).tolist()):
        # one segment at a time, in blocks fixed by the segment alone: its bits never depend on the batch
        for start in range(0, live, _BLOCK_FRAMES):
            rows = slice(start, min(start + _BLOCK_FRAMES, live))
            x = frames[i, rows].astype(np.float64)
            x -= x.mean(axis=1, keepdims=True)
            x[:, 1:] -= _PREEMPH * x[:, :-1]  # the right side is a copy: the old samples, as Kaldi's backward loop
            x[:, 0] *= 1.0 - _PREEMPH
            x *= window
            spectrum = np.fft.rfft(x, n=n_fft, axis=-1)[:, :n_bins]
            power = np.square(spectrum.real) + np.square(spectrum.imag)
            energies = power @ basis
            out[i, rows] = np.log(np.maximum(energies, LOG_FLOOR))
    return out


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    win, hop, n_fft = window_sizes(config.sr)
    return {"fbank": _fbank(inputs.waveform, win, hop, n_fft, _n_frames(config), kaldi_mel_banks(config.sr))}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    import importlib

    knf: Any = importlib.import_module("kaldi_native_fbank")  # untyped, a test need
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = float(config.sr)
    opts.mel_opts.num_bins = N_BINS
    online = knf.OnlineFbank(opts)
    online.accept_waveform(float(config.sr), np.asarray(y, dtype=np.float32).tolist())
    online.input_finished()
    frames = [np.asarray(online.get_frame(t), dtype=np.float32) for t in range(online.num_frames_ready)]
    return {"fbank": np.stack(frames) if frames else np.zeros((0, N_BINS), dtype=np.float32)}


def _centres(config: FeatureConfig) -> np.ndarray:
    """Each bin's centre frequency (Hz): the inverse mel of its peak."""
    low, high = (1127.0 * np.log1p(f / 700.0) for f in (_LOW_FREQ, config.sr / 2.0))
    mels = low + np.arange(1, N_BINS + 1) * (high - low) / (N_BINS + 1)
    out: np.ndarray = 700.0 * np.expm1(mels / 1127.0)
    return out


FBANK_BIN = Axis("fbank_bin", lambda c: N_BINS, "Kaldi mel bin centre", "Hz", values=_centres,
                 coord_name="fbank_frequency")

FRAMING = Framing(
    dim="fbank_frame",
    hop=lambda c: window_sizes(c.sr)[1],
    n_frames=_n_frames,
    first_centre=lambda c: window_sizes(c.sr)[0] // 2,
    description="Kaldi frames: 25 ms windows every 10 ms wholly inside the segment (snip_edges)",
)

FAMILY = register(Family(
    name="fbank", version="1",
    variables=(Variable("fbank", "Kaldi log-mel filterbank, 80 bins, povey window, preemphasis 0.97, no dither",
                        "log energy", FBANK_BIN, tolerance="db"),),
    compute=compute, reference_fn=reference, consumes=("waveform",), framing=FRAMING, check=check,
    reference="kaldi_native_fbank.OnlineFbank(FbankOptions(), dither=0, samp_freq=sr, num_bins=80) of the float samples",
    origin={"module": __name__},
))
