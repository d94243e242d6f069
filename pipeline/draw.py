"""Drawing the tutorial's figures: one function per kind, each on a figure, from a :class:`Clip`.

A :class:`Clip` holds what a figure draws: the frame-level features of the valid frames and,
for the kinds that need them, the audio samples. :data:`DRAW` maps each kind of
:data:`KINDS` to its drawing function and the figure's height. Where the clip comes from (an
audio file, a store segment) is :mod:`pipeline.plot`'s business; the figure itself is made by
:mod:`pipeline.figures`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import FeatureConfig
from .errors import InputError
from .families import Family, all_families
from .families.builtin import TUTORIAL
from .figures import legend_outside, librosa_display
from .spectrum import stft

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["AUDIO_KINDS", "DASH", "DRAW", "KINDS", "TUTORIAL_FAMILIES", "Clip", "all_kinds", "draw_family"]

#: The tutorial's figure kinds, in its order; each has its own drawing in :data:`DRAW`.
KINDS: tuple[str, ...] = ("waveform", "spectrogram", "mel", "mfcc", "chroma", "spectral", "zcr")
#: The families the tutorial's kinds draw (``rms`` over the waveform); every other family that
#: declares a figure is a kind of its own, drawn by :func:`draw_family`.
TUTORIAL_FAMILIES: frozenset[str] = frozenset(TUTORIAL)
#: Kinds drawn from audio samples (re-decoded for a store segment).
AUDIO_KINDS: frozenset[str] = frozenset({"waveform", "spectrogram", "spectral", "zcr"})
_ZOOM_SAMPLES = 100
_DISPLAY_RANGE_DB = 80.0
DASH = "\u2013"  # en dash, for ranges in titles and legends


@dataclass(frozen=True)
class Clip:
    """What a figure draws: frame-level features (valid frames only) and, if needed, samples.

    Attributes
    ----------
    title : str
        The figure's title (escaped when drawn).
    config : FeatureConfig
        The config the features were computed with (sample rate, hop, FFT size, bands).
    start : float
        Seconds from the file's start of the first sample and frame.
    frames : mapping of str to np.ndarray
        Frame-level variables ``[shape=(valid_frames[, bins])]``.
    n_frames : int
        Valid frames.
    n_samples : int
        Real samples (the rest of a store segment is zero padding).
    y : np.ndarray or None
        The real samples, float32; None when no kind drawn needs them.
    """

    title: str
    config: FeatureConfig
    start: float
    frames: Mapping[str, np.ndarray]
    n_frames: int
    n_samples: int
    y: np.ndarray | None

    @property
    def sr(self) -> int:
        """Sample rate of the samples and features."""
        return self.config.sr

    @property
    def hop(self) -> int:
        """Samples between frames."""
        return self.config.hop_length

    def times(self) -> np.ndarray:
        """Frame centres in seconds from the file's start."""
        return self.start + np.arange(self.n_frames) * (self.hop / self.sr)

    def valid_frames(self, fam: Family) -> int:
        """Frames of ``fam``'s framing that hold the clip's real samples."""
        return int(fam.framing.valid_frames(self.config, np.array([self.n_samples]))[0])

    def samples(self) -> np.ndarray:
        """The real samples; the loaders give them whenever a kind of :data:`AUDIO_KINDS` is drawn."""
        if self.y is None:
            raise InputError(f"Expected audio samples for {self.title}, got none")
        return self.y

    @property
    def end(self) -> float:
        """Seconds from the file's start of the end of the real samples."""
        return self.start + self.n_samples / self.sr


def _minmax(values: np.ndarray) -> np.ndarray:
    """Min-max normalised to [0, 1]; a constant (or empty) curve is all zeros."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or float(np.ptp(finite)) == 0.0:
        return np.zeros_like(values)
    scaled: np.ndarray = (values - finite.min()) / float(np.ptp(finite))
    return scaled


def _hz_range(values: np.ndarray) -> str:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return "no data"
    if finite.min() == finite.max():
        return f"{finite.min():,.0f} Hz"
    return f"{finite.min():,.0f}{DASH}{finite.max():,.0f} Hz"


def _time_axis(ax: Any, clip: Clip) -> None:
    """Seconds from the file's start on a plain decimal axis (librosa's time ticks replaced)."""
    from matplotlib.ticker import AutoLocator, ScalarFormatter

    ax.xaxis.set_major_locator(AutoLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    ax.set_xlim(clip.start, clip.end)
    ax.set_xlabel("time (s)")


def _along_frames(clip: Clip, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame centres and ``values`` (frames on the last axis) ready to draw.

    A single frame is stretched over the whole clip (two equal columns at its start and end),
    so that a clip shorter than one hop still shows its one frame.
    """
    values = np.asarray(values)
    if values.shape[-1] == 1:
        return np.array([clip.start, clip.end]), np.repeat(values, 2, axis=-1)
    return clip.times(), values


def _waveshow(ax: Any, clip: Clip, y: np.ndarray, **kwargs: Any) -> None:
    """librosa's adaptive waveform: an envelope of at most 4,000 points (samples when shorter);
    rasterized so that an SVG stays small."""
    librosa_display().waveshow(y, sr=clip.sr, offset=clip.start, axis="s", ax=ax, max_points=4000,
                        rasterized=True, **kwargs)


def _magnitude(clip: Clip) -> np.ndarray:
    """|STFT| of the clip's samples (the pipeline's STFT), ``(freq, frames)``."""
    y = clip.samples()
    cfg = clip.config
    padded = y if y.size >= cfg.n_fft else np.pad(y, (0, cfg.n_fft - y.size))
    mag = np.abs(stft(y=padded[None, :], n_fft=cfg.n_fft, hop_length=cfg.hop_length)[0]).T
    return np.asarray(mag[:, : clip.n_frames], dtype=np.float32)


def _draw_waveform(fig: Figure, clip: Clip) -> None:
    ax = fig.subplots()
    _waveshow(ax, clip, clip.samples(), color="tab:blue", label="amplitude envelope")
    if "rms" in clip.frames:
        ax.plot(*_along_frames(clip, clip.frames["rms"]), color="tab:orange", linewidth=1.5,
                label=f"RMS (frame {clip.config.n_fft}, hop {clip.hop})")
    ax.axhline(0.0, color="0.5", linewidth=0.5)
    ax.set_ylabel("amplitude")
    ax.set_title("waveform")
    legend_outside(ax)
    _time_axis(ax, clip)


def _draw_spectrogram(fig: Figure, clip: Clip) -> None:
    from ._librosa import librosa

    display = librosa_display()
    times, db = _along_frames(clip, librosa.amplitude_to_db(_magnitude(clip), ref=np.max))
    axes = fig.subplots(2, 1, sharex=True)
    images: list[Any] = []
    for ax, scale in zip(axes, ("linear", "log"), strict=True):
        images.append(display.specshow(db, x_coords=times, x_axis="s", y_axis=scale, sr=clip.sr,
                                       n_fft=clip.config.n_fft, hop_length=clip.hop, ax=ax, cmap="magma"))
        ax.set_ylabel("frequency (Hz)")
        ax.set_title(f"spectrogram, {scale} frequency axis (|STFT|, n_fft {clip.config.n_fft}, hop {clip.hop})")
        _time_axis(ax, clip)
    axes[0].set_xlabel("")
    fig.colorbar(images[-1], ax=list(axes), format="%+2.0f dB", label="dB relative to the peak")


def _draw_mel(fig: Figure, clip: Clip) -> None:
    display = librosa_display()
    times, mel = _along_frames(clip, clip.frames["mel"].T)
    peak = float(np.max(mel)) if mel.size else 0.0
    ax = fig.subplots()
    cfg = clip.config
    image = display.specshow(mel, x_coords=times, x_axis="s", y_axis="mel", sr=clip.sr,
                             hop_length=clip.hop, fmin=cfg.fmin, fmax=cfg.fmax, ax=ax, cmap="magma",
                             vmin=peak - _DISPLAY_RANGE_DB, vmax=peak)
    ax.set_ylabel("frequency (Hz, mel scale)")
    ax.set_title(f"mel spectrogram ({cfg.n_mels} bands, {cfg.fmin:g}{DASH}{cfg.fmax:g} Hz; top {_DISPLAY_RANGE_DB:g} dB shown)")
    _time_axis(ax, clip)
    fig.colorbar(image, ax=ax, format="%+2.0f dB", label="power (dB re 1.0)")


def _draw_mfcc(fig: Figure, clip: Clip) -> None:
    display = librosa_display()
    times, mfcc = _along_frames(clip, clip.frames["mfcc"].T)  # (coef, frames)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 3))
    top.plot(times, mfcc[0], color="tab:blue")
    top.set_ylabel("MFCC 0")
    top.set_title("MFCC 0 (overall log energy)")
    _time_axis(top, clip)
    top.set_xlabel("")
    rest = mfcc[1:]
    if rest.shape[0]:
        limit = float(np.max(np.abs(rest))) or 1.0
        image = display.specshow(rest, x_coords=times, x_axis="s",
                                 y_coords=np.arange(1, mfcc.shape[0]), ax=bottom, cmap="coolwarm",
                                 vmin=-limit, vmax=limit)
        fig.colorbar(image, ax=[top, bottom], label="MFCC value")
        step = max(1, rest.shape[0] // 10)
        bottom.set_yticks(np.arange(1, mfcc.shape[0], step))
    bottom.set_ylabel("MFCC coefficient")
    bottom.set_title(f"MFCC 1{DASH}{mfcc.shape[0] - 1} over time")
    _time_axis(bottom, clip)


def _draw_chroma(fig: Figure, clip: Clip) -> None:
    display = librosa_display()
    ax = fig.subplots()
    times, chroma = _along_frames(clip, clip.frames["chroma"].T)
    image = display.specshow(chroma, x_coords=times, x_axis="s", y_axis="chroma",
                             ax=ax, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_ylabel("pitch class")
    ax.set_title("chromagram (STFT chroma, each frame scaled to its maximum)")
    _time_axis(ax, clip)
    fig.colorbar(image, ax=ax, label="relative energy")


def _draw_spectral(fig: Figure, clip: Clip) -> None:
    from ._librosa import librosa

    y = clip.samples()
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    y_norm = y / peak if peak > 0 else y
    mag = _magnitude(clip)
    cfg = clip.config
    bandwidth = {2: clip.frames["spectral_bandwidth"]}
    for p in (3, 4):
        bandwidth[p] = librosa.feature.spectral_bandwidth(S=mag, sr=clip.sr, n_fft=cfg.n_fft,
                                                          hop_length=cfg.hop_length, p=p)[0]
    panels: list[tuple[str, list[tuple[str, np.ndarray, str]]]] = [
        ("spectral centroid", [("centroid", clip.frames["spectral_centroid"], "tab:red")]),
        ("spectral rolloff (85% of the energy)", [("rolloff", clip.frames["spectral_rolloff"], "tab:green")]),
        ("spectral bandwidth (p = 2, 3, 4)", [(f"p = {p}", bandwidth[p], color)
                                for p, color in ((2, "tab:red"), (3, "tab:green"), (4, "tab:purple"))]),
    ]
    axes = fig.subplots(len(panels), 1, sharex=True)
    for i, (ax, (title, curves)) in enumerate(zip(axes, panels, strict=True)):
        _waveshow(ax, clip, y_norm, color="0.82")
        for name, values, color in curves:
            ax.plot(*_along_frames(clip, _minmax(values)), color=color, linewidth=1.3, label=f"{name} ({_hz_range(values)})")
        ax.set_ylabel("normalised")
        ax.set_ylim(-1.05, 1.05)
        ax.set_title(title if i else f"{title} (curves min-max normalised, over the peak-normalised waveform in grey)")
        legend_outside(ax)
        _time_axis(ax, clip)
        if i < len(panels) - 1:
            ax.set_xlabel("")


def _crossings(y: np.ndarray) -> np.ndarray:
    """Fractional sample positions where the sign changes (librosa's rule: |x| <= 1e-10 is 0)."""
    signs = np.signbit(np.where(np.abs(y) <= 1e-10, np.float32(0.0), y))
    k = np.flatnonzero(signs[1:] != signs[:-1])
    a, b = y[k].astype(np.float64), y[k + 1].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(a != b, a / (a - b), 0.5)
    where: np.ndarray = k + np.clip(frac, 0.0, 1.0)
    return where


def _draw_zcr(fig: Figure, clip: Clip) -> None:
    from matplotlib.ticker import FormatStrFormatter

    y = clip.samples()
    lo = max(0, y.size // 2 - _ZOOM_SAMPLES // 2)
    hi = min(y.size, lo + _ZOOM_SAMPLES)
    window = y[lo:hi]
    t = clip.start + np.arange(lo, hi) / clip.sr
    where = _crossings(window)
    zoom, curve = fig.subplots(2, 1)
    zoom.axhline(0.0, color="0.5", linewidth=0.8)
    zoom.plot(t, window, color="tab:blue", marker=".", markersize=4, linewidth=1, label="samples")
    zoom.plot(clip.start + (lo + where) / clip.sr, np.zeros_like(where), linestyle="none", marker="o",
              markersize=7, markerfacecolor="none", markeredgecolor="tab:red",
              label=f"{where.size} zero crossings")
    if t.size > 1:
        zoom.set_xlim(t[0], t[-1])
    zoom.xaxis.set_major_formatter(FormatStrFormatter("%.4f"))
    zoom.set_xlabel("time (s)")
    zoom.set_ylabel("amplitude")
    zoom.set_title(f"zero crossings: {window.size} samples around {clip.start + (lo + hi) / 2 / clip.sr:.3f} s")
    legend_outside(zoom)
    zcr = clip.frames["zero_crossing_rate"]
    curve.plot(*_along_frames(clip, zcr), color="tab:purple", label=f"zero-crossing rate (mean {float(np.mean(zcr)):.3f})")
    curve.axvspan(clip.start + lo / clip.sr, clip.start + hi / clip.sr, color="tab:red", alpha=0.25,
                  label="zoomed window")
    curve.set_ylabel("crossings per sample")
    curve.set_title(f"zero-crossing rate (frames of {clip.config.n_fft} samples, hop {clip.hop})")
    curve.set_ylim(bottom=0.0)
    legend_outside(curve)
    _time_axis(curve, clip)


def all_kinds() -> tuple[str, ...]:
    """Every figure kind: the tutorial's, then one per other registered family with a figure."""
    return KINDS + tuple(f.name for f in all_families() if f.figure is not None and f.name not in TUTORIAL_FAMILIES)


def family_height(fam: Family) -> float:
    """A family figure's height in inches: 3 per panel."""
    return 1.0 + 3.0 * len(fam.variables)


def draw_family(fig: Figure, clip: Clip, fam: Family) -> None:
    """One panel per variable of ``fam``: an image over time for one with bins, a curve for one
    value per frame; a per-segment value goes into its panel's title (or a panel of its own)."""
    display = librosa_display()
    axes = np.atleast_1d(fig.subplots(len(fam.variables), 1, sharex=True, squeeze=False)[:, 0])
    per_segment = {v.name: clip.frames[v.name] for v in fam.variables if not v.per_frame and v.name in clip.frames}
    hop = fam.framing.hop(clip.config)
    first = fam.framing.first_centre(clip.config)
    for ax, var in zip(axes, fam.variables, strict=True):
        values = np.asarray(clip.frames.get(var.name, np.zeros(0)), dtype=np.float64)
        if not var.per_frame:
            ax.axis("off")
            shown = ", ".join(f"{x:.4g}" for x in np.atleast_1d(values)[:12])
            ax.set_title(f"{var.name}: {shown} {var.units} ({var.description})")
            continue
        times = clip.start + (first + np.arange(values.shape[0]) * hop) / clip.sr
        if var.bins is not None:
            image = display.specshow(values.T, x_coords=times if times.size > 1 else None, x_axis="s", ax=ax,
                                     cmap="magma" if var.tolerance == "db" else "viridis")
            ax.set_ylabel(var.bins.name)
            fig.colorbar(image, ax=ax, label=var.units)
        else:
            ax.plot(times, values, color="tab:blue", label=var.name)
            ax.set_ylabel(var.units)
        extra = "".join(f"; {k} {float(np.ravel(v)[0]):.4g}" for k, v in per_segment.items())
        ax.set_title(f"{var.name} ({var.description}){extra}")
        _time_axis(ax, clip)


#: Each kind's drawing function and its figure's height in inches (the width is 10).
DRAW: dict[str, tuple[Callable[[Figure, Clip], None], float]] = {
    "waveform": (_draw_waveform, 3.5),
    "spectrogram": (_draw_spectrogram, 7.0),
    "mel": (_draw_mel, 4.5),
    "mfcc": (_draw_mfcc, 5.5),
    "chroma": (_draw_chroma, 4.0),
    "spectral": (_draw_spectral, 8.0),
    "zcr": (_draw_zcr, 6.5),
}

