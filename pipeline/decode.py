"""Decoding: mono float32 audio at the target rate for a range of output samples.

Decoding reproduces ``librosa.load(uri, sr=SR, mono=True)``: soundfile reads float32 frames,
channels are averaged, and soxr (``soxr_hq``) resamples to ``SR`` with the output length
``ceil(frames * SR / native_sr)``. A long file is resampled in fixed tiles, each with a short
context on both sides, aligned to the resampling ratio: it matches the whole-file result to
float32 rounding, memory stays bounded by the range, and a sample's bits do not depend on which
range asked for it. Formats libsndfile cannot read go through ffmpeg when it is installed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import soundfile as sf
import soxr

from .errors import MESSAGE_LIMIT, DecodeError, StorageError, one_line
from .io import filesystem, is_url
from .schema import resampled_length

__all__ = ["FFMPEG_ONLY", "Decoded", "decode_range", "describe_sf_error", "ffprobe", "open_input"]

#: Formats libsndfile cannot read; ffmpeg decodes them when it is installed.
FFMPEG_ONLY: frozenset[str] = frozenset({".m4a", ".aac", ".opus", ".wma", ".webm", ".mp4"})
_LOSSY: frozenset[str] = frozenset({".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".webm", ".mp4"})
_CONTEXT_SECONDS = 0.1
#: a resampled file longer than this is resampled in tiles of this length (decode_range)
_TILE_SECONDS = 20.0
_BLOCK_FRAMES = 1 << 18
_SMALL_BLOCK_FRAMES = 1 << 12


@contextlib.contextmanager
def open_input(uri: str, storage_options: Mapping[str, Any] | None) -> Iterator[str | IO[bytes]]:
    if not is_url(uri):
        yield uri
        return
    fs, path = filesystem(uri, storage_options)
    with fs.open(path, "rb") as handle:
        yield handle


def describe_sf_error(exc: BaseException) -> str:
    text = one_line(exc, MESSAGE_LIMIT)
    # libsndfile says "not a regular file (possibly a pipe?)" of bytes it cannot recognise
    if "Format not recognised" in text or "unknown format" in text.lower() or "possibly a pipe" in text:
        return "not a recognised audio format"
    return text


@dataclass(frozen=True)
class Decoded:
    """Mono float32 audio at the target rate for a requested range, and what went wrong."""

    y: np.ndarray
    warning: str = ""
    #: of the decode's wall time, how much went to resampling
    resample_seconds: float = 0.0


def decode_range(
    uri: str,
    *,
    sr: int,
    native_sr: int,
    declared_frames: int,
    start: int = 0,
    stop: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Decoded:
    """Decode output samples ``[start, stop)`` of ``librosa.load(uri, sr=sr, mono=True)``.

    At the native rate the range is read exactly. A resampled file longer than one tile
    (``_TILE_SECONDS``) is resampled a fixed tile at a time, each tile from its own window of
    the file with context on both sides: a sample's value is a function of the file and its
    tile alone, the same bits whichever range (chunk, run, ``segment_chunk``) asks for it.

    Parameters
    ----------
    start, stop : sample indices at ``sr``; ``stop=None`` means to the end of the file.
    Raises
    ------
    DecodeError : unreadable data, no samples at all, or non-finite samples.
    """
    total_out = resampled_length(declared_frames, native_sr, sr)
    stop = total_out if stop is None else min(stop, total_out)
    if not 0 <= start < stop:
        raise DecodeError(f"Expected 0 <= start < stop <= {total_out}, got [{start}, {stop})")
    ext = os.path.splitext(uri.split("?", 1)[0])[1].lower()
    if native_sr == sr:
        window = _decode_window(uri, ext, storage_options, native_sr, sr, declared_frames, start, stop, start, stop)
        return Decoded(y=window.y, warning=window.warning)
    tile = _tile_samples(native_sr, sr)
    tiles = [(0, total_out)] if total_out <= tile else [
        (k * tile, min((k + 1) * tile, total_out)) for k in range(start // tile, -(-stop // tile))
    ]
    parts: list[np.ndarray] = []
    resample_seconds, warning = 0.0, ""
    for a, b in tiles:
        lo, hi = max(a, start), min(b, stop)
        window = _decode_window(uri, ext, storage_options, native_sr, sr, declared_frames, a, hi, lo, hi)
        parts.append(window.y)
        resample_seconds += window.resample_seconds
        warning = window.warning
        if warning or window.y.size < hi - lo:
            break  # the data ends inside this tile: the later ones hold nothing
    y = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return Decoded(y=np.ascontiguousarray(y, dtype=np.float32), warning=warning,
                   resample_seconds=resample_seconds)


def _tile_samples(native_sr: int, sr: int) -> int:
    """Output samples per resampling tile: about ``_TILE_SECONDS``, a whole number of ratio steps."""
    step_out = sr // math.gcd(native_sr, sr)
    return max(1, round(_TILE_SECONDS * sr / step_out)) * step_out


@dataclass(frozen=True)
class _Window:
    y: np.ndarray
    warning: str
    resample_seconds: float


def _decode_window(uri: str, ext: str, storage_options: Mapping[str, Any] | None, native_sr: int, sr: int,
                   declared_frames: int, begin: int, end: int, lo: int, hi: int) -> _Window:
    """Output samples ``[lo, hi)`` of the stream that resamples the file from output sample
    ``begin`` (less context) to ``end`` (plus context, or the file's end when that is near).

    The stream's start alone fixes the bits of every sample it yields before its last context;
    ``begin`` is a tile's start (or ``lo`` itself at the native rate, where nothing is resampled).
    """
    total_out = resampled_length(declared_frames, native_sr, sr)
    if native_sr == sr:
        native_start, native_stop, out_a = lo, hi, lo
    else:
        g = math.gcd(native_sr, sr)
        step_in, step_out = native_sr // g, sr // g
        context = int(_CONTEXT_SECONDS * sr)
        out_a = 0 if begin == 0 else max(0, (begin - context) // step_out * step_out)
        native_start = out_a // step_out * step_in
        if end + context >= total_out:
            native_stop = declared_frames  # the file's end: resample it as a whole file would
        else:
            native_stop = min(declared_frames, -(-(end + context) // step_out) * step_in)
    blocks = _ffmpeg_blocks if ext in FFMPEG_ONLY else _soundfile_blocks
    # streaming: native blocks -> mono -> soxr.ResampleStream (bit-identical to one-shot soxr),
    # so memory holds the window at the target rate plus one native block
    stream = None if native_sr == sr else soxr.ResampleStream(native_sr, sr, 1, dtype="float32", quality="soxr_hq")
    parts: list[np.ndarray] = []
    read = 0
    resample_seconds = 0.0
    for block in blocks(uri, storage_options, native_start, native_stop):
        # a float64 sum is finite exactly when every float32 sample is (it cannot overflow)
        if not np.isfinite(np.sum(block, dtype=np.float64)):
            bad = int(np.count_nonzero(~np.isfinite(block)))
            raise DecodeError(
                f"holds non-finite samples (NaN or inf): {bad} in the block at {(native_start + read) / native_sr:.3f} s"
            )
        read += block.size
        if stream is None:
            parts.append(block)
            continue
        t0 = time.perf_counter()
        parts.append(stream.resample_chunk(block))
        resample_seconds += time.perf_counter() - t0
    if stream is not None:
        t0 = time.perf_counter()
        parts.append(stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        resample_seconds += time.perf_counter() - t0
    expected = native_stop - native_start
    warning = ""
    if read < expected:
        shortfall_ok = ext in _LOSSY and expected - read <= max(2 * 1152, expected // 100)
        if native_start + read == 0:
            raise DecodeError("no audio could be decoded (file is truncated or corrupt)")
        if not shortfall_ok:
            warning = (
                f"truncated: decoded {native_start + read} of {declared_frames} frames the header "
                f"declares ({(native_start + read) / native_sr:.3f} of {declared_frames / native_sr:.3f} s)"
            )
    y = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if stream is not None:
        # windows are aligned to the ratio, so this equals the whole-file sizing
        y = _fix_length(y, resampled_length(read, native_sr, sr))
    y = y[lo - out_a : hi - out_a]
    return _Window(y=np.ascontiguousarray(y, dtype=np.float32), warning=warning,
                   resample_seconds=resample_seconds)


def _fix_length(y: np.ndarray, size: int) -> np.ndarray:
    if y.shape[0] >= size:
        return y[:size]
    return np.pad(y, (0, size - y.shape[0]))


def _mono(block: np.ndarray) -> np.ndarray:
    """Channel mean in float32, as ``librosa.to_mono``."""
    if block.shape[1] == 1:
        return np.ascontiguousarray(block[:, 0])
    mono: np.ndarray = block.mean(axis=1, dtype=np.float32)
    return mono


#: 16-bit PCM read as integers and scaled here: libsndfile's own float conversion is the same
#: exact multiplication by 2**-15, about three times slower
_PCM16_SCALE = np.float32(1.0 / 32768.0)


def _read_float32(handle: sf.SoundFile, frames: int) -> np.ndarray:
    """``handle.read(frames, dtype='float32', always_2d=True)``, bit for bit."""
    if handle.subtype == "PCM_16":
        ints = handle.read(frames, dtype="int16", always_2d=True)
        block: np.ndarray = ints.astype(np.float32)
        block *= _PCM16_SCALE
        return block
    floats: np.ndarray = handle.read(frames, dtype="float32", always_2d=True)
    return floats


def _soundfile_blocks(uri: str, storage_options: Mapping[str, Any] | None, start: int, stop: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks of native frames ``[start, stop)``; stops early where data ends.

    libsndfile fails a whole read when the data breaks off inside it (a truncated FLAC, say),
    so after a failed read the rest is retried in small blocks to keep every frame that decodes.
    """
    read, block_frames, opened_once = 0, _BLOCK_FRAMES, False
    while read < stop - start:
        with contextlib.ExitStack() as stack:
            try:
                src = stack.enter_context(open_input(uri, storage_options))
                handle = stack.enter_context(sf.SoundFile(src))
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                if not opened_once:
                    raise DecodeError(f"cannot decode audio: {describe_sf_error(exc)}") from exc
                return
            opened_once = True
            if start + read:
                try:
                    handle.seek(start + read)
                except (sf.LibsndfileError, RuntimeError, ValueError):
                    return  # past where the data ends: the caller reports the shortfall as truncation
            while read < stop - start:
                try:
                    block = _read_float32(handle, min(block_frames, stop - start - read))
                except (sf.LibsndfileError, RuntimeError) as exc:
                    if block_frames > _SMALL_BLOCK_FRAMES:
                        block_frames = _SMALL_BLOCK_FRAMES
                        break  # reopen at the same place and go on in small blocks
                    if read == 0 and start == 0:
                        raise DecodeError(f"cannot decode audio: {describe_sf_error(exc)}") from exc
                    return  # keep what decoded: the caller reports the shortfall as truncation
                if block.shape[0] == 0:
                    return
                read += block.shape[0]
                yield _mono(block)


def _ffmpeg_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DecodeError(f"{name} is needed to decode this format and is not installed")
    return path


def _read_bytes(uri: str, storage_options: Mapping[str, Any] | None) -> bytes:
    try:
        fs, path = filesystem(uri, storage_options)
        data: bytes = fs.cat_file(path)
    except Exception as exc:
        raise StorageError(f"cannot read {uri}: {one_line(exc, MESSAGE_LIMIT)}") from exc
    return data


def ffprobe(uri: str, storage_options: Mapping[str, Any] | None) -> tuple[int, int, int, str]:
    data = _read_bytes(uri, storage_options)
    proc = subprocess.run(
        [_ffmpeg_binary("ffprobe"), "-v", "error", "-select_streams", "a:0", "-show_entries",
         "stream=sample_rate,channels,duration:format=duration,format_name", "-of", "json", "-i", "pipe:0"],
        input=data, capture_output=True, check=False, timeout=120,
    )
    if proc.returncode != 0:
        raise DecodeError(one_line(proc.stderr.decode(errors="replace"), MESSAGE_LIMIT) or "ffprobe failed")
    meta = json.loads(proc.stdout or b"{}")
    streams = meta.get("streams") or []
    if not streams:
        raise DecodeError("no audio stream")
    stream = streams[0]
    sample_rate = int(stream.get("sample_rate") or 0)
    duration = float(stream.get("duration") or meta.get("format", {}).get("duration") or 0.0)
    return sample_rate, int(stream.get("channels") or 0), round(duration * sample_rate), str(meta.get("format", {}).get("format_name", "ffmpeg"))


def _ffmpeg_blocks(uri: str, storage_options: Mapping[str, Any] | None, start: int, stop: int) -> Iterator[np.ndarray]:
    """Formats libsndfile cannot read, decoded by ffmpeg at the native rate (whole file)."""
    data = _read_bytes(uri, storage_options)
    _, channels, _, _ = ffprobe(uri, storage_options)
    proc = subprocess.run(
        [_ffmpeg_binary("ffmpeg"), "-v", "error", "-i", "pipe:0", "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"],
        input=data, capture_output=True, check=False, timeout=3600,
    )
    if proc.returncode != 0 and not proc.stdout:
        raise DecodeError(f"cannot decode audio: {one_line(proc.stderr.decode(errors='replace'), MESSAGE_LIMIT)}")
    samples = np.frombuffer(proc.stdout, dtype="<f4").reshape(-1, max(channels, 1))[start:stop]
    for i in range(0, samples.shape[0], _BLOCK_FRAMES):
        yield _mono(samples[i : i + _BLOCK_FRAMES])
