"""The tutorial's figures for one audio file or one store segment: waveform to features.

"Audio data analysis with deep learning" walks through loading a clip, its waveform, its
spectrogram (linear and log frequency), and then the features this pipeline stores: mel
spectrogram, MFCC, chroma, spectral centroid/rolloff/bandwidth and zero crossings.
:func:`plot` draws each of those figures, one file per kind:

* from an **audio file**, decoded and featurised by :func:`pipeline.featurize.featurize_file`
  (the code a chunk task runs) with one segment covering the whole file, or its first
  :data:`MAX_SECONDS` seconds;
* from a **store segment**, drawing the stored arrays (only the segment's valid frames) with the
  store's config; the waveform, the spectrogram and the overlays that need samples come from
  re-decoding the segment of the original file (:func:`pipeline.featurize.decode_segments`).

This module loads the :class:`~pipeline.draw.Clip`; :mod:`pipeline.draw` draws each kind and
:mod:`pipeline.figures` makes the figures (matplotlib's object-oriented API on an Agg canvas,
imported only when a figure is drawn).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .config import FeatureConfig
from .draw import AUDIO_KINDS, DASH, DRAW, KINDS, Clip, all_kinds, draw_family, family_height
from .errors import ConfigError, DecodeError, InputError, SchemaError, StorageError
from .families import family
from .featurize import decode_segments, featurize_file
from .figures import librosa_display, mpl_text, new_figure, save_figure
from .probe import probe_file
from .schema import resampled_length, segment_starts
from .store import as_text, changed_files, open_store, store_config

__all__ = ["DEFAULT_SR", "EXTENSIONS", "KINDS", "MAX_SECONDS", "output_paths", "plot"]

#: Output formats (by file extension).
EXTENSIONS: tuple[str, ...] = (".png", ".svg")
#: Sample rate an audio file is decoded at when ``sr`` is not given.
DEFAULT_SR = 22050
#: Audio files longer than this are drawn from their first ``MAX_SECONDS`` seconds.
MAX_SECONDS = 30.0

#: Feature family each tutorial kind needs from the pipeline (``None``: samples only); every
#: other kind is a family of its own.
_FAMILY: dict[str, str | None] = {
    "waveform": "rms", "spectrogram": None, **{kind: kind for kind in ("mel", "mfcc", "chroma", "spectral", "zcr")},
}


def _family_of(kind: str) -> str | None:
    return _FAMILY.get(kind, kind)


def _stored(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Stored variables a kind draws: those it needs, and those it overlays when there (RMS)."""
    name = _family_of(kind)
    if name is None:
        return (), ()
    if kind == "waveform":
        return (), family(name).variable_names
    return family(name).variable_names, ()


# -- arguments ---------------------------------------------------------------------------------
def _kinds(kinds: Sequence[str] | str) -> list[str]:
    items = [kinds] if isinstance(kinds, str) else list(kinds)
    if not items:
        raise InputError(f"Expected at least one figure kind out of {', '.join(all_kinds())}, got none")
    kinds_known = all_kinds()
    unknown = [k for k in items if not isinstance(k, str) or k not in kinds_known]
    if unknown:
        raise InputError(
            f"Expected figure kinds out of {', '.join(kinds_known)}, got {', '.join(repr(u) for u in unknown)}"
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
def _from_audio(source: str, kinds: list[str], sr: int, storage_options: Mapping[str, Any] | None) -> Clip:
    """An audio file's first :data:`MAX_SECONDS` seconds as one segment, featurised as a chunk would."""
    info = probe_file(source, storage_options)
    if info.error:
        raise InputError(f"Expected a readable audio file (or a store with a segment), got {source}: {info.error}")
    total = resampled_length(info.frames, info.sample_rate, sr)
    stop = min(total, int(MAX_SECONDS * sr))
    if stop <= 0:
        raise InputError(f"Expected audio samples in {source}, got none")
    families = tuple(dict.fromkeys(f for k in kinds if (f := _family_of(k)) is not None))
    # one segment covering the clip (at least one FFT window, zero-padded like a store segment)
    samples = max(stop, FeatureConfig().n_fft)
    try:
        config = FeatureConfig(sr=sr, segment_seconds=samples / sr, features=families or ("rms",))
    except ConfigError as exc:
        raise InputError(f"Expected a sample rate the default feature config accepts, got sr={sr}: {exc}") from exc
    try:
        result = featurize_file(source, config, segments=range(1), storage_options=storage_options, info=info,
                                keep_audio=True)
    except (DecodeError, StorageError) as exc:
        raise InputError(f"Expected decodable audio, got {source}: {exc}") from exc
    if result.audio is None or not result.valid[0]:
        raise InputError(f"Expected audio samples in {source}, got none")
    valid = int(result.valid_frames[0])
    frames = _valid(result.arrays, config, stop) if families else {}
    name = os.path.basename(source.rstrip("/")) or source
    title = name if stop == total else f"{name} (first {MAX_SECONDS:g} s of {total / sr:.1f} s)"
    return Clip(title=title, config=config, start=0.0, frames=frames, n_frames=valid, n_samples=stop,
                y=result.audio[0, :stop])


def _valid(arrays: Mapping[str, np.ndarray], config: FeatureConfig, n_samples: int) -> dict[str, np.ndarray]:
    """Each variable of ``arrays`` (first segment) over its family's frames holding the first
    ``n_samples`` real samples; per-segment variables as they are."""
    out: dict[str, np.ndarray] = {}
    for name in config.features:
        fam = family(name)
        valid = int(fam.framing.valid_frames(config, np.array([n_samples]))[0])
        for var in fam.variables:
            if var.name in arrays:
                out[var.name] = arrays[var.name][0, :valid] if var.per_frame else arrays[var.name][0]
    return out


def _decode_segment(path: str, start: int, config: FeatureConfig, storage_options: Mapping[str, Any] | None,
                    what: str) -> np.ndarray:
    """The real samples of the file's segment that starts at sample ``start``, re-decoded."""
    info = probe_file(path, storage_options)
    if info.error:
        raise InputError(f"Expected the segment's audio file to be readable for {what}, got {path}: {info.error}")
    total = resampled_length(info.frames, info.sample_rate, config.sr)
    where = np.flatnonzero(segment_starts(total, config) == start)
    out = np.zeros((1, config.segment_samples), dtype=np.float32)
    try:
        decoded = None if where.size == 0 else decode_segments(
            path, config, sample_rate=info.sample_rate, frames=info.frames, segments=range(int(where[0]), int(where[0]) + 1),
            out=out, storage_options=storage_options)
    except (DecodeError, OSError) as exc:  # StorageError is an OSError
        raise InputError(f"Expected the segment's audio file to decode for {what}, got {path}: {exc}") from exc
    if decoded is None or not decoded.rows:
        raise InputError(f"Expected {path} to hold audio at {start / config.sr:.2f} s for {what}, got a file of {total / config.sr:.2f} s")
    return out[0, : round(decoded.audio_seconds * config.sr)]


def _from_store(source: str, segment: int, kinds: list[str], storage_options: Mapping[str, Any] | None) -> Clip:
    """A visible store segment: its stored frames and, for the kinds that need them, its samples."""
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
        required, optional = _stored(kind)
        missing = [name for name in required if name not in present]
        if missing:
            raise InputError(
                f"Expected {', '.join(missing)} in the store for the {kind} figure, got features {', '.join(config.features)}"
            )
        names += [name for name in (*required, *optional) if name in present]
    row = ds.isel(segment=pos)
    valid = int(row["segment_valid_frames"].values)
    loaded = row[list(dict.fromkeys(names))].compute() if names else None
    f = int(row["segment_file"].values)
    path = str(as_text(ds["file_path"])[f])
    offset = float(row["segment_offset"].values)
    label = str(as_text(ds["label"])[pos])
    start = round(offset * config.sr)
    y: np.ndarray | None = None
    note = ""
    needs_audio = [kind for kind in kinds if kind in AUDIO_KINDS]
    if needs_audio:
        what = f"the {', '.join(needs_audio)} figure{'s' if len(needs_audio) > 1 else ''}"
        y = _decode_segment(path, start, config, storage_options, what)
        if changed_files(ds, storage_options, only=[path]):
            note = " (file changed since extraction)"
    if y is not None:
        n_samples = int(y.size)
    else:  # the file's length as extracted (the header facts the store keeps)
        total = resampled_length(int(ds["file_frames"].values[f]), int(ds["file_sample_rate"].values[f]), config.sr)
        n_samples = max(1, min(config.segment_samples, total - start))
    arrays = {name: np.asarray(loaded[name].values)[None] for name in names} if loaded is not None else {}
    frames = _valid(arrays, config, int(n_samples))
    name = os.path.basename(path.rstrip("/")) or path
    title = f"{name} [{label}], segment {int(segment)}: {start / config.sr:.2f}{DASH}{(start + n_samples) / config.sr:.2f} s{note}"
    return Clip(title=title, config=config, start=start / config.sr, frames=frames, n_frames=valid,
                n_samples=int(n_samples), y=y)


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
        ``zcr`` (zero crossings in a 100-sample window and the zero-crossing-rate curve); and
        one kind per other feature family (``contrast``, ``onset``, ``fbank``..., a plugin's):
        its variables over time (:func:`pipeline.draw.all_kinds` lists them).
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
    librosa_display()  # matplotlib is there, before any decoding
    if segment is None:
        clip = _from_audio(source, names, _check_sr(sr), storage_options)
    else:
        if sr is not None:
            _check_sr(sr)
        clip = _from_store(source, segment, names, storage_options)
    written: list[str] = []
    for kind, path in paths.items():
        if kind in DRAW:
            draw, height = DRAW[kind]
            fig = new_figure(10.0, height)
            draw(fig, clip)
        else:
            fam = family(kind)
            fig = new_figure(10.0, family_height(fam))
            draw_family(fig, clip, fam)
        fig.suptitle(mpl_text(clip.title), fontsize="large")
        save_figure(fig, path)
        written.append(path)
    return written
