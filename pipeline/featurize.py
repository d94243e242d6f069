"""Featurise one file: decode its segments where the store lays them out, run the kernels.

The one place that turns audio into a segment's features. A chunk task runs its two halves
(:func:`decode_segments` on a prefetch thread, :func:`featurize_rows` on batches of decoded
rows across files); ``similar`` (an outside file) and ``plot`` (a clip, a store segment's
audio) call :func:`featurize_file` or :func:`decode_segments`. A segment's numbers are a
function of its file and the config alone: the same whichever caller, chunk or batch.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .config import FeatureConfig
from .errors import DecodeError, FamilyError, InputError, StorageError, one_line
from .families import family, iter_variables
from .families.inputs import compute
from .features import summarize
from .schema import SUMMARY_STATS, resampled_length, segment_starts
from .settings import setting

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolController

    from .probe import FileInfo
    from .spectrum import Precision

__all__ = [
    "FileFeatures",
    "SegmentAudio",
    "allocate",
    "decode_segments",
    "featurize_file",
    "featurize_rows",
    "segment_count",
]


@dataclass
class SegmentAudio:
    """Segments of one file decoded into zero-padded rows, and what the decode saw.

    ``rows`` index the ``out`` array the segments were decoded into: a segment whose audio
    ended early (a truncated file) has no row and stays invalid.
    """

    rows: list[int] = field(default_factory=list)
    valid_frames: list[int] = field(default_factory=list)
    valid_samples: list[int] = field(default_factory=list)
    audio_seconds: float = 0.0
    warning: str = ""
    decode_seconds: float = 0.0
    resample_seconds: float = 0.0


@dataclass
class FileFeatures:
    """What :func:`featurize_file` returns for ``n`` segments of one file.

    Attributes
    ----------
    arrays : dict of str to np.ndarray
        Every frame variable of the config ``[shape=(n, frames[, bins])]`` and its summaries
        ``<var>_mean``, ``<var>_std`` ``[shape=(n[, bins])]``, float32, NaN where invalid.
    valid : np.ndarray [shape=(n,)], bool
        Segments holding audio.
    valid_frames : np.ndarray [shape=(n,)], int32
        Frames of each segment computed from real audio (the rest is padding).
    offsets : np.ndarray [shape=(n,)], float64
        Each segment's start in the file, in seconds.
    audio : np.ndarray [shape=(n, segment_samples)], float32, or None
        The decoded, zero-padded segments when asked for (``keep_audio=True``).
    warning : str
        What was odd but kept (a header that declares more audio than the file holds).
    """

    arrays: dict[str, np.ndarray]
    valid: np.ndarray
    valid_frames: np.ndarray
    offsets: np.ndarray
    audio: np.ndarray | None
    warning: str


def segment_count(frames: int, sample_rate: int, config: FeatureConfig) -> int:
    """Segments of a file of ``frames`` samples at ``sample_rate``, as the store lays them out."""
    return int(segment_starts(resampled_length(frames, sample_rate, config.sr), config).size)


def decode_segments(
    uri: str,
    config: FeatureConfig,
    *,
    sample_rate: int,
    frames: int,
    segments: range,
    out: np.ndarray,
    storage_options: Mapping[str, Any] | None = None,
) -> SegmentAudio:
    """Decode segments ``segments`` of a file into the rows of ``out``, zero-padded.

    Parameters
    ----------
    uri : str
        Local path or fsspec URL.
    config : FeatureConfig
        The sample rate and segmentation.
    sample_rate, frames : int
        The file's header facts (:func:`pipeline.probe.probe_file`).
    segments : range
        Indices of the file's segments (step 1), as :func:`pipeline.schema.segment_starts`
        lays them out; segment ``segments[k]`` goes to row ``k`` of ``out``.
    out : np.ndarray [shape=(len(segments), segment_samples)], float32
        Zeros on entry; the decoded audio on return.
    storage_options : mapping, optional
        fsspec options for a URL.

    Returns
    -------
    SegmentAudio

    Raises
    ------
    DecodeError
        The file's data cannot be decoded.
    StorageError
        Reading the file failed at the storage layer.
    """
    t0 = time.perf_counter()
    length = config.segment_samples
    n_out = resampled_length(frames, sample_rate, config.sr)
    starts = segment_starts(n_out, config)[segments.start : segments.stop]
    if starts.size == 0:
        return SegmentAudio(decode_seconds=time.perf_counter() - t0)
    lo = int(starts[0])
    hi = int(min(n_out, starts[-1] + length))
    from .decode import decode_range

    try:
        decoded = decode_range(uri, sr=config.sr, native_sr=sample_rate, declared_frames=frames, start=lo, stop=hi,
                               storage_options=storage_options)
    except OSError as exc:
        raise StorageError(f"reading {uri} failed: {one_line(exc)}") from exc
    y = decoded.y
    result = SegmentAudio(warning=decoded.warning)
    for k, start in enumerate(starts):
        offset = int(start) - lo
        real = max(0, min(length, y.size - offset))
        is_first = segments.start + k == 0
        if real == 0 or (2 * real < length and not is_first):
            continue  # audio ended early (truncated file): the segment stays invalid
        out[k, :real] = y[offset : offset + real]
        result.rows.append(k)
        result.valid_frames.append(config.valid_frames(real))
        result.valid_samples.append(real)
        result.audio_seconds += real / config.sr
    result.resample_seconds = decoded.resample_seconds
    result.decode_seconds = time.perf_counter() - t0 - decoded.resample_seconds
    return result


def allocate(n: int, config: FeatureConfig) -> dict[str, np.ndarray]:
    """The arrays of ``n`` segments: every variable and frame-level summary, NaN until computed."""
    arrays: dict[str, np.ndarray] = {}
    for fam, var in iter_variables(config.features):
        shape = fam.shape(var, config)
        arrays[var.name] = np.full((n, *shape), np.nan, dtype=np.float32)
        if var.per_frame:
            for stat in SUMMARY_STATS:
                arrays[f"{var.name}_{stat}"] = np.full((n, *shape[1:]), np.nan, dtype=np.float32)
    return arrays


def _runs(rows: np.ndarray, size: int) -> Iterator[slice | np.ndarray]:
    """Batches of at most ``size`` rows: a slice where the rows are consecutive, else the rows."""
    for b in range(0, rows.size, size):
        batch = rows[b : b + size]
        if batch[-1] - batch[0] == batch.size - 1:
            yield slice(int(batch[0]), int(batch[-1]) + 1)
        else:
            yield batch


def featurize_rows(rows: np.ndarray, audio: np.ndarray, valid_samples: np.ndarray, config: FeatureConfig,
                   arrays: dict[str, np.ndarray], where: Callable[[int], str] | None = None) -> float:
    """Features and summaries of ``audio[rows]`` into ``arrays[...][rows]``, in bounded batches.

    Every batch computes its spectra in the config's ``stft_dtype`` (the store's, whichever
    families a task computes): librosa's float64 bits, or float32 where the store's families
    allow it.

    Parameters
    ----------
    rows : np.ndarray [shape=(m,)], int
        Rows to featurise, ascending.
    audio : np.ndarray [shape=(n, segment_samples)], float32
        Zero-padded segments.
    valid_samples : np.ndarray [shape=(n,)], int
        Samples of real audio per row: summaries are taken over the frames of each family's
        framing that hold them.
    config : FeatureConfig
    arrays : dict of str to np.ndarray
        From :func:`allocate` for ``n`` rows; filled in place.
    where : callable ``row -> str``, optional
        Names a row's file and segment in the error of a family that fails on it.

    Returns
    -------
    float
        Seconds taken.

    Raises
    ------
    FamilyError
        A family failed: the message names the family, and the first row it fails on.
    """
    t0 = time.perf_counter()
    batch_segments = int(setting("batch-segments"))
    families = [family(name) for name in config.features]
    precision = cast("Precision", config.stft_dtype)
    # one BLAS thread: a segment's numbers do not depend on where (or how threaded) it ran
    with blas_controller().limit(limits=1, user_api="blas"):
        for batch in _runs(rows, batch_segments):
            try:
                feats = compute(audio[batch], config, precision)
            except FamilyError as exc:
                raise _locate(exc, np.arange(audio.shape[0])[batch], audio, config, precision, where) from exc
            samples = valid_samples[batch]
            for fam in families:
                frames = fam.framing.valid_frames(config, samples)
                for var in fam.variables:
                    values = feats[var.name]
                    arrays[var.name][batch] = values
                    if var.per_frame:
                        stats = summarize(values, frames)
                        for stat in SUMMARY_STATS:
                            arrays[f"{var.name}_{stat}"][batch] = stats[stat]
    return time.perf_counter() - t0


def _locate(exc: FamilyError, rows: np.ndarray, audio: np.ndarray, config: FeatureConfig, precision: Precision,
            where: Callable[[int], str] | None) -> FamilyError:
    """``exc`` naming the first row of the batch ``rows`` a family fails on alone."""
    for row in rows.tolist():
        try:
            compute(audio[row : row + 1], config, precision)
        except FamilyError as single:
            place = where(row) if where is not None else f"row {row}"
            return FamilyError(f"{single} on {place}")
    return FamilyError(f"{exc} on a batch of {rows.size} segments (each alone succeeds)")


@functools.lru_cache(maxsize=1)
def blas_controller() -> ThreadpoolController:
    """The process's thread pools, found once (finding them costs about 2 ms a time)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def featurize_file(
    uri: str,
    config: FeatureConfig,
    *,
    segments: range | None = None,
    storage_options: Mapping[str, Any] | None = None,
    info: FileInfo | None = None,
    keep_audio: bool = False,
) -> FileFeatures:
    """Featurise segments of one audio file exactly as a chunk task stores them.

    Parameters
    ----------
    uri : str
        Local path or fsspec URL.
    config : FeatureConfig
        The store's config (sample rate, segmentation, families).
    segments : range, optional
        Which of the file's segments (step 1); all of them by default. Long files are best
        featurised a range at a time: memory grows with the segments asked for.
    storage_options : mapping, optional
        fsspec options for a URL.
    info : FileInfo, optional
        The file's probe (:func:`pipeline.probe.probe_file`); probed here when not given.
    keep_audio : bool
        Return the decoded segments too.

    Returns
    -------
    FileFeatures

    Raises
    ------
    DecodeError
        The file cannot be probed or decoded.
    InputError
        ``segments`` is not a step-1 range inside the file's segments.
    StorageError
        Reading the file failed.
    """
    from .probe import probe_file

    info = probe_file(uri, storage_options) if info is None else info
    if info.error:
        raise DecodeError(f"{uri}: {info.error}")
    total = segment_count(info.frames, info.sample_rate, config)
    segments = range(total) if segments is None else segments
    if segments.step != 1 or not 0 <= segments.start <= segments.stop <= total:
        raise InputError(f"Expected segments within range(0, {total}) with step 1 for {uri}, got {segments}")
    n = len(segments)
    audio = np.zeros((n, config.segment_samples), dtype=np.float32)
    decoded = decode_segments(uri, config, sample_rate=info.sample_rate, frames=info.frames, segments=segments,
                              out=audio, storage_options=storage_options)
    rows = np.asarray(decoded.rows, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    valid[rows] = True
    valid_frames = np.zeros(n, dtype=np.int32)
    valid_frames[rows] = decoded.valid_frames
    valid_samples = np.zeros(n, dtype=np.int64)
    valid_samples[rows] = decoded.valid_samples
    arrays = allocate(n, config)
    featurize_rows(rows, audio, valid_samples, config, arrays,
                   where=lambda row: f"{uri} segment {segments.start + row}")
    starts = segment_starts(resampled_length(info.frames, info.sample_rate, config.sr), config)
    return FileFeatures(arrays=arrays, valid=valid, valid_frames=valid_frames,
                        offsets=starts[segments.start : segments.stop] / config.sr,
                        audio=audio if keep_audio else None, warning=decoded.warning)



