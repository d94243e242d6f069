"""The tutorial's figures for one audio file or one store segment: waveform to features.

"Audio data analysis with deep learning" walks through loading a clip, its waveform, its
spectrogram (linear and log frequency), and then the features this pipeline stores: mel
spectrogram, MFCC, chroma, spectral centroid/rolloff/bandwidth and zero crossings.
:func:`plot` draws each of those figures, one file per kind:

* from an **audio file**, decoded with the pipeline's own decoder (as ``librosa.load``) and
  featurised by the pipeline's kernels (:func:`pipeline.features.compute_features`) with one
  segment covering the whole file, or its first :data:`MAX_SECONDS` seconds;
* from a **store segment**, drawing the stored arrays (only the segment's valid frames) with the
  store's config; the waveform, the spectrogram and the overlays that need samples come from
  re-decoding the segment's range of the original file.

Matplotlib is imported only when a figure is drawn, and only its object-oriented API with the
Agg canvas is used (no pyplot state, no global backend switch).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import FeatureConfig
from .errors import ConfigError, DecodeError, InputError, SchemaError, StorageError, one_line
from .features import compute_features, stft
from .io import decode_range, fingerprint, probe_file, resampled_length
from .store import as_text, open_store, store_config

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DEFAULT_SR", "EXTENSIONS", "KINDS", "MAX_SECONDS", "output_paths", "plot"]

#: Figure kinds, in the tutorial's order.
KINDS: tuple[str, ...] = ("waveform", "spectrogram", "mel", "mfcc", "chroma", "spectral", "zcr")
#: Output formats (by file extension).
EXTENSIONS: tuple[str, ...] = (".png", ".svg")
#: Sample rate an audio file is decoded at when ``sr`` is not given.
DEFAULT_SR = 22050
#: Audio files longer than this are drawn from their first ``MAX_SECONDS`` seconds.
MAX_SECONDS = 30.0

#: Kinds drawn from audio samples (re-decoded for a store segment).
_AUDIO_KINDS: frozenset[str] = frozenset({"waveform", "spectrogram", "spectral", "zcr"})
#: Feature family each kind needs from the pipeline (``None``: samples only).
_FAMILY: dict[str, str | None] = {
    "waveform": "rms", "spectrogram": None, "mel": "mel", "mfcc": "mfcc", "chroma": "chroma",
    "spectral": "spectral", "zcr": "zcr",
}
#: Stored variables each kind draws; the first of each tuple is required, the rest optional.
_STORED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "waveform": ((), ("rms",)),
    "spectrogram": ((), ()),
    "mel": (("mel",), ()),
    "mfcc": (("mfcc",), ()),
    "chroma": (("chroma",), ()),
    "spectral": (("spectral_centroid", "spectral_rolloff", "spectral_bandwidth"), ()),
    "zcr": (("zero_crossing_rate",), ()),
}
_ZOOM_SAMPLES = 100
_DPI = 100
_DISPLAY_RANGE_DB = 80.0
_DASH = "\u2013"  # en dash, for ranges in titles and legends


@dataclass(frozen=True)
class _Clip:
    """What a figure draws: frame-level features (valid frames only) and, if needed, samples."""

    title: str
    config: FeatureConfig
    start: float  # seconds from the file's start of the first sample/frame
    frames: Mapping[str, np.ndarray]  # (valid_frames[, bins])
    n_frames: int
    n_samples: int  # real samples (the rest of a store segment is zero padding)
    y: np.ndarray | None  # the real samples, float32 (None when no kind draws samples)

    @property
    def sr(self) -> int:
        return self.config.sr

    @property
    def hop(self) -> int:
        return self.config.hop_length

    def times(self) -> np.ndarray:
        """Frame centres in seconds from the file's start."""
        return self.start + np.arange(self.n_frames) * (self.hop / self.sr)

    def samples(self) -> np.ndarray:
        if self.y is None:  # _load guarantees samples for the kinds that draw them
            raise InputError(f"Expected audio samples for {self.title}, got none")
        return self.y

    @property
    def end(self) -> float:
        return self.start + self.n_samples / self.sr


# -- arguments ---------------------------------------------------------------------------------
def _kinds(kinds: Sequence[str] | str) -> list[str]:
    items = [kinds] if isinstance(kinds, str) else list(kinds)
    if not items:
        raise InputError(f"Expected at least one figure kind out of {', '.join(KINDS)}, got none")
    unknown = [k for k in items if not isinstance(k, str) or k not in KINDS]
    if unknown:
        raise InputError(
            f"Expected figure kinds out of {', '.join(KINDS)}, got {', '.join(repr(u) for u in unknown)}"
        )
    return list(dict.fromkeys(items))


def output_paths(out: str | os.PathLike[str], kinds: Sequence[str] | str) -> dict[str, str]:
    """The file each kind is written to.

    Parameters
    ----------
    out : str or path-like
        A path ending in ``.png`` or ``.svg``.
    kinds : sequence of str
        Figure kinds out of :data:`KINDS` (duplicates are dropped).

    Returns
    -------
    dict of str to str
        ``out`` itself for a single kind; ``<stem>_<kind><ext>`` next to it for several.

    Raises
    ------
    InputError
        Another extension, or an unknown kind.
    """
    names = _kinds(kinds)
    target = os.fspath(out)
    stem, ext = os.path.splitext(target)
    if ext.lower() not in EXTENSIONS or not os.path.basename(stem):
        raise InputError(f"Expected an output path ending in {' or '.join(EXTENSIONS)}, got {target!r}")
    if len(names) == 1:
        return {names[0]: target}
    return {kind: f"{stem}_{kind}{ext}" for kind in names}


def _check_sr(sr: int | None) -> int:
    value = DEFAULT_SR if sr is None else sr
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise InputError(f"Expected sr to be a positive integer, got {sr!r}")
    return int(value)


# -- loading -----------------------------------------------------------------------------------
def _features(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """The pipeline's kernels on one zero-padded segment, valid frames only."""
    batch = np.zeros((1, config.segment_samples), dtype=np.float32)
    batch[0, : y.size] = y
    valid = config.valid_frames(y.size)
    return {name: values[0, :valid] for name, values in compute_features(batch, config).items()}


def _from_audio(source: str, kinds: list[str], sr: int, storage_options: Mapping[str, Any] | None) -> _Clip:
    info = probe_file(source, storage_options)
    if info.error:
        raise InputError(f"Expected a readable audio file (or a store with a segment), got {source}: {info.error}")
    total = resampled_length(info.frames, info.sample_rate, sr)
    stop = min(total, int(MAX_SECONDS * sr))
    try:
        y = decode_range(source, sr=sr, native_sr=info.sample_rate, declared_frames=info.frames,
                         stop=stop, storage_options=storage_options).y
    except (DecodeError, StorageError) as exc:
        raise InputError(f"Expected decodable audio, got {source}: {exc}") from exc
    if y.size == 0:
        raise InputError(f"Expected audio samples in {source}, got none")
    families = tuple(dict.fromkeys(f for k in kinds if (f := _FAMILY[k]) is not None))
    # one segment covering the clip (at least one FFT window, zero-padded like a store segment)
    samples = max(y.size, FeatureConfig().n_fft)
    try:
        config = FeatureConfig(sr=sr, segment_seconds=samples / sr, features=families or ("rms",))
    except ConfigError as exc:
        raise InputError(f"Expected a sample rate the default feature config accepts, got sr={sr}: {exc}") from exc
    frames = _features(y, config) if families else {}
    name = os.path.basename(source.rstrip("/")) or source
    title = name if stop == total else f"{name} (first {MAX_SECONDS:g} s of {total / sr:.1f} s)"
    return _Clip(title=title, config=config, start=0.0, frames=frames,
                 n_frames=config.valid_frames(y.size), n_samples=int(y.size), y=y)


def _decode_segment(path: str, start: int, config: FeatureConfig, storage_options: Mapping[str, Any] | None,
                    what: str) -> np.ndarray:
    info = probe_file(path, storage_options)
    if info.error:
        raise InputError(f"Expected the segment's audio file to be readable for {what}, got {path}: {info.error}")
    total = resampled_length(info.frames, info.sample_rate, config.sr)
    stop = min(total, start + config.segment_samples)
    if start >= stop:
        raise InputError(f"Expected {path} to hold audio at {start / config.sr:.2f} s for {what}, got a file of {total / config.sr:.2f} s")
    try:
        decoded = decode_range(path, sr=config.sr, native_sr=info.sample_rate, declared_frames=info.frames,
                               start=start, stop=stop, storage_options=storage_options)
    except (DecodeError, StorageError) as exc:
        raise InputError(f"Expected the segment's audio file to decode for {what}, got {path}: {exc}") from exc
    return decoded.y


def _from_store(source: str, segment: int, kinds: list[str], storage_options: Mapping[str, Any] | None) -> _Clip:
    if isinstance(segment, bool) or not isinstance(segment, int | np.integer):
        raise InputError(f"Expected segment to be an integer store index, got {segment!r}")
    try:
        ds = open_store(source, storage_options)
    except SchemaError as exc:
        raise InputError(f"Expected a feature store at {source} (a segment was given), got: {exc}") from exc
    where = np.flatnonzero(np.asarray(ds["segment"].values) == int(segment))
    if where.size == 0:
        raise InputError(f"Expected a visible segment of {source} (the segment index of query), got {segment}")
    pos = int(where[0])
    config = store_config(ds.attrs)
    present = set(map(str, ds.data_vars))
    names: list[str] = []
    for kind in kinds:
        required, optional = _STORED[kind]
        missing = [name for name in required if name not in present]
        if missing:
            raise InputError(
                f"Expected {', '.join(missing)} in the store for the {kind} figure, got features {', '.join(config.features)}"
            )
        names += [name for name in (*required, *optional) if name in present]
    row = ds.isel(segment=pos)
    valid = int(row["segment_valid_frames"].values)
    loaded = row[list(dict.fromkeys(names))].compute() if names else None
    frames = {name: np.asarray(loaded[name].values)[:valid] for name in names} if loaded is not None else {}
    f = int(row["segment_file"].values)
    path = str(as_text(ds["file_path"])[f])
    offset = float(row["segment_offset"].values)
    label = str(as_text(ds["label"])[pos])
    start = round(offset * config.sr)
    y: np.ndarray | None = None
    note = ""
    needs_audio = [kind for kind in kinds if kind in _AUDIO_KINDS]
    if needs_audio:
        what = f"the {', '.join(needs_audio)} figure{'s' if len(needs_audio) > 1 else ''}"
        y = _decode_segment(path, start, config, storage_options, what)
        stored = str(as_text(ds["file_fingerprint"])[f])
        if stored and fingerprint(path, storage_options) != stored:
            note = " (file changed since extraction)"
        y = y[: config.segment_samples]
    if y is not None:
        n_samples = int(y.size)
    else:  # the file's length as extracted (the header facts the store keeps)
        total = resampled_length(int(ds["file_frames"].values[f]), int(ds["file_sample_rate"].values[f]), config.sr)
        n_samples = max(1, min(config.segment_samples, total - start))
    name = os.path.basename(path.rstrip("/")) or path
    title = f"{name} [{label}], segment {int(segment)}: {start / config.sr:.2f}{_DASH}{(start + n_samples) / config.sr:.2f} s{note}"
    return _Clip(title=title, config=config, start=start / config.sr, frames=frames, n_frames=valid,
                 n_samples=int(n_samples), y=y)


# -- drawing -----------------------------------------------------------------------------------
def _display() -> Any:
    if importlib.util.find_spec("matplotlib") is None:
        raise InputError("Expected matplotlib to draw figures, got it not installed: pip install matplotlib")
    import librosa.display

    return librosa.display


def _new_figure(height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


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
    return f"{finite.min():,.0f}{_DASH}{finite.max():,.0f} Hz"


def _time_axis(ax: Any, clip: _Clip) -> None:
    """Seconds from the file's start on a plain decimal axis (librosa's time ticks replaced)."""
    from matplotlib.ticker import AutoLocator, ScalarFormatter

    ax.xaxis.set_major_locator(AutoLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    ax.set_xlim(clip.start, clip.end)
    ax.set_xlabel("time (s)")


def _along_frames(clip: _Clip, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame centres and ``values`` (frames on the last axis) ready to draw.

    A single frame is stretched over the whole clip (two equal columns at its start and end),
    so that a clip shorter than one hop still shows its one frame.
    """
    values = np.asarray(values)
    if values.shape[-1] == 1:
        return np.array([clip.start, clip.end]), np.repeat(values, 2, axis=-1)
    return clip.times(), values


def _mpl_text(text: str) -> str:
    """Text from files or stores as matplotlib shows it literally: ``$`` never starts mathtext,
    and a leading ``_`` does not hide a legend entry."""
    text = text.replace("$", r"\$")
    return f" {text}" if text.startswith("_") else text


def _legend(ax: Any) -> None:
    """A legend outside the axes, on the right, so it never hides data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize="small")


def _waveshow(ax: Any, clip: _Clip, y: np.ndarray, **kwargs: Any) -> None:
    """librosa's adaptive waveform: an envelope of at most 4,000 points (samples when shorter);
    rasterized so that an SVG stays small."""
    _display().waveshow(y, sr=clip.sr, offset=clip.start, axis="s", ax=ax, max_points=4000,
                        rasterized=True, **kwargs)


def _magnitude(clip: _Clip) -> np.ndarray:
    """|STFT| of the clip's samples (the pipeline's STFT), ``(freq, frames)``."""
    y = clip.samples()
    cfg = clip.config
    padded = y if y.size >= cfg.n_fft else np.pad(y, (0, cfg.n_fft - y.size))
    mag = np.abs(stft(y=padded[None, :], n_fft=cfg.n_fft, hop_length=cfg.hop_length)[0]).T
    return np.asarray(mag[:, : clip.n_frames], dtype=np.float32)


def _draw_waveform(fig: Figure, clip: _Clip) -> None:
    ax = fig.subplots()
    _waveshow(ax, clip, clip.samples(), color="tab:blue", label="amplitude envelope")
    if "rms" in clip.frames:
        ax.plot(*_along_frames(clip, clip.frames["rms"]), color="tab:orange", linewidth=1.5,
                label=f"RMS (frame {clip.config.n_fft}, hop {clip.hop})")
    ax.axhline(0.0, color="0.5", linewidth=0.5)
    ax.set_ylabel("amplitude")
    ax.set_title("waveform")
    _legend(ax)
    _time_axis(ax, clip)


def _draw_spectrogram(fig: Figure, clip: _Clip) -> None:
    import librosa

    display = _display()
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


def _draw_mel(fig: Figure, clip: _Clip) -> None:
    display = _display()
    times, mel = _along_frames(clip, clip.frames["mel"].T)
    peak = float(np.max(mel)) if mel.size else 0.0
    ax = fig.subplots()
    cfg = clip.config
    image = display.specshow(mel, x_coords=times, x_axis="s", y_axis="mel", sr=clip.sr,
                             hop_length=clip.hop, fmin=cfg.fmin, fmax=cfg.fmax, ax=ax, cmap="magma",
                             vmin=peak - _DISPLAY_RANGE_DB, vmax=peak)
    ax.set_ylabel("frequency (Hz, mel scale)")
    ax.set_title(f"mel spectrogram ({cfg.n_mels} bands, {cfg.fmin:g}{_DASH}{cfg.fmax:g} Hz; top {_DISPLAY_RANGE_DB:g} dB shown)")
    _time_axis(ax, clip)
    fig.colorbar(image, ax=ax, format="%+2.0f dB", label="power (dB re 1.0)")


def _draw_mfcc(fig: Figure, clip: _Clip) -> None:
    display = _display()
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
    bottom.set_title(f"MFCC 1{_DASH}{mfcc.shape[0] - 1} over time")
    _time_axis(bottom, clip)


def _draw_chroma(fig: Figure, clip: _Clip) -> None:
    display = _display()
    ax = fig.subplots()
    times, chroma = _along_frames(clip, clip.frames["chroma"].T)
    image = display.specshow(chroma, x_coords=times, x_axis="s", y_axis="chroma",
                             ax=ax, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_ylabel("pitch class")
    ax.set_title("chromagram (STFT chroma, each frame scaled to its maximum)")
    _time_axis(ax, clip)
    fig.colorbar(image, ax=ax, label="relative energy")


def _draw_spectral(fig: Figure, clip: _Clip) -> None:
    import librosa

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
        _legend(ax)
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


def _draw_zcr(fig: Figure, clip: _Clip) -> None:
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
    _legend(zoom)
    zcr = clip.frames["zero_crossing_rate"]
    curve.plot(*_along_frames(clip, zcr), color="tab:purple", label=f"zero-crossing rate (mean {float(np.mean(zcr)):.3f})")
    curve.axvspan(clip.start + lo / clip.sr, clip.start + hi / clip.sr, color="tab:red", alpha=0.25,
                  label="zoomed window")
    curve.set_ylabel("crossings per sample")
    curve.set_title(f"zero-crossing rate (frames of {clip.config.n_fft} samples, hop {clip.hop})")
    curve.set_ylim(bottom=0.0)
    _legend(curve)
    _time_axis(curve, clip)


_DRAW: dict[str, tuple[Callable[[Figure, _Clip], None], float]] = {
    "waveform": (_draw_waveform, 3.5),
    "spectrogram": (_draw_spectrogram, 7.0),
    "mel": (_draw_mel, 4.5),
    "mfcc": (_draw_mfcc, 5.5),
    "chroma": (_draw_chroma, 4.0),
    "spectral": (_draw_spectral, 8.0),
    "zcr": (_draw_zcr, 6.5),
}


def plot(
    source: str,
    *,
    kinds: Sequence[str],
    out: str,
    segment: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
    sr: int | None = None,
) -> list[str]:
    """Draw the tutorial's figures of an audio file or of one store segment.

    Parameters
    ----------
    source : str
        An audio file (local path or fsspec URL); or, when ``segment`` is given, a feature store.
    kinds : sequence of str
        Figures to draw, out of :data:`KINDS`: ``waveform`` (amplitude envelope and RMS),
        ``spectrogram`` (linear and log frequency axes), ``mel``, ``mfcc``, ``chroma``,
        ``spectral`` (centroid, rolloff and bandwidth for p = 2, 3, 4 over the waveform) and
        ``zcr`` (zero crossings in a 100-sample window and the zero-crossing-rate curve).
    out : str
        Output path ending in ``.png`` or ``.svg``: written as is for one kind; with several
        kinds each goes to ``<stem>_<kind><ext>`` next to it (:func:`output_paths`).
    segment : int, optional
        A visible segment of the store ``source``, by its store index (the ``segment``
        coordinate of :func:`pipeline.store.open_store`).
    storage_options : mapping, optional
        fsspec options for ``source`` and, for a store, for the segment's audio file.
    sr : int, optional
        Sample rate to decode an audio file at (default 22050); a store segment always uses
        the store's config. Only the first :data:`MAX_SECONDS` seconds of a file are drawn.

    Returns
    -------
    list of str
        The written paths, in the order of ``kinds``.

    Raises
    ------
    InputError
        Unknown kind, bad extension, unreadable audio, a segment that is not visible, a store
        without the variables a kind needs, or (for the kinds drawn from samples) a segment
        whose audio file can no longer be read.
    """
    paths = output_paths(out, kinds)
    names = list(paths)
    for path in paths.values():
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise InputError(f"Expected an existing directory for the figures, got {folder}")
    if not isinstance(source, str | os.PathLike) or not os.fspath(source):
        raise InputError(f"Expected an audio file or store path, got {source!r}")
    source = os.fspath(source)
    _display()  # matplotlib is there, before any decoding
    if segment is None:
        clip = _from_audio(source, names, _check_sr(sr), storage_options)
    else:
        if sr is not None:
            _check_sr(sr)
        clip = _from_store(source, segment, names, storage_options)
    written: list[str] = []
    for kind, path in paths.items():
        draw, height = _DRAW[kind]
        fig = _new_figure(height)
        draw(fig, clip)
        fig.suptitle(_mpl_text(clip.title), fontsize="large")
        try:
            fig.savefig(path, format=os.path.splitext(path)[1].lower()[1:], dpi=_DPI)
        except OSError as exc:
            raise StorageError(f"Cannot write {path}: {one_line(exc)}") from exc
        written.append(path)
    return written
