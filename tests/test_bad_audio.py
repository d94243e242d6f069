"""Bad audio is recorded with a reason and loses nothing; odd-but-valid audio is processed."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import require_tool

from pipeline import FeatureConfig, extract, open_store
from pipeline.store import as_text, open_raw

CONFIG = FeatureConfig(features=("mel", "mfcc", "chroma", "spectral", "zcr", "rms"), n_mels=40, n_mfcc=13)


def _tone(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 330 * t)
    return np.repeat(y[:, None], channels, axis=1).astype(np.float32) if channels > 1 else y.astype(np.float32)


def make_bad(root: Path, rng: np.random.Generator) -> dict[str, str]:
    """Every kind of bad input, with the words its reason must contain."""
    root.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}

    def bad(name: str, content: bytes, reason: str) -> None:
        (root / name).write_bytes(content)
        expected[str(root / name)] = reason

    bad("zero.wav", b"", "empty file")
    bad("text.wav", b"hello, I am not a wav file\n" * 20, "not a recognised audio format")
    bad("random.flac", rng.bytes(5000), "not a recognised audio format")
    bad("random.mp3", rng.bytes(5000), "unreadable audio header: not a recognised audio format")
    sf.write(root / "zero_frames.wav", np.zeros(0, dtype=np.float32), 22050)
    expected[str(root / "zero_frames.wav")] = "no audio frames"
    header = (root / "zero_frames.wav").read_bytes()[:44]
    declared = bytearray(header)
    declared[40:44] = (22050 * 2).to_bytes(4, "little")  # claims 1 s of 16-bit audio, holds none
    bad("header_only.wav", bytes(declared), "no audio could be decoded")
    y = _tone(2.0, 22050)
    y[1000] = np.nan
    sf.write(root / "nan.wav", y, 22050, subtype="FLOAT")
    expected[str(root / "nan.wav")] = "non-finite"
    y = _tone(2.0, 22050)
    y[-5] = np.inf
    sf.write(root / "inf.wav", y, 22050, subtype="DOUBLE")
    expected[str(root / "inf.wav")] = "non-finite"
    (root / "x.wav").mkdir()
    expected[str(root / "x.wav")] = "is a directory"
    os.mkfifo(root / "pipe.wav")  # opening it would block: never opened
    expected[str(root / "pipe.wav")] = "not a regular file (a named pipe (FIFO))"
    return expected


def make_odd(root: Path) -> list[str]:
    """Odd but valid audio: every one must be processed."""
    require_tool("ffmpeg")
    root.mkdir(parents=True, exist_ok=True)
    sf.write(root / "pcm8.wav", _tone(1.5, 11025), 11025, subtype="PCM_U8")
    sf.write(root / "pcm24.flac", _tone(2.0, 48000, 2), 48000, subtype="PCM_24")
    sf.write(root / "float.wav", _tone(2.0, 22050), 22050, subtype="FLOAT")
    sf.write(root / "eight_channels.wav", _tone(1.0, 16000, 8), 16000, subtype="PCM_16")
    sf.write(root / "hires.wav", _tone(1.0, 192000, 2), 192000, subtype="PCM_24")
    sf.write(root / "one_sample.wav", np.array([0.25], dtype=np.float32), 22050, subtype="PCM_16")
    sf.write(root / "clip.aiff", _tone(1.2, 44100), 44100, subtype="PCM_16")
    sf.write(root / "clip.ogg", _tone(2.5, 44100), 44100, format="OGG", subtype="VORBIS")
    sf.write(root / "for_mp3.wav", _tone(3.2, 44100), 44100)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(root / "for_mp3.wav"), str(root / "clip.mp3")], check=True)
    (root / "for_mp3.wav").unlink()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                    "-c:a", "aac", str(root / "clip.m4a")], check=True)
    return sorted(str(p) for p in root.iterdir())


def test_bad_and_odd_audio_in_one_run(tmp_path: Path, rng: np.random.Generator) -> None:
    bad = make_bad(tmp_path / "in" / "bad", rng)
    odd = make_odd(tmp_path / "in" / "odd")
    store = str(tmp_path / "store.zarr")
    report = extract([str(tmp_path / "in" / "*" / "*")], store, CONFIG, scheduler="synchronous",
                     label_from="parent", progress=False, segment_chunk=4)
    reasons = dict(report.failed)
    assert set(reasons) == set(bad), sorted(set(reasons) ^ set(bad))
    for path, words in bad.items():
        assert words in reasons[path], (path, reasons[path])
        assert "\n" not in reasons[path]
    assert report.files_ok == len(odd)

    ds = open_store(store)
    shown = set(as_text(ds["file_path"])[ds["segment_file"].values])
    assert shown == set(odd)
    for var in ds.data_vars.values():
        assert not np.isnan(var.values).any(), var.name
    raw = open_raw(store)
    status = dict(zip(as_text(raw["file_path"]), as_text(raw["file_status"]), strict=True))
    assert {status[p] for p in bad} == {"error"}
    assert {status[p] for p in odd} == {"ok"}
    # a file that failed while decoding had segments allocated from its header: hidden, not data
    hidden = raw["segment_file"].values[~raw["segment_valid"].values.astype(bool)]
    assert {as_text(raw["file_path"])[i] for i in hidden if i >= 0} <= set(bad)


def test_truncated_files_keep_what_decodes(tmp_path: Path, rng: np.random.Generator) -> None:
    root = tmp_path / "cut"
    root.mkdir()
    sf.write(root / "full.wav", _tone(9.0, 22050), 22050, subtype="PCM_16")
    data = (root / "full.wav").read_bytes()
    (root / "cut.wav").write_bytes(data[: 44 + 2 * 22050 * 4])  # header says 9 s, 4 s remain
    sf.write(root / "full.flac", rng.normal(0, 0.1, 22050 * 9).astype(np.float32), 22050)
    flac = (root / "full.flac").read_bytes()
    (root / "cut.flac").write_bytes(flac[: len(flac) // 2])
    (root / "full.wav").unlink()
    (root / "full.flac").unlink()
    store = str(tmp_path / "cut.zarr")
    report = extract([root], store, CONFIG, scheduler="synchronous", progress=False)
    assert report.files_ok == 2 and report.files_warned == 2 and report.files_failed == 0
    warned = dict(report.warned)
    # a PCM WAV's length follows from its bytes: laid out as what it holds, the header's claim noted
    assert "truncated: the header declares 198450 frames (9.000 s), the file holds 88200 (4.000 s)" in warned[str(root / "cut.wav")]
    assert "truncated: decoded" in warned[str(root / "cut.flac")]  # a FLAC's is known by decoding
    ds = open_store(store)
    per_file = dict(zip(*np.unique(ds["segment_file"].values, return_counts=True), strict=True))
    paths = list(as_text(ds["file_path"]))
    assert per_file[paths.index(str(root / "cut.wav"))] == 1  # 4 s: one full segment, 1 s dropped
    assert not np.isnan(ds["mel"].values).any()
    raw = open_raw(store)
    assert int(raw["file_segments"].values[paths.index(str(root / "cut.wav"))]) == 1  # laid out from the bytes
    assert report.segments == ds.sizes["segment"]


def _lying_wav(path: Path, seconds: float, declared_frames: int, *, subtype: str = "PCM_16", sr: int = 22050) -> None:
    """A WAV holding ``seconds`` of audio whose data chunk declares ``declared_frames``."""
    sf.write(path, _tone(seconds, sr), sr, subtype=subtype)
    data = bytearray(path.read_bytes())
    at = data.index(b"data")
    width = {"PCM_16": 2, "PCM_U8": 1}[subtype]
    data[at + 4 : at + 8] = struct.pack("<I", min(declared_frames * width, 0xFFFFFFFE))
    path.write_bytes(bytes(data))


def test_a_header_that_lies_about_its_length_costs_nothing(tmp_path: Path) -> None:
    """A 5-s WAV declaring 1,000 s (more than a chunk) and a 1-s 8-bit WAV declaring 2^31
    frames: laid out as what they hold, their audio kept, the claim in file_warning; a FLAC
    truncated inside a later chunk keeps what decodes wherever the truncation falls."""
    root = tmp_path / "lies"
    root.mkdir()
    _lying_wav(root / "long_claim.wav", 5.0, 22050 * 1000)
    _lying_wav(root / "huge_claim.wav", 1.0, 2**31, subtype="PCM_U8")
    sf.write(root / "full.flac", _tone(30.0, 22050), 22050)
    flac = (root / "full.flac").read_bytes()
    (root / "late_cut.flac").write_bytes(flac[: len(flac) * 6 // 10])  # breaks off in the 4th of 5 chunks
    (root / "full.flac").unlink()
    store = str(tmp_path / "lies.zarr")
    report = extract([root], store, CONFIG, scheduler="synchronous", progress=False, segment_chunk=2)
    assert report.files_failed == 0 and report.files_ok == 3 and report.files_warned == 3, report.failed
    warned = dict(report.warned)
    assert "the header declares 22050000 frames (1000.000 s), the file holds 110250 (5.000 s)" in warned[str(root / "long_claim.wav")]
    assert "the header declares 2147483648 frames" in warned[str(root / "huge_claim.wav")]
    assert "truncated: decoded" in warned[str(root / "late_cut.flac")]
    raw = open_raw(store)
    assert raw.sizes["segment"] < 20, "the layout followed a header's claim"  # 2 + 1 + 10 allocated
    ds = open_store(store)
    paths = list(as_text(ds["file_path"]))
    per_file = dict(zip(*np.unique(ds["segment_file"].values, return_counts=True), strict=True))
    assert per_file[paths.index(str(root / "long_claim.wav"))] == 2  # 0-3 s and 3-5 s
    assert per_file[paths.index(str(root / "huge_claim.wav"))] == 1
    assert 5 <= per_file[paths.index(str(root / "late_cut.flac"))] <= 6  # about 17 of 30 s decode
    assert report.segments == ds.sizes["segment"]  # the summary counts what readers see
    assert not np.isnan(ds["mel"].values).any()


def test_strict_exit_code_and_summary(tmp_path: Path, rng: np.random.Generator) -> None:
    bad = make_bad(tmp_path / "in" / "bad", rng)
    good = tmp_path / "in" / "good"
    good.mkdir()
    sf.write(good / "ok.wav", _tone(3.0, 22050), 22050)
    base = [sys.executable, "-m", "pipeline", "extract", str(tmp_path / "in"), str(tmp_path / "in" / "bad" / "x.wav"),
            "-o", str(tmp_path / "s.zarr"), "--scheduler", "synchronous", "--features", "rms", "--no-progress"]
    proc = subprocess.run(base, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"({len(bad) + 1} files (1 ok, 0 warned, {len(bad)} failed)" in f"({proc.stdout}"
    proc = subprocess.run([*base, "--strict"], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
