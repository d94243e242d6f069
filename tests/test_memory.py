"""Bounded memory: a 40-minute 44.1 kHz stereo WAV, decoded and resampled in blocks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from pipeline import FeatureConfig, open_store
from pipeline.testing import assert_segment_close, reference_segment

pytestmark = pytest.mark.slow
LIMIT_BYTES = 1.5 * 2**30


def write_long_wav(path: Path, minutes: float, sr: int = 44100) -> None:
    """A 16-bit stereo WAV written block by block (the test itself stays small)."""
    rng = np.random.default_rng(5)
    total = int(minutes * 60 * sr)
    block = sr * 30
    with sf.SoundFile(path, "w", samplerate=sr, channels=2, subtype="PCM_16") as out:
        for start in range(0, total, block):
            t = (np.arange(start, min(total, start + block)) / sr)[:, None]
            left = 0.3 * np.sin(2 * np.pi * (220 + 30 * np.sin(t / 7)) * t)
            right = 0.2 * np.sin(2 * np.pi * 330 * t) + rng.normal(0, 0.02, t.shape)
            out.write(np.hstack([left, right]).astype(np.float32))


def test_forty_minute_file_in_bounded_memory_and_exact_at_boundaries(tmp_path: Path) -> None:
    wav = tmp_path / "long.wav"
    write_long_wav(wav, 40.0)
    store = tmp_path / "long.zarr"
    code = (
        "import resource, sys\n"
        "from pipeline.cli import main\n"
        f"rc = main(['extract', {str(wav)!r}, '-o', {str(store)!r}, '--scheduler', 'synchronous', '--no-progress'])\n"
        # VmHWM: this process's own peak (ru_maxrss would include pytest's, inherited at fork)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
        "print('MAXRSS_KB', int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr
    peak = int(proc.stdout.split("MAXRSS_KB", 1)[1].split()[0]) * 1024
    print(f"peak RSS {peak / 2**20:.0f} MiB for 40 min of 44.1 kHz stereo")
    assert peak < LIMIT_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"

    config = FeatureConfig()
    ds = open_store(str(store))
    chunk = int(ds.attrs["segment_chunk"])
    assert ds.sizes["segment"] == 800 and ds.sizes["chunk"] >= 3
    y, _ = librosa.load(wav, sr=config.sr, mono=True)
    # segments on both sides of every chunk boundary, plus the first and the last
    picks = sorted({0, ds.sizes["segment"] - 1} | {b + d for b in range(chunk, ds.sizes["segment"], chunk) for d in (-1, 0)})
    for s in picks:
        start = round(float(ds["segment_offset"].values[s]) * config.sr)
        seg = np.zeros(config.segment_samples, dtype=np.float32)
        part = y[start : start + config.segment_samples]
        seg[: part.size] = part
        ref = reference_segment(seg, config)
        assert_segment_close({var: ds[var].isel(segment=s).values for var in ref}, ref, seg, config)
