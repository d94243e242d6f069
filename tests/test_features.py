"""Kernel parity: batched one-STFT features against plain librosa calls, per segment."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
from conftest import require_tool
from reference import assert_segment_close, reference_segment

from pipeline import testing
from pipeline.config import ALL_FEATURES, FeatureConfig
from pipeline.features import compute_features, estimate_tuning, stft, summarize

CONFIGS = {
    "default": FeatureConfig(features=ALL_FEATURES),
    "nfft1024-hop256": FeatureConfig(n_fft=1024, hop_length=256, features=ALL_FEATURES),
    "sr16k-mels64": FeatureConfig(sr=16000, n_mels=64, n_mfcc=13, features=ALL_FEATURES),
    # frames not a whole number of hops: the running-sum path of ZCR and RMS
    "nfft2000-hop441": FeatureConfig(n_fft=2000, hop_length=441, features=ALL_FEATURES),
    # odd n_fft with a hop that divides the segment: one frame fewer than 1 + samples // hop
    "nfft1023-hop441": FeatureConfig(n_fft=1023, hop_length=441, features=ALL_FEATURES),
    "segment30s": FeatureConfig(segment_seconds=30.0, features=("mel", "mfcc", "chroma", "spectral", "zcr", "rms")),
}


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, y.size)] = y[:n]
    return out


def signals(config: FeatureConfig, tmp_path: Path) -> dict[str, np.ndarray]:
    """One segment each: tones, noise, a chirp, silence, real speech, sox-made music, padding."""
    sr, n = config.sr, config.segment_samples
    seconds = n / sr
    speech, speech_sr = testing.speech_clip("The quick brown fox jumps over the lazy dog.", sr=sr)
    music = testing.sox_music(tmp_path / "music.wav", seconds=min(seconds, 6.0), sr=sr)
    music_y, _ = librosa.load(music, sr=sr, mono=True)
    return {
        "tone": testing.tone(freq=440.0, seconds=seconds, sr=sr),
        "detuned-chord": (testing.tone(freq=262.0, seconds=seconds, sr=sr) + testing.tone(freq=331.0, seconds=seconds, sr=sr)) * 0.5,
        "noise": testing.noise(seconds=seconds, sr=sr, seed=3),
        "pink": testing.noise(seconds=seconds, sr=sr, seed=4, color="pink"),
        "chirp": testing.chirp(f0=60.0, f1=sr / 2.5, seconds=seconds, sr=sr),
        "silence": testing.silence(seconds=seconds, sr=sr),
        "speech": librosa.resample(speech, orig_sr=speech_sr, target_sr=sr),
        "sox-music": music_y,
        "padded-tone": testing.tone(freq=1000.0, seconds=seconds * 0.4, sr=sr),
        "genre-rock": testing.genre_clip("rock", seconds=seconds, sr=sr, seed=1),
    }


@pytest.fixture(scope="module")
def tools() -> None:
    require_tool("espeak-ng")
    require_tool("sox")


@pytest.mark.usefixtures("tools")
@pytest.mark.parametrize("name", list(CONFIGS))
def test_kernels_match_librosa(name: str, tmp_path: Path) -> None:
    config = CONFIGS[name]
    segs = {k: _fit(np.asarray(v, dtype=np.float32), config.segment_samples) for k, v in signals(config, tmp_path).items()}
    batch = np.stack(list(segs.values()))
    got = compute_features(batch, config)
    assert set(got) == set(config.frame_variables)
    for i, (signal, y) in enumerate(segs.items()):
        ref = reference_segment(y, config)
        try:
            assert_segment_close({var: got[var][i] for var in ref}, ref, y, config)
        except AssertionError as exc:
            raise AssertionError(f"{name}/{signal}: {exc}") from None


@pytest.mark.parametrize(("n_fft", "hop"), [(2048, 512), (1024, 256), (2000, 441)])
def test_stft_is_librosa_bit_for_bit(rng: np.random.Generator, n_fft: int, hop: int) -> None:
    """The tuning estimate (and with it chroma) depends on the last bits of the power spectrum."""
    y = rng.normal(0, 0.1, (4, 22050)).astype(np.float32)
    y[1, 5000:] = 0.0  # a zero-padded tail: its frames are skipped, their spectra still exact
    y[2] = 0.0
    y[3, :-1] = 0.0
    ours = stft(y=y, n_fft=n_fft, hop_length=hop)
    theirs = librosa.stft(y, n_fft=n_fft, hop_length=hop, center=True, pad_mode="constant")
    np.testing.assert_array_equal(ours, np.swapaxes(theirs, 1, 2))


def _invariance_pool(config: FeatureConfig, rng: np.random.Generator) -> np.ndarray:
    """Segments whose audio ends at different frames (the batch's longest sets how many frames
    are transformed), silence, one sample, full-length tones, noise and music."""
    sr, n = config.sr, config.segment_samples
    seconds = n / sr
    pool = np.zeros((10, n), dtype=np.float32)
    pool[0] = testing.tone(freq=440.0, seconds=seconds, sr=sr)[:n]
    pool[1] = testing.noise(seconds=seconds, sr=sr, seed=5)[:n]
    pool[2] = testing.genre_clip("rock", seconds=seconds, sr=sr, seed=3)[:n]
    pool[3, : n // 5] = testing.chirp(f0=80.0, f1=sr / 3, seconds=seconds, sr=sr)[: n // 5]
    pool[4, : n // 2] = rng.normal(0, 0.2, n // 2)
    pool[5, 3000] = 0.5  # one sample
    # pool[6] stays silent
    pool[7, : 2 * n // 3] = testing.genre_clip("jazz", seconds=seconds, sr=sr, seed=4)[: 2 * n // 3]
    pool[8] = testing.tone(freq=262.0, seconds=seconds, sr=sr)[:n] * 0.3 + rng.normal(0, 0.01, n)
    pool[9, : sr // 10] = testing.tone(freq=3000.0, seconds=0.1, sr=sr)[: sr // 10]
    return pool


def _featurise_bits(batch: np.ndarray, config: FeatureConfig) -> list[dict[str, np.ndarray]]:
    """Per segment of the batch: every frame-level variable and its summaries, as stored."""
    feats = compute_features(batch, config)
    frames = np.full(batch.shape[0], config.n_frames)
    out: list[dict[str, np.ndarray]] = [{} for _ in range(batch.shape[0])]
    for name, values in feats.items():
        stats = summarize(values, frames)
        for i in range(batch.shape[0]):
            out[i][name] = values[i]
            out[i][f"{name}_mean"] = stats["mean"][i]
            out[i][f"{name}_std"] = stats["std"][i]
    return out


@pytest.mark.parametrize("name", ["default", "nfft1023-hop441", "sr16k-mels64"])
def test_a_segments_features_do_not_depend_on_its_batch(rng: np.random.Generator, name: str) -> None:
    """Bit for bit: a segment alone, at every position of a batch, and in batches of every
    size from 1 to 12 (with partners whose audio ends elsewhere) gets the same arrays."""
    config = CONFIGS[name]
    pool = _invariance_pool(config, rng)
    alone = [_featurise_bits(pool[i : i + 1], config)[0] for i in range(len(pool))]

    def check(batch_rows: list[int], where: str) -> None:
        got = _featurise_bits(pool[batch_rows], config)
        for pos, row in enumerate(batch_rows):
            for var, values in alone[row].items():
                if not np.array_equal(got[pos][var], values, equal_nan=True):
                    diff = np.abs(got[pos][var].astype(np.float64) - values)
                    raise AssertionError(
                        f"{name}: segment {row} at position {pos} of {where}: {var} differs from the "
                        f"segment alone in {np.count_nonzero(diff)} values (max {diff.max():.3g})"
                    )

    order = list(rng.permutation(len(pool)))
    for shift in range(len(pool)):  # every segment at every position of a batch of 8
        rows = [int(r) for r in np.roll(order, shift)[:8]]
        check(rows, f"a batch of 8 {rows}")
    for size in range(1, 13):  # batches of every size, partners drawn with repeats
        rows = [int(r) for r in rng.integers(0, len(pool), size)]
        check(rows, f"a batch of {size} {rows}")


@pytest.mark.parametrize(("sr", "n_fft"), [(22050, 2048), (16000, 1024), (8000, 512), (44100, 4096)])
def test_tuning_matches_librosa_per_segment(rng: np.random.Generator, sr: int, n_fft: int) -> None:
    t = np.arange(sr * 2) / sr
    segs = np.stack([
        np.sin(2 * np.pi * 440 * 2 ** (cents / 1200) * t) for cents in (-30, 0, 17)
    ] + [rng.normal(0, 0.1, t.size)]).astype(np.float32)
    power = np.abs(librosa.stft(segs, n_fft=n_fft)) ** 2
    ours = estimate_tuning(S=np.swapaxes(power, 1, 2), sr=sr)
    for i in range(segs.shape[0]):
        assert ours[i] == librosa.estimate_tuning(S=power[i], sr=sr)


def test_summaries_use_valid_frames_only(rng: np.random.Generator) -> None:
    values = rng.normal(size=(2, 10, 3)).astype(np.float32)
    stats = summarize(values, np.array([4, 10]))
    np.testing.assert_allclose(stats["mean"][0], values[0, :4].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats["std"][0], values[0, :4].std(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats["mean"][1], values[1].mean(axis=0), rtol=1e-5)
    scalar = summarize(values[:, :, 0], np.array([1, 3]))
    assert scalar["std"][0] == 0.0
    assert scalar["mean"].shape == (2,)


def test_wrong_segment_length_is_refused() -> None:
    with pytest.raises(ValueError, match="Expected segments of"):
        compute_features(np.zeros((1, 100), dtype=np.float32), FeatureConfig())
    with pytest.raises(ValueError, match="Expected y with shape"):
        compute_features(np.zeros(100, dtype=np.float32), FeatureConfig())


def test_a_batch_of_short_files_skips_the_padding_and_still_matches_librosa(rng: np.random.Generator) -> None:
    """Only the frames up to the batch's last audio are transformed (1-s files in 3-s segments
    cost a third); the padding's frames get librosa's constants (-100 dB, zeros)."""
    config = FeatureConfig(features=ALL_FEATURES)
    sr, n = config.sr, config.segment_samples
    batch = np.zeros((3, n), dtype=np.float32)
    batch[0, :sr] = testing.genre_clip("jazz", seconds=1.0, sr=sr, seed=2)[:sr]
    batch[1, : sr // 2] = rng.normal(0, 0.1, sr // 2)
    got = compute_features(batch, config)
    for i in range(3):
        ref = reference_segment(batch[i], config)
        assert_segment_close({var: got[var][i] for var in ref}, ref, batch[i], config)
