"""Probing: what the storage layer and the header say about one input, before decoding.

:func:`probe_file` never raises for a bad file: a problem is one line in words in
:attr:`FileInfo.error`, and the manifest records it. A header that declares more audio than
the file holds is kept with a warning; the layout trusts the frames the data holds.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import soundfile as sf

from .decode import FFMPEG_ONLY, describe_sf_error, ffprobe, open_input
from .errors import MESSAGE_LIMIT, one_line
from .io import filesystem, is_url, stat_fingerprint

__all__ = ["FileInfo", "ManifestEntry", "probe_file", "probe_many"]


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
        return FileInfo(uri=uri, error=f"cannot stat: {one_line(exc, MESSAGE_LIMIT)}")
    if meta.get("type") == "directory":
        return FileInfo(uri=uri, error="is a directory, not an audio file")
    special = _special_file(path) if not is_url(uri) else ""
    if special:  # opening a FIFO would block: say what it is instead
        return FileInfo(uri=uri, error=f"not a regular file ({special})")
    size, fingerprint = stat_fingerprint(meta)
    base = FileInfo(uri=uri, size=size, fingerprint=fingerprint)
    if size == 0:
        return dataclasses.replace(base, error="empty file (0 bytes)")
    ext = os.path.splitext(path)[1].lower()
    warning, declared = "", 0
    try:
        if ext in FFMPEG_ONLY:
            sample_rate, channels, frames, fmt = ffprobe(uri, storage_options)
        else:
            with open_input(uri, storage_options) as src:
                info = sf.info(src)
                declared = _declared_frames(src, str(info.format), int(info.channels), size)
            # libsndfile counts the frames a PCM file's bytes hold: the layout trusts that, not
            # a header that claims more (a 5-s WAV declaring 1,000 s, or 2^31 frames)
            sample_rate, channels, frames, fmt = int(info.samplerate), int(info.channels), int(info.frames), str(info.format)
            if declared > frames > 0:
                warning = (f"truncated: the header declares {declared} frames ({declared / sample_rate:.3f} s), "
                           f"the file holds {frames} ({frames / sample_rate:.3f} s)")
    except Exception as exc:
        return dataclasses.replace(base, error=f"unreadable audio header: {describe_sf_error(exc)}")
    if frames <= 0:
        reason = (f"no audio could be decoded: the header declares {declared} frames, the file holds none"
                  if declared > 0 else "no audio frames (header declares 0 samples)")
        return FileInfo(uri=uri, size=size, fingerprint=fingerprint, sample_rate=sample_rate,
                        channels=channels, frames=0, format=fmt, error=reason)
    if sample_rate <= 0 or channels <= 0:
        return dataclasses.replace(base, error=f"invalid header: sample rate {sample_rate}, channels {channels}")
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


def probe_many(uris: Sequence[str], storage_options: Mapping[str, Any] | None = None) -> list[FileInfo]:
    """:func:`probe_file` of each URI (one task's batch on a cluster)."""
    return [probe_file(uri, storage_options) for uri in uris]


@dataclass(frozen=True)
class ManifestEntry:
    """One input of a run's manifest: its header facts, label and split."""

    info: FileInfo
    label: str
    split: str
