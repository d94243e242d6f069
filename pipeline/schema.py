"""The store's layout: variables, sizes, the segment plan, where every file's segments go.

Everything here is pure: it describes arrays, it does not compute features or talk to Dask.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._version import __version__
from .config import FeatureConfig
from .families import iter_variables
from .nogc import gc_paused

if TYPE_CHECKING:
    from .probe import ManifestEntry

__all__ = [
    "CHUNK_TARGET_BYTES",
    "FROM_FILES",
    "SEGMENT_PADDING",
    "SPLITS",
    "SUMMARY_STATS",
    "Layout",
    "build_layout",
    "chunk_segments",
    "netcdf_safe",
    "package_versions",
    "per_segment",
    "resampled_length",
    "resampled_lengths",
    "segment_coords",
    "segment_count",
    "segment_counts",
    "segment_starts",
]

#: per-segment summaries of every frame-level variable, over its valid frames
SUMMARY_STATS: tuple[str, ...] = ("mean", "std")
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: ``segment_file`` of a padding segment (allocated to keep appends chunk-aligned).
SEGMENT_PADDING = -1
CHUNK_TARGET_BYTES = 16 * 2**20
_MAX_CHUNK_SEGMENTS = 2048
#: At most this much audio per chunk, so a task's decoded audio stays small whatever the config.
_MAX_CHUNK_AUDIO_SECONDS = 900.0
_FEW_CHUNKS = 16


def resampled_length(frames: int, native_sr: int, sr: int) -> int:
    """Samples at ``sr`` of ``frames`` native samples, as ``librosa.resample`` sizes them."""
    return int(resampled_lengths(np.asarray([frames]), np.asarray([native_sr]), sr)[0])


def resampled_lengths(frames: np.ndarray, native_sr: np.ndarray, sr: int) -> np.ndarray:
    """:func:`resampled_length` of many files at once (int64; 0 where ``native_sr`` is 0)."""
    frames = np.asarray(frames, dtype=np.int64)
    native = np.asarray(native_sr, dtype=np.int64)
    scaled = np.ceil(frames * sr / np.where(native > 0, native, 1)).astype(np.int64)
    return np.where(native == sr, frames, np.where(native > 0, scaled, 0))


def segment_count(n_samples: int, config: FeatureConfig) -> int:
    """How many segments a file of ``n_samples`` samples (at ``config.sr``) has.

    Segments start every ``segment_hop_samples``; a trailing partial segment holding fewer
    than half a segment of audio is dropped unless it is the file's only one.
    """
    return int(segment_counts(np.asarray([n_samples]), config)[0])


def segment_counts(n_samples: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """:func:`segment_count` of many files at once (int64)."""
    n = np.asarray(n_samples, dtype=np.int64)
    half = (config.segment_samples + 1) // 2
    full = np.where(n >= half, (n - half) // config.segment_hop_samples + 1, 0)
    return np.where(n > 0, np.maximum(full, 1), 0)


def segment_starts(n_samples: int, config: FeatureConfig) -> np.ndarray:
    """Start sample (at ``config.sr``) of every segment of a file of ``n_samples`` samples
    (:func:`segment_count` of them, one ``segment_hop_samples`` apart)."""
    return np.arange(segment_count(n_samples, config), dtype=np.int64) * config.segment_hop_samples


def chunk_segments(config: FeatureConfig, n_segments: int | None = None) -> int:
    """Segments per chunk: one chunk of the largest variable is about 16 MiB.

    Capped at 2,048 segments and at 15 minutes of audio, which bounds a task's memory. A store
    that would have fewer than 16 chunks gets half-size (8 MiB) chunks instead, so that even a
    small corpus gives a cluster enough tasks to balance.
    """
    per_segment = max(
        math.prod(fam.shape(var, config)) * 4 for fam, var in iter_variables(config.features)
    )
    hop = config.segment_hop_seconds or config.segment_seconds
    by_audio = int(_MAX_CHUNK_AUDIO_SECONDS // max(hop, config.segment_seconds))
    size = max(1, min(_MAX_CHUNK_SEGMENTS, by_audio, CHUNK_TARGET_BYTES // per_segment))
    if n_segments is not None:
        if n_segments < _FEW_CHUNKS * size:
            size = max(1, size // 2)
        size = max(1, min(size, n_segments))
    return size


class FileRecord(NamedTuple):
    """A file's place in the store: header facts plus label, split and segment range (a named
    tuple: 1.2 million are built at 10,000 hours, a frozen dataclass takes four times as long)."""

    uri: str
    label: str
    split: str
    size: int
    fingerprint: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    error: str
    first_segment: int
    n_segments: int
    #: odd but kept, from the header (a file shorter than its header declares)
    warning: str = ""

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@dataclass(frozen=True)
class Layout:
    """Where every file's segments live, and the chunking of the segment axis."""

    files: tuple[FileRecord, ...]
    n_segments: int
    chunk: int

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n_segments / self.chunk) if self.n_segments else 0

    def chunk_bounds(self, index: int) -> tuple[int, int]:
        start = index * self.chunk
        return start, min(start + self.chunk, self.n_segments)


def build_layout(
    entries: Sequence[ManifestEntry], config: FeatureConfig, *, chunk: int | None = None,
    first_segment: int = 0, first_file_records: Sequence[FileRecord] = (),
) -> Layout:
    """Allocate segments file by file, in the given order, from the header lengths.

    ``entries`` are the run's manifest: header facts plus ``label`` and ``split``.
    ``first_segment`` and ``first_file_records`` let an append continue an existing layout.
    """
    infos = [entry.info for entry in entries]
    frames = np.fromiter((i.frames for i in infos), dtype=np.int64, count=len(infos))
    native = np.fromiter((0 if i.error else i.sample_rate for i in infos), dtype=np.int64, count=len(infos))
    # vectorised over files: 1.2 million at 10,000 hours (benchmarks/scale.py)
    counts = segment_counts(resampled_lengths(frames, native, config.sr), config)
    firsts = first_segment + np.cumsum(counts) - counts
    records = list(first_file_records)
    with gc_paused():
        records.extend(FileRecord(uri=info.uri, label=entry.label, split=entry.split, size=info.size, fingerprint=info.fingerprint,
                   sample_rate=info.sample_rate, channels=info.channels, frames=info.frames, format=info.format,
                   error=info.error, first_segment=first, n_segments=n, warning=info.warning)
            for entry, info, first, n in zip(entries, infos, firsts.tolist(), counts.tolist(), strict=True))
    cursor = first_segment + int(counts.sum())
    size = chunk if chunk is not None else chunk_segments(config, max(cursor, 1))
    return Layout(files=tuple(records), n_segments=cursor, chunk=size)


def netcdf_safe(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes any netCDF or Zarr tool can write: strings, numbers and flat lists of them.

    ``None`` is left out, a bool becomes 0/1, a mapping becomes a JSON string
    (``FeatureConfig.from_dict`` and :func:`pipeline.store.store_versions` read them back).
    """
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, Mapping):
            value = json.dumps(value, sort_keys=True)
        out[key] = value
    return out


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine a store's numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"pipeline": __version__}
    for name in ("librosa", "numpy", "scipy", "soundfile", "soxr", "zarr", "xarray", "dask"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


#: per-segment coordinates that are their file's: segment coordinate -> the file coordinate it
#: repeats (the writer fills them from the records, readers from the stored file table)
FROM_FILES: dict[str, str] = {"label": "file_label", "split": "file_split"}


def per_segment(per_file: np.ndarray, segment_file: np.ndarray) -> np.ndarray:
    """Each segment's file's value of ``per_file``, as an object array of ``str`` ("" on
    padding, ``segment_file < 0``).

    Object, not NumPy's ``StringDType`` (what zarr reads strings as): building 12 million
    ``StringDType`` elements takes about 5 s (numpy 2.4, some 400 ns each, a take or a fill
    alike), copying 12 million pointers to the files' 1.2 million strings a tenth of that.
    """
    files = np.asarray(per_file).astype(object)
    values = files[np.maximum(segment_file, 0)] if files.size else np.full(segment_file.shape, "", dtype=object)
    values[segment_file < 0] = ""
    return values


def segment_coords(layout: Layout, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Per-segment coordinates known from the plan (before decoding): vectorised over files
    (1.2 million at 10,000 h), not a Python loop per file."""
    n = layout.n_segments
    seg_file = np.full(n, SEGMENT_PADDING, dtype=np.int32)
    offset = np.zeros(n, dtype=np.float64)
    files = layout.files
    count = np.fromiter((r.n_segments for r in files), dtype=np.int64, count=len(files))
    first = np.fromiter((r.first_segment for r in files), dtype=np.int64, count=len(files))
    owner = np.repeat(np.arange(len(files)), count)  # each allocated segment's file
    if owner.size:
        # a file's k-th segment starts k segment hops in (segment_starts)
        within = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)
        where = first[owner] + within
        seg_file[where] = owner
        offset[where] = within * config.segment_hop_samples / config.sr
    label = per_segment(np.array([r.label for r in files], dtype=object), seg_file)
    split = per_segment(np.array([r.split for r in files], dtype=object), seg_file)
    return {"segment_file": seg_file, "segment_offset": offset, "label": label, "split": split}
