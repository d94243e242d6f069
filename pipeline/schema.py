"""The store's layout: dimensions, variables, attributes, encodings, segment plan, template.

Everything here is pure: it describes arrays, it does not compute features or talk to Dask.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from zarr.codecs import ZstdCodec

from ._version import __version__
from .config import FeatureConfig

__all__ = [
    "CHUNK_TARGET_BYTES",
    "FILE_STATUS",
    "PITCH_CLASSES",
    "SEGMENT_PADDING",
    "SPLITS",
    "SUMMARY_STATS",
    "VARIABLES",
    "Layout",
    "Variable",
    "build_layout",
    "chunk_segments",
    "file_coords",
    "make_template",
    "netcdf_safe",
    "package_versions",
    "resampled_length",
    "segment_coords",
    "segment_starts",
]

PITCH_CLASSES: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
#: per-segment summaries of every frame-level variable, over its valid frames
SUMMARY_STATS: tuple[str, ...] = ("mean", "std")
SPLITS: tuple[str, ...] = ("train", "val", "test")
FILE_STATUS: tuple[str, ...] = ("pending", "ok", "error")
#: ``segment_file`` of a padding segment (allocated to keep appends chunk-aligned).
SEGMENT_PADDING = -1
CHUNK_TARGET_BYTES = 16 * 2**20
_MAX_CHUNK_SEGMENTS = 2048
#: At most this much audio per chunk, so a task's decoded audio stays small whatever the config.
_MAX_CHUNK_AUDIO_SECONDS = 900.0
_FEW_CHUNKS = 16
_COMPRESSORS = (ZstdCodec(level=1),)


@dataclass(frozen=True)
class Variable:
    """One frame-level feature: its bins dimension (``None`` for one value per frame)."""

    bins_dim: str | None
    description: str
    units: str


VARIABLES: dict[str, Variable] = {
    "spectrogram": Variable("freq", "amplitude_to_db(|stft|, ref=1.0, top_db=None)", "dB"),
    "mel": Variable("mel_band", "power_to_db(melspectrogram(power=2), ref=1.0, top_db=None)", "dB"),
    "mfcc": Variable("mfcc_coef", "librosa.feature.mfcc (DCT-II ortho of power_to_db(mel), top_db=80)", "1"),
    "chroma": Variable("pitch_class", "librosa.feature.chroma_stft (tuning estimated per segment), max-normalised per frame", "1"),
    "spectral_centroid": Variable(None, "librosa.feature.spectral_centroid of |stft|", "Hz"),
    "spectral_bandwidth": Variable(None, "librosa.feature.spectral_bandwidth of |stft|, p=2", "Hz"),
    "spectral_rolloff": Variable(None, "librosa.feature.spectral_rolloff of |stft|, roll_percent=0.85", "Hz"),
    "zero_crossing_rate": Variable(None, "librosa.feature.zero_crossing_rate, frame_length=n_fft", "1"),
    "rms": Variable(None, "librosa.feature.rms of the waveform, frame_length=n_fft", "1"),
}


def bins_size(dim: str, config: FeatureConfig) -> int:
    return {"freq": config.n_freq, "mel_band": config.n_mels, "mfcc_coef": config.n_mfcc,
            "pitch_class": config.n_chroma}[dim]


def resampled_length(frames: int, native_sr: int, sr: int) -> int:
    """Samples at ``sr`` of ``frames`` native samples, as ``librosa.resample`` sizes them."""
    if native_sr == sr:
        return frames
    return math.ceil(frames * sr / native_sr)


def segment_starts(n_samples: int, config: FeatureConfig) -> np.ndarray:
    """Start sample (at ``config.sr``) of every segment of a file of ``n_samples`` samples.

    Segments start every ``segment_hop_samples``; a trailing partial segment holding fewer
    than half a segment of audio is dropped unless it is the file's only one.
    """
    if n_samples <= 0:
        return np.zeros(0, dtype=np.int64)
    length, hop = config.segment_samples, config.segment_hop_samples
    half = (length + 1) // 2
    count = (n_samples - half) // hop + 1 if n_samples >= half else 0
    count = max(count, 1)
    return np.arange(count, dtype=np.int64) * hop


def chunk_segments(config: FeatureConfig, n_segments: int | None = None) -> int:
    """Segments per chunk: one chunk of the largest variable is about 16 MiB.

    Capped at 2,048 segments and at 15 minutes of audio, which bounds a task's memory. A store
    that would have fewer than 16 chunks gets half-size (8 MiB) chunks instead, so that even a
    small corpus gives a cluster enough tasks to balance.
    """
    per_segment = max(
        config.n_frames * (bins_size(VARIABLES[v].bins_dim or "", config) if VARIABLES[v].bins_dim else 1) * 4
        for v in config.frame_variables
    )
    hop = config.segment_hop_seconds or config.segment_seconds
    by_audio = int(_MAX_CHUNK_AUDIO_SECONDS // max(hop, config.segment_seconds))
    size = max(1, min(_MAX_CHUNK_SEGMENTS, by_audio, CHUNK_TARGET_BYTES // per_segment))
    if n_segments is not None:
        if n_segments < _FEW_CHUNKS * size:
            size = max(1, size // 2)
        size = max(1, min(size, n_segments))
    return size


@dataclass(frozen=True)
class FileRecord:
    """A file's place in the store: header facts plus label, split and segment range."""

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
    entries: Sequence[dict[str, Any]], config: FeatureConfig, *, chunk: int | None = None,
    first_segment: int = 0, first_file_records: Sequence[FileRecord] = (),
) -> Layout:
    """Allocate segments file by file, in the given order, from the header lengths.

    ``entries`` are :meth:`pipeline.io.FileInfo.to_dict` dicts plus ``label`` and ``split``.
    ``first_segment`` and ``first_file_records`` let an append continue an existing layout.
    """
    records = list(first_file_records)
    cursor = first_segment
    for entry in entries:
        n = 0
        if not entry["error"]:
            n_out = resampled_length(int(entry["frames"]), int(entry["sample_rate"]), config.sr)
            n = int(segment_starts(n_out, config).size)
        records.append(FileRecord(
            uri=entry["uri"], label=entry["label"], split=entry["split"], size=int(entry["size"]),
            fingerprint=entry["fingerprint"], sample_rate=int(entry["sample_rate"]),
            channels=int(entry["channels"]), frames=int(entry["frames"]), format=entry["format"],
            error=entry["error"], first_segment=cursor, n_segments=n, warning=str(entry.get("warning") or ""),
        ))
        cursor += n
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


def _strings(values: Sequence[str]) -> np.ndarray:
    return np.array(list(values), dtype=object)


def segment_coords(layout: Layout, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Per-segment coordinates known from the plan (before decoding)."""
    n = layout.n_segments
    seg_file = np.full(n, SEGMENT_PADDING, dtype=np.int32)
    offset = np.zeros(n, dtype=np.float64)
    valid_frames = np.zeros(n, dtype=np.int32)
    label = np.full(n, "", dtype=object)
    split = np.full(n, "", dtype=object)
    for index, record in enumerate(layout.files):
        if record.n_segments == 0:
            continue
        sl = slice(record.first_segment, record.first_segment + record.n_segments)
        n_out = resampled_length(record.frames, record.sample_rate, config.sr)
        starts = segment_starts(n_out, config)[: record.n_segments]
        seg_file[sl] = index
        offset[sl] = starts / config.sr
        real = np.minimum(config.segment_samples, n_out - starts)
        valid_frames[sl] = [config.valid_frames(int(r)) for r in real]
        label[sl] = record.label
        split[sl] = record.split
    return {"segment_file": seg_file, "segment_offset": offset, "segment_valid_frames": valid_frames,
            "label": label, "split": split}


def file_coords(files: Sequence[FileRecord]) -> dict[str, tuple[np.ndarray, str, str]]:
    """Per-file coordinates: ``{name: (values, description, units)}``."""
    return {
        "file_path": (_strings([f.uri for f in files]), "the input URI as given", "1"),
        "file_label": (_strings([f.label for f in files]), "label", "1"),
        "file_split": (_strings([f.split for f in files]), "train/val/test split", "1"),
        "file_status": (_strings(["error" if f.error else "pending" for f in files]), "ok, error, or pending (not all its chunks done)", "1"),
        "file_error": (_strings([f.error for f in files]), "why the file failed, one line (empty when ok)", "1"),
        "file_warning": (_strings([f.warning for f in files]), "what was odd but kept, one line (empty when none)", "1"),
        "file_duration": (np.array([f.duration for f in files], dtype=np.float64), "duration from the header", "s"),
        "file_sample_rate": (np.array([f.sample_rate for f in files], dtype=np.int32), "native sample rate", "Hz"),
        "file_frames": (np.array([f.frames for f in files], dtype=np.int64), "frames the file holds (as far as its header and size tell), at the native rate", "1"),
        "file_channels": (np.array([f.channels for f in files], dtype=np.int32), "channels", "1"),
        "file_bytes": (np.array([f.size for f in files], dtype=np.int64), "size", "bytes"),
        "file_fingerprint": (_strings([f.fingerprint for f in files]), "size + mtime or ETag, to detect changes", "1"),
        "file_format": (_strings([f.format for f in files]), "container format from the header", "1"),
        "file_first_segment": (np.array([f.first_segment for f in files], dtype=np.int64), "index of the file's first segment", "1"),
        "file_segments": (np.array([f.n_segments for f in files], dtype=np.int32), "segments allocated to the file", "1"),
    }


def make_template(layout: Layout, config: FeatureConfig, *, extra_attrs: dict[str, Any] | None = None) -> tuple[xr.Dataset, dict[str, dict[str, Any]]]:
    """The store's dataset with lazy (dask) placeholders for everything tasks write.

    Returns the dataset and its zarr encoding. Numpy-backed variables (plan coordinates,
    axes, per-file facts) are written by ``to_zarr(compute=False)``; the placeholders are
    written later, chunk by chunk, as regions.
    """
    n, chunk, n_frames = layout.n_segments, layout.chunk, config.n_frames
    data_vars: dict[str, Any] = {}
    encoding: dict[str, dict[str, Any]] = {}

    def lazy(shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...]) -> da.Array:
        # named: dask need not hash anything to name a placeholder that is never computed
        placeholder: da.Array = da.zeros(shape, dtype=dtype, chunks=chunks, name=f"placeholder-{uuid.uuid4().hex}")
        return placeholder

    for name in config.frame_variables:
        var = VARIABLES[name]
        dims: tuple[str, ...] = ("segment", "frame")
        shape: tuple[int, ...] = (n, n_frames)
        if var.bins_dim:
            dims += (var.bins_dim,)
            shape += (bins_size(var.bins_dim, config),)
        chunks = (chunk, *shape[1:])
        attrs = {"description": var.description, "units": var.units}
        data_vars[name] = xr.Variable(dims, lazy(shape, np.float32, chunks), attrs)
        encoding[name] = {"chunks": chunks, "compressors": _COMPRESSORS}
        for stat in ("mean", "std"):
            sdims = (dims[0], *dims[2:])
            sshape = (shape[0], *shape[2:])
            schunks = (chunk, *sshape[1:])
            sattrs = {"description": f"{stat} over the segment's valid frames of {name}", "units": var.units}
            data_vars[f"{name}_{stat}"] = xr.Variable(sdims, lazy(sshape, np.float32, schunks), sattrs)
            encoding[f"{name}_{stat}"] = {"chunks": schunks, "compressors": _COMPRESSORS}

    plan = segment_coords(layout, config)
    coords: dict[str, Any] = {}
    seg_desc = {
        "segment_file": ("index into the file dimension (-1: padding, never data)", "1"),
        "segment_offset": ("segment start from the file's start", "s"),
        "segment_valid_frames": ("frames holding real audio; the rest is zero-padding", "1"),
        "label": ("label of the segment's file", "1"),
        "split": ("train/val/test split of the segment's file", "1"),
    }
    for key, values in plan.items():
        desc, units = seg_desc[key]
        coords[key] = xr.Variable(("segment",), values, {"description": desc, "units": units})
        encoding[key] = {"chunks": (chunk,)}
    coords["segment_valid"] = xr.Variable(
        ("segment",), lazy((n,), np.bool_, (chunk,)),
        {"description": "true once the segment's chunk stored real audio for it", "units": "1"},
    )
    encoding["segment_valid"] = {"chunks": (chunk,)}

    frame_time = np.arange(n_frames) * config.hop_length / config.sr
    coords["frame_time"] = xr.Variable(("frame",), frame_time, {"description": "frame centre from the segment start", "units": "s"})
    import librosa

    if "mel" in config.frame_variables or "mfcc" in config.frame_variables:
        mel_f = librosa.mel_frequencies(n_mels=config.n_mels, fmin=config.fmin, fmax=float(config.fmax or config.sr / 2))
        coords["mel_frequency"] = xr.Variable(("mel_band",), mel_f, {"description": "mel band centre", "units": "Hz"})
    if "mfcc" in config.frame_variables:
        coords["mfcc_coef"] = xr.Variable(("mfcc_coef",), np.arange(config.n_mfcc, dtype=np.int32), {"description": "MFCC index", "units": "1"})
    if "chroma" in config.frame_variables:
        coords["pitch_class"] = xr.Variable(("pitch_class",), _strings(PITCH_CLASSES[: config.n_chroma]), {"description": "pitch class", "units": "1"})
    if "spectrogram" in config.frame_variables:
        coords["freq"] = xr.Variable(("freq",), librosa.fft_frequencies(sr=config.sr, n_fft=config.n_fft), {"description": "STFT bin frequency", "units": "Hz"})

    file_vars = file_coords(layout.files)
    for key, (values, desc, units) in file_vars.items():
        coords[key] = xr.Variable(("file",), values, {"description": desc, "units": units})

    n_chunks = layout.n_chunks
    coords["chunk_done"] = xr.Variable(("chunk",), lazy((n_chunks,), np.uint8, (1,)), {"description": "1 once the chunk's data is written (written last)", "units": "1"})
    encoding["chunk_done"] = {"chunks": (1,)}
    coords["chunk_report"] = xr.Variable(("chunk",), np.full(n_chunks, "", dtype=object), {"description": "JSON: per-file status of the chunk's decode", "units": "1"})
    encoding["chunk_report"] = {"chunks": (1,)}

    now = datetime.now(UTC).isoformat(timespec="seconds")
    root_attrs: dict[str, Any] = {**config.to_dict(), "segment_chunk": chunk,
                             "versions": package_versions(), "created": now, "updated": now,
                             "description": "Audio features (librosa reference) per segment; see docs/store.md"}
    root_attrs.update(extra_attrs or {})
    ds = xr.Dataset(data_vars, coords=coords, attrs=netcdf_safe(root_attrs))
    return ds, encoding
