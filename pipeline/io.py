"""Input side: listing (fsspec), the per-file manifest, decoding and resampling.

Decoding reproduces ``librosa.load(uri, sr=SR, mono=True)``: soundfile reads float32 frames,
channels are averaged, and soxr (``soxr_hq``) resamples to ``SR`` with the output length
``ceil(frames * SR / native_sr)``. A long file is resampled in fixed tiles, each with a short
context on both sides, aligned to the resampling ratio: it matches the whole-file result to
float32 rounding, memory stays bounded by the range, and a sample's bits do not depend on which
range asked for it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import stat
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

import fsspec
import numpy as np
import soundfile as sf
import soxr
from fsspec.core import url_to_fs

from .errors import DecodeError, InputError, StorageError, one_line
from .schema import resampled_length

__all__ = [
    "AUDIO_EXTENSIONS",
    "CREDENTIAL_KEYS",
    "Decoded",
    "FileInfo",
    "check_url_credentials",
    "decode_range",
    "filesystem",
    "fingerprint",
    "is_url",
    "join_uri",
    "list_inputs",
    "probe_file",
    "resampled_length",
    "sanitize_storage_options",
]

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".w64",
     ".rf64", ".caf", ".m4a", ".aac", ".opus", ".wma", ".webm", ".mp4"}
)
#: Formats libsndfile cannot read; ffmpeg decodes them when it is installed.
_FFMPEG_ONLY: frozenset[str] = frozenset({".m4a", ".aac", ".opus", ".wma", ".webm", ".mp4"})
#: storage_options keys that carry secrets: never put into task graphs, attributes or logs.
CREDENTIAL_KEYS: frozenset[str] = frozenset(
    {"key", "secret", "token", "password", "aws_access_key_id", "aws_secret_access_key",
     "aws_session_token", "session_token", "access_key", "secret_key", "credentials",
     "account_key", "sas_token", "connection_string", "client_secret"}
)
_LOSSY: frozenset[str] = frozenset({".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".webm", ".mp4"})
_CONTEXT_SECONDS = 0.1
#: a resampled file longer than this is resampled in tiles of this length (decode_range)
_TILE_SECONDS = 20.0
_BLOCK_FRAMES = 1 << 18
_SMALL_BLOCK_FRAMES = 1 << 12


def sanitize_storage_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Storage options safe to ship to workers: refuses credentials (they come from the env).

    Keys (``key``, ``secret``, ``token`` ...), cookies, and HTTP headers that authenticate
    (``Authorization``, ``Cookie``, ``X-Api-Key``, any name with auth, token, key, secret,
    session, signature or password in it) are all credentials, however deeply nested.
    """
    options = dict(options or {})
    found = sorted(_credential_paths(options))
    if found:
        raise InputError(
            "Expected no credentials in storage options (they would travel in the task graph); "
            f"got {', '.join(found)}: set them in the environment (e.g. AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY, or FSSPEC_HTTP='{\"headers\": {...}}' for HTTP headers) or use "
            "the cluster's credential chain"
        )
    return options


#: words that make an HTTP header (or a URL query parameter) a credential
_SECRET_WORDS = ("auth", "token", "key", "secret", "session", "signature", "password", "cookie", "credential")
#: query parameters of signed URLs (S3, GCS, Azure SAS) that carry no secret word of their own
_SIGNED_URL_PARAMS = frozenset({"sig", "se", "sp", "sv", "x-amz-date", "x-goog-date", "expires"})


def _credential_paths(options: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in options.items():
        name = str(key).lower()
        if name in CREDENTIAL_KEYS or name in ("cookies", "cookie_jar", "auth"):
            yield prefix + str(key)
        elif name == "headers" and isinstance(value, Mapping):
            yield from (f"{prefix}{key}.{h}" for h in value if any(w in str(h).lower() for w in _SECRET_WORDS))
        elif isinstance(value, Mapping):
            yield from _credential_paths(value, prefix + str(key) + ".")


def check_url_credentials(url: str) -> None:
    """Refuse a URL that carries a credential (``user:password@``, a signed URL's query).

    Input and store URLs travel in task graphs, logs and the store's ``file_path``: a signed
    URL's signature or a password in it would too. Raises :class:`InputError`.
    """
    if not is_url(url):
        return
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None or (parts.username and "@" in parts.netloc):
        raise InputError(f"Expected a URL without credentials, got a user name or password in {parts.scheme}://...@{parts.hostname}: "
                         "give them to the filesystem through the environment or its own configuration")
    secret = sorted({k for k, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
                     if k.lower() in _SIGNED_URL_PARAMS or any(w in k.lower() for w in _SECRET_WORDS)})
    if secret:
        raise InputError(f"Expected a URL without credentials, got a signed URL (query parameters {', '.join(secret)}) "
                         f"for {parts.scheme}://{parts.hostname}{parts.path}: use the bucket URL with credentials from the "
                         "environment, or the filesystem's own configuration")


def is_url(path: str) -> bool:
    """True for fsspec URLs other than ``file://`` (which is a local path)."""
    return "://" in path and not path.startswith("file://")


def filesystem(uri: str, storage_options: Mapping[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem and path of ``uri``; storage options apply to URLs only."""
    try:
        fs, path = url_to_fs(uri, **(dict(storage_options or {}) if is_url(uri) else {}))
    except (ImportError, ValueError) as exc:
        raise InputError(f"Cannot open {uri}: {_one_line(exc)}") from exc
    return fs, path


def join_uri(fs: fsspec.AbstractFileSystem, original: str, path: str) -> str:
    """The URI of ``path`` (as listed by ``fs``) in the style of ``original``."""
    if is_url(original):
        if is_url(path):  # HTTP(S) filesystems list full URLs
            return path
        protocol = original.split("://", 1)[0]
        return f"{protocol}://{path.lstrip('/')}"
    return path


def _has_magic(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def list_inputs(inputs: Sequence[str | os.PathLike[str]], storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """Expand files, directories (recursive, audio extensions only) and globs into sorted URIs.

    A glob keeps every match with an audio extension, directories included, so a directory
    named ``x.wav`` becomes an input that fails with a clear reason instead of vanishing.
    Raises :class:`InputError` for a path that does not exist or a glob that matches nothing.
    """
    if not inputs:
        raise InputError("Expected at least one input path, got none")
    found: dict[str, None] = {}
    for raw in inputs:
        item = os.fspath(raw)
        check_url_credentials(item)
        if not is_url(item):
            item = os.path.abspath(os.path.expanduser(item.removeprefix("file://")))
        fs, path = filesystem(item, storage_options)
        try:
            if _has_magic(path):
                matches = sorted(fs.glob(path))
                hits = [m for m in matches if os.path.splitext(m)[1].lower() in AUDIO_EXTENSIONS or fs.isfile(m)]
                if not hits:
                    raise InputError(f"No files match {item}")
                for match in hits:
                    if fs.isdir(match) and os.path.splitext(match)[1].lower() not in AUDIO_EXTENSIONS:
                        hits_in_dir = _find_audio(fs, match)
                        found.update(dict.fromkeys(join_uri(fs, item, m) for m in hits_in_dir))
                    else:
                        found[join_uri(fs, item, match)] = None
            elif fs.isdir(path):
                hits = _find_audio(fs, path)
                if not hits and os.path.splitext(path)[1].lower() in AUDIO_EXTENSIONS:
                    hits = [path]  # a directory named like audio: an input that fails with a reason
                if not hits:
                    raise InputError(f"No audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) under {item}")
                found.update(dict.fromkeys(join_uri(fs, item, m) for m in hits))
            elif fs.exists(path):
                found[join_uri(fs, item, path)] = None
            else:
                raise InputError(f"No such file or directory: {item}")
        except InputError:
            raise
        except (OSError, ValueError) as exc:
            raise InputError(f"Cannot list {item}: {_one_line(exc)}") from exc
    return sorted(found)


def _find_audio(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    """Audio files under ``path``, plus directories named like audio files that hold none
    (``x.wav/``): those become inputs that fail with a reason instead of vanishing."""
    entries = fs.find(path, withdirs=True, detail=True)
    audio = [p for p, e in entries.items() if os.path.splitext(p)[1].lower() in AUDIO_EXTENSIONS]
    files = {p for p in audio if entries[p].get("type") != "directory"}
    lonely = {p for p in audio if p not in files and not any(f.startswith(p.rstrip("/") + "/") for f in files)}
    return sorted(files | lonely)


@dataclass(frozen=True)
class FileInfo:
    """What the header and the storage layer say about one input, before decoding."""

    uri: str
    size: int = 0
    fingerprint: str = ""
    sample_rate: int = 0
    channels: int = 0
    frames: int = 0
    format: str = ""
    error: str = ""
    #: what is odd but kept (a header that declares more frames than the file holds)
    warning: str = ""

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _one_line(exc: BaseException | str) -> str:
    return one_line(exc)[:500]


def _fingerprint(info: Mapping[str, Any]) -> tuple[int, str]:
    size = int(info.get("size") or 0)
    stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created") or ""
    if isinstance(stamp, float):
        stamp = f"{stamp:.6f}"
    return size, f"{size}-{str(stamp).strip(chr(34))}"


def fingerprint(uri: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """The current size + mtime/ETag fingerprint of ``uri`` ("" when it is gone)."""
    try:
        fs, path = filesystem(uri, storage_options)
        return _fingerprint(fs.info(path))[1]
    except (OSError, ValueError):
        return ""


@contextlib.contextmanager
def _open(uri: str, storage_options: Mapping[str, Any] | None) -> Iterator[str | IO[bytes]]:
    if not is_url(uri):
        yield uri
        return
    fs, path = filesystem(uri, storage_options)
    with fs.open(path, "rb") as handle:
        yield handle


def probe_file(uri: str, storage_options: Mapping[str, Any] | None = None) -> FileInfo:
    """Size, fingerprint and header facts of one input; never raises for a bad file.

    A problem is reported in :attr:`FileInfo.error` as one line in words.
    """
    try:
        fs, path = filesystem(uri, storage_options)
        meta = fs.info(path)
    except FileNotFoundError:
        return FileInfo(uri=uri, error="file not found")
    except Exception as exc:  # storage layer: report, never crash the manifest
        return FileInfo(uri=uri, error=f"cannot stat: {_one_line(exc)}")
    if meta.get("type") == "directory":
        return FileInfo(uri=uri, error="is a directory, not an audio file")
    special = _special_file(path) if not is_url(uri) else ""
    if special:  # opening a FIFO would block: say what it is instead
        return FileInfo(uri=uri, error=f"not a regular file ({special})")
    size, fingerprint = _fingerprint(meta)
    base = FileInfo(uri=uri, size=size, fingerprint=fingerprint)
    if size == 0:
        return _replace(base, error="empty file (0 bytes)")
    ext = os.path.splitext(path)[1].lower()
    warning, declared = "", 0
    try:
        if ext in _FFMPEG_ONLY:
            sample_rate, channels, frames, fmt = _ffprobe(uri, storage_options)
        else:
            with _open(uri, storage_options) as src:
                info = sf.info(src)
                declared = _declared_frames(src, str(info.format), int(info.channels), size)
            # libsndfile counts the frames a PCM file's bytes hold: the layout trusts that, not
            # a header that claims more (a 5-s WAV declaring 1,000 s, or 2^31 frames)
            sample_rate, channels, frames, fmt = int(info.samplerate), int(info.channels), int(info.frames), str(info.format)
            if declared > frames > 0:
                warning = (f"truncated: the header declares {declared} frames ({declared / sample_rate:.3f} s), "
                           f"the file holds {frames} ({frames / sample_rate:.3f} s)")
    except Exception as exc:
        return _replace(base, error=f"unreadable audio header: {_describe_sf_error(exc)}")
    if frames <= 0:
        reason = (f"no audio could be decoded: the header declares {declared} frames, the file holds none"
                  if declared > 0 else "no audio frames (header declares 0 samples)")
        return FileInfo(uri=uri, size=size, fingerprint=fingerprint, sample_rate=sample_rate,
                        channels=channels, frames=0, format=fmt, error=reason)
    if sample_rate <= 0 or channels <= 0:
        return _replace(base, error=f"invalid header: sample rate {sample_rate}, channels {channels}")
    return FileInfo(uri=uri, size=size, fingerprint=fingerprint, sample_rate=sample_rate,
                    channels=channels, frames=frames, format=fmt, warning=warning)


def _special_file(path: str) -> str:
    """What a local path is when it is not a regular file ("" for a regular file)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""
    kinds = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "")


def _declared_frames(src: str | IO[bytes], fmt: str, channels: int, size: int) -> int:
    """Frames a WAV header declares in its ``data`` chunk when that is more than the file holds
    (libsndfile reports what is present); the probe warns about the difference.

    Returns 0 when unknown (not WAV, streaming-size header, unparsable) or not more.
    """
    if fmt not in ("WAV", "WAVEX"):
        return 0
    try:
        if isinstance(src, str):
            with open(src, "rb") as handle:
                head = handle.read(65536)
        else:
            src.seek(0)
            head = src.read(65536)
    except OSError:
        return 0
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0
    pos, block_align = 12, 0
    while pos + 8 <= len(head):
        chunk_id, chunk_size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk_id == b"fmt " and pos + 22 <= len(head):
            block_align = int.from_bytes(head[pos + 20 : pos + 22], "little")
        elif chunk_id == b"data":
            if block_align <= 0 or chunk_size in (0, 0xFFFFFFFF) or pos + 8 + chunk_size <= size:
                return 0  # complete (or unknown): libsndfile's count is right
            return chunk_size // block_align
        pos += 8 + chunk_size + (chunk_size & 1)
    return 0


def _replace(info: FileInfo, **changes: Any) -> FileInfo:
    data = info.to_dict()
    data.update(changes)
    return FileInfo(**data)


def _describe_sf_error(exc: BaseException) -> str:
    text = _one_line(exc)
    # libsndfile says "not a regular file (possibly a pipe?)" of bytes it cannot recognise
    if "Format not recognised" in text or "unknown format" in text.lower() or "possibly a pipe" in text:
        return "not a recognised audio format"
    return text


@dataclass(frozen=True)
class Decoded:
    """Mono float32 audio at the target rate for a requested range, and what went wrong."""

    y: np.ndarray
    native_frames_read: int
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
        return Decoded(y=window.y, native_frames_read=window.native_end, warning=window.warning)
    tile = _tile_samples(native_sr, sr)
    tiles = [(0, total_out)] if total_out <= tile else [
        (k * tile, min((k + 1) * tile, total_out)) for k in range(start // tile, -(-stop // tile))
    ]
    parts: list[np.ndarray] = []
    resample_seconds, native_end, warning = 0.0, 0, ""
    for a, b in tiles:
        lo, hi = max(a, start), min(b, stop)
        window = _decode_window(uri, ext, storage_options, native_sr, sr, declared_frames, a, hi, lo, hi)
        parts.append(window.y)
        resample_seconds += window.resample_seconds
        native_end, warning = window.native_end, window.warning
        if warning or window.y.size < hi - lo:
            break  # the data ends inside this tile: the later ones hold nothing
    y = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return Decoded(y=np.ascontiguousarray(y, dtype=np.float32), native_frames_read=native_end, warning=warning,
                   resample_seconds=resample_seconds)


def _tile_samples(native_sr: int, sr: int) -> int:
    """Output samples per resampling tile: about ``_TILE_SECONDS``, a whole number of ratio steps."""
    step_out = sr // math.gcd(native_sr, sr)
    return max(1, round(_TILE_SECONDS * sr / step_out)) * step_out


@dataclass(frozen=True)
class _Window:
    y: np.ndarray
    native_end: int
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
    blocks = _ffmpeg_blocks if ext in _FFMPEG_ONLY else _soundfile_blocks
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
    return _Window(y=np.ascontiguousarray(y, dtype=np.float32), native_end=native_start + read, warning=warning,
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
                src = stack.enter_context(_open(uri, storage_options))
                handle = stack.enter_context(sf.SoundFile(src))
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                if not opened_once:
                    raise DecodeError(f"cannot decode audio: {_describe_sf_error(exc)}") from exc
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
                        raise DecodeError(f"cannot decode audio: {_describe_sf_error(exc)}") from exc
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
        raise StorageError(f"cannot read {uri}: {_one_line(exc)}") from exc
    return data


def _ffprobe(uri: str, storage_options: Mapping[str, Any] | None) -> tuple[int, int, int, str]:
    data = _read_bytes(uri, storage_options)
    proc = subprocess.run(
        [_ffmpeg_binary("ffprobe"), "-v", "error", "-select_streams", "a:0", "-show_entries",
         "stream=sample_rate,channels,duration:format=duration,format_name", "-of", "json", "-i", "pipe:0"],
        input=data, capture_output=True, check=False, timeout=120,
    )
    if proc.returncode != 0:
        raise DecodeError(_one_line(proc.stderr.decode(errors="replace")) or "ffprobe failed")
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
    _, channels, _, _ = _ffprobe(uri, storage_options)
    proc = subprocess.run(
        [_ffmpeg_binary("ffmpeg"), "-v", "error", "-i", "pipe:0", "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"],
        input=data, capture_output=True, check=False, timeout=3600,
    )
    if proc.returncode != 0 and not proc.stdout:
        raise DecodeError(f"cannot decode audio: {_one_line(proc.stderr.decode(errors='replace'))}")
    samples = np.frombuffer(proc.stdout, dtype="<f4").reshape(-1, max(channels, 1))[start:stop]
    for i in range(0, samples.shape[0], _BLOCK_FRAMES):
        yield _mono(samples[i : i + _BLOCK_FRAMES])


def read_text(uri: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """Whole text file (labels CSV) from any fsspec URL or local path."""
    try:
        fs, path = filesystem(uri if is_url(uri) else os.path.abspath(uri), storage_options)
        data: bytes = fs.cat_file(path)
        return data.decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"No such labels file: {uri}") from exc
    except OSError as exc:
        raise InputError(f"Cannot read {uri}: {_one_line(exc)}") from exc
