"""pipeline.dsp: each numpy port equals the librosa (scipy.signal) function it replaces, bit for
bit, and the process that extracts never imports librosa, numba or scipy.signal."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from pipeline import dsp
from pipeline._librosa import librosa

ROOT = Path(__file__).resolve().parents[1]

RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000)
FFTS = (256, 400, 512, 1023, 1024, 2048, 4096)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal values, dtype and shape (NaN equal to NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


@pytest.mark.parametrize("sr", RATES)
def test_fft_frequencies(sr: int) -> None:
    for n_fft in FFTS:
        assert same(dsp.fft_frequencies(sr=sr, n_fft=n_fft), librosa.fft_frequencies(sr=sr, n_fft=n_fft)), n_fft


def test_mel_scale_conversions() -> None:
    hz = np.concatenate([np.linspace(0.0, 24000.0, 4801), [999.999, 1000.0, 1000.001]])
    assert same(dsp.hz_to_mel(hz), librosa.hz_to_mel(hz))
    for f in (0.0, 300.0, 999.0, 1000.0, 4000.5, 11025.0):
        assert same(dsp.hz_to_mel(f), librosa.hz_to_mel(f)), f
    mels = np.linspace(0.0, 60.0, 6001)
    assert same(dsp.mel_to_hz(mels), librosa.mel_to_hz(mels))


@pytest.mark.parametrize("sr", RATES)
def test_mel_frequencies(sr: int) -> None:
    for n_mels in (20, 40, 64, 80, 82, 128, 130):
        for fmin, fmax in ((0.0, sr / 2), (20.0, sr / 2), (300.0, min(sr / 2, 3800.0)), (0.0, sr / 2 - 1.5)):
            assert same(dsp.mel_frequencies(n_mels, fmin=fmin, fmax=fmax),
                        librosa.mel_frequencies(n_mels=n_mels, fmin=fmin, fmax=fmax)), (n_mels, fmin, fmax)


def _with_warnings(fn: object, **kw: object) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(**kw)  # type: ignore[operator]
    return out, [str(w.message) for w in caught]


@pytest.mark.parametrize("sr", RATES)
def test_mel_filters(sr: int) -> None:
    for n_fft in FFTS:
        for n_mels in (20, 40, 80, 128):
            for fmin, fmax in ((0.0, sr / 2), (30.0, sr / 2), (300.0, min(sr / 2, 3800.0))):
                kw = {"sr": sr, "n_fft": n_fft, "n_mels": n_mels, "fmin": fmin, "fmax": fmax}
                port, port_warned = _with_warnings(dsp.mel_filters, **kw)
                ref, ref_warned = _with_warnings(librosa.filters.mel, **kw)
                assert same(port, ref), kw
                assert port_warned == ref_warned, kw  # the empty-filter warning, when librosa gives it


@pytest.mark.parametrize("n_chroma", [12, 24, 36])
def test_chroma_filters_at_every_tuning_the_estimate_gives(n_chroma: int) -> None:
    tunings = [round(-0.5 + 0.01 * k, 2) for k in range(100)]  # the histogram's edges (pipeline.tuning)
    for sr, n_fft in ((8000, 256), (16000, 512), (22050, 2048), (44100, 1024), (48000, 4096), (22050, 1023)):
        for tuning in tunings if (sr, n_fft) == (22050, 2048) else tunings[::7]:
            assert same(dsp.chroma_filters(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=n_chroma),
                        librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=n_chroma)), (sr, n_fft, tuning)


def test_normalize() -> None:
    rng = np.random.default_rng(3)
    S = rng.normal(size=(12, 300)) * np.exp(rng.uniform(-20, 20, size=(1, 300)))
    S[:, :3] = 0.0  # below the threshold: left as they are
    S[:, 3] = 1e-310
    for norm in (1, 2, 2.0, 3.5):
        for axis in (0, 1, -1):
            assert same(dsp.normalize(S, norm=norm, axis=axis), librosa.util.normalize(S, norm=norm, axis=axis))
    S32 = S.astype(np.float32)
    assert same(dsp.normalize(S32, norm=1, axis=0), librosa.util.normalize(S32, norm=1, axis=0))


def test_hz_to_octs() -> None:
    f = np.linspace(1.0, 24000.0, 9000)
    for tuning in (-0.5, -0.13, 0.0, 0.27, 0.49):
        for bins in (12, 24, 36):
            assert same(dsp.hz_to_octs(f, tuning=tuning, bins_per_octave=bins),
                        librosa.hz_to_octs(f, tuning=tuning, bins_per_octave=bins))


def test_hann_window() -> None:
    # every STFT size up to 4100, and the tempo's autocorrelation windows (8 s of frames)
    sizes = [*range(1, 4101), *(int(8.0 * sr) // hop for sr in RATES for hop in (128, 256, 441, 512, 1024))]
    for n in sizes:
        assert same(dsp.hann_window(n), librosa.filters.get_window("hann", n, fftbins=True)), n


def test_tempo_frequencies() -> None:
    for sr in RATES:
        for hop in (128, 256, 512, 1024):
            n = int(8.0 * sr) // hop
            assert same(dsp.tempo_frequencies(n, hop_length=hop, sr=sr), librosa.tempo_frequencies(n, hop_length=hop, sr=sr))


def test_abs2() -> None:
    rng = np.random.default_rng(5)
    z = (rng.normal(size=200_000) + 1j * rng.normal(size=200_000)) * np.exp(rng.uniform(-300, 300, size=200_000))
    assert same(dsp.abs2(z), librosa.util.abs2(z))


def test_parabolic_shift() -> None:
    rng = np.random.default_rng(11)
    parts = []
    for scale in (1e-38, 1e-20, 1e-6, 1.0, 1e6, 1e30):
        x = (np.abs(rng.normal(size=(100_000, 3))) * scale).astype(np.float32)
        x[::5, 1] = np.maximum(x[::5, 0], x[::5, 2]) * np.float32(1.00001)  # peaks, as the tuning asks for
        x[::11, 2] = x[::11, 0]  # symmetric: no shift
        parts.append(x)
    x = np.concatenate([*parts, np.zeros((3, 3), np.float32), np.array([[1, 1, 1], [0, 1, 0], [1, 2, 4]], np.float32)])
    ref = librosa.core.pitch._parabolic_interpolation(x, axis=-1)[:, 1]
    assert same(dsp.parabolic_shift(x[:, 0], x[:, 1], x[:, 2]), ref)


@pytest.mark.parametrize("order", [1, 2])
def test_savgol_deriv_taps(order: int) -> None:
    width = 9
    for n in (*range(width, 140), 258, 431, 517, 862, 1034, 1293, 2585):
        D = scipy.signal.savgol_filter(np.eye(n), width, polyorder=order, deriv=order, axis=0, mode="interp")
        start, weights = dsp.savgol_deriv_taps(n, width, order)
        assert same(start, np.clip(np.arange(n) - width // 2, 0, n - width)), n
        assert same(weights, D[np.arange(n)[:, None], start[:, None] + np.arange(width)]), n
        assert np.count_nonzero(D) == np.count_nonzero(weights), n  # nothing outside the taps


def test_decode_mono_is_librosa_to_mono() -> None:
    """decode's channel mean (numpy already) is ``librosa.to_mono`` of soundfile's frames transposed,
    the view librosa.load passes it."""
    from pipeline.decode import _mono

    rng = np.random.default_rng(2)
    for channels in range(1, 9):
        block = (rng.normal(size=(50_000, channels)) * np.exp(rng.uniform(-5, 5, size=(50_000, 1)))).astype(np.float32)
        assert same(_mono(block), librosa.to_mono(block.T)), channels


# a default extract in this process, then which modules it imported
_EXTRACT = """
import sys
from pipeline.config import FeatureConfig
from pipeline.families.builtin import ORDER
from pipeline.graph import extract
configs = {"default": FeatureConfig(), "all": FeatureConfig(sr=16000, features=ORDER),
           "mel": FeatureConfig(features=("mel", "mfcc"))}
report = extract([sys.argv[1]], sys.argv[2], configs[sys.argv[3]], scheduler="synchronous", progress=False)
assert report.files_ok == 3 and report.chunks_computed > 0, report
print(" ".join(m for m in ("librosa", "numba", "scipy.signal") if m in sys.modules) or "none")
"""


@pytest.mark.parametrize("families", ["default", "all", "mel"])
def test_extract_imports_no_librosa_numba_or_scipy_signal(tmp_path: Path, families: str) -> None:
    """conftest.py imports librosa in this process: the extract runs in a fresh one ("mel": a run
    on the float32 STFT, scipy.fft's)."""
    import soundfile as sf

    audio = tmp_path / "in"
    audio.mkdir()
    rng = np.random.default_rng(1)
    for name, sr, channels in (("a.wav", 22050, 1), ("b.wav", 16000, 2), ("c.flac", 44100, 1)):
        sf.write(audio / name, (0.1 * rng.normal(size=(int(3.5 * sr), channels))).astype(np.float32), sr)
    result = subprocess.run([sys.executable, "-c", _EXTRACT, str(audio), str(tmp_path / "s.zarr"), families],
                            capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[-2] == "none", result.stdout
