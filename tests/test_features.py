"""Kernel parity: batched one-STFT features against plain librosa calls, per segment, on both
STFT paths: librosa's float64 bits (a run with a family declaring ``float64_stft``) and float32
(every other run), each held to the variables' declared tolerances."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import dask
import librosa
import numpy as np
import pytest
from conftest import require_tool

from pipeline import synth
from pipeline.config import FeatureConfig
from pipeline.errors import ConfigError, InputError
from pipeline.families import family, stft_precision
from pipeline.families.inputs import Inputs
from pipeline.features import (
    compute_features,
    estimate_tuning,
    live_frames,
    magnitude_spectrogram,
    power_to_db,
    rms,
    stft,
    summarize,
    zero_crossing_rate,
)
from pipeline.featurize import allocate, featurize_rows
from pipeline.testing import assert_segment_close, reference_segment, runnable_families


def every(**kw: Any) -> FeatureConfig:
    """A config with every family that runs with it (whisper needs sr 16000)."""
    return FeatureConfig(features=runnable_families(**kw), **kw)


CONFIGS = {
    "default": every(),
    "nfft1024-hop256": every(n_fft=1024, hop_length=256),
    "sr16k-mels64": every(sr=16000, n_mels=64, n_mfcc=13),
    # frames not a whole number of hops: the running-sum path of ZCR and RMS
    "nfft2000-hop441": every(n_fft=2000, hop_length=441),
    # odd n_fft with a hop that divides the segment: one frame fewer than 1 + samples // hop
    "nfft1023-hop441": every(n_fft=1023, hop_length=441),
    "segment30s": FeatureConfig(segment_seconds=30.0, features=("mel", "mfcc", "chroma", "spectral", "zcr", "rms")),
}


def float32_part(config: FeatureConfig) -> FeatureConfig:
    """``config`` with only its families that run on the float32 STFT (each alone)."""
    names = tuple(name for name in config.features if stft_precision((name,)) == "float32")
    return replace(config, features=names, stft_dtype=None)


def _path(config: FeatureConfig, precision: str) -> FeatureConfig:
    """The config whose run takes the STFT path ``precision``: all of it (with chroma: float64),
    or its families that tolerate float32."""
    out = config if precision == "float64" else float32_part(config)
    assert out.stft_dtype == stft_precision(out.features) == precision and any(family(n).consumes != ("waveform",) for n in out.features)
    return out


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, y.size)] = y[:n]
    return out


def signals(config: FeatureConfig, tmp_path: Path) -> dict[str, np.ndarray]:
    """One segment each: tones, noise, a chirp, silence, real speech, sox-made music, padding."""
    sr, n = config.sr, config.segment_samples
    seconds = n / sr
    speech, speech_sr = synth.speech_clip("The quick brown fox jumps over the lazy dog.", sr=sr)
    music = synth.sox_music(tmp_path / "music.wav", seconds=min(seconds, 6.0), sr=sr)
    music_y, _ = librosa.load(music, sr=sr, mono=True)
    return {
        "tone": synth.tone(freq=440.0, seconds=seconds, sr=sr),
        "detuned-chord": (synth.tone(freq=262.0, seconds=seconds, sr=sr) + synth.tone(freq=331.0, seconds=seconds, sr=sr)) * 0.5,
        "noise": synth.noise(seconds=seconds, sr=sr, seed=3),
        "pink": synth.noise(seconds=seconds, sr=sr, seed=4, color="pink"),
        "chirp": synth.chirp(f0=60.0, f1=sr / 2.5, seconds=seconds, sr=sr),
        "silence": synth.silence(seconds=seconds, sr=sr),
        "speech": librosa.resample(speech, orig_sr=speech_sr, target_sr=sr),
        "sox-music": music_y,
        "padded-tone": synth.tone(freq=1000.0, seconds=seconds * 0.4, sr=sr),
        "genre-rock": synth.genre_clip("rock", seconds=seconds, sr=sr, seed=1),
    }


@pytest.fixture(scope="module")
def tools() -> None:
    require_tool("espeak-ng")
    require_tool("sox")


@pytest.mark.usefixtures("tools")
@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_kernels_match_librosa(name: str, precision: str, tmp_path: Path) -> None:
    config = _path(CONFIGS[name], precision)
    segs = {k: _fit(np.asarray(v, dtype=np.float32), config.segment_samples) for k, v in signals(config, tmp_path).items()}
    batch = np.stack(list(segs.values()))
    got = compute_features(batch, config)
    assert set(got) == set(config.variables)
    for i, (signal, y) in enumerate(segs.items()):
        ref = reference_segment(y, config)
        try:
            assert_segment_close({var: got[var][i] for var in ref}, ref, y, config)
        except AssertionError as exc:
            raise AssertionError(f"{name}/{signal}: {exc}") from None


def _stft_batch(rng: np.random.Generator) -> np.ndarray:
    y = rng.normal(0, 0.1, (4, 22050)).astype(np.float32)
    y[1, 5000:] = 0.0  # a zero-padded tail: its frames are skipped, their spectra still exact
    y[2] = 0.0
    y[3, :-1] = 0.0
    return y


@pytest.mark.parametrize(("n_fft", "hop"), [(2048, 512), (1024, 256), (2000, 441)])
def test_stft_is_librosa_bit_for_bit(rng: np.random.Generator, n_fft: int, hop: int) -> None:
    """The tuning estimate (and with it chroma) depends on the last bits of the power spectrum."""
    y = _stft_batch(rng)
    theirs = np.swapaxes(librosa.stft(y, n_fft=n_fft, hop_length=hop, center=True, pad_mode="constant"), 1, 2)
    np.testing.assert_array_equal(stft(y=y, n_fft=n_fft, hop_length=hop), theirs)
    np.testing.assert_array_equal(stft(y=y, n_fft=n_fft, hop_length=hop, precision="float64"), theirs)
    np.testing.assert_array_equal(magnitude_spectrogram(y=y, n_fft=n_fft, hop_length=hop, precision="float64"),
                                  np.abs(theirs))


@pytest.mark.parametrize(("n_fft", "hop"), [(2048, 512), (1024, 256), (2000, 441), (1023, 441)])
def test_the_float32_stft_is_librosas_within_float32_rounding(rng: np.random.Generator, n_fft: int, hop: int) -> None:
    """float32 frames through a single-precision transform: complex64 spectra whose error is
    float32 rounding of the frame's energy (an additive floor, not a relative error per bin)."""
    y = _stft_batch(rng)
    theirs = np.swapaxes(librosa.stft(y, n_fft=n_fft, hop_length=hop, center=True, pad_mode="constant"), 1, 2)
    ours = stft(y=y, n_fft=n_fft, hop_length=hop, precision="float32")
    assert ours.dtype == np.complex64 and ours.shape == theirs.shape
    assert not np.array_equal(ours, theirs)  # another transform: not librosa's bits
    err = np.abs(ours.astype(np.complex128) - theirs)
    # per frame: a few float32 epsilons of the frame's l2 norm (Parseval: sqrt(n_fft / 2) * RMS)
    scale = np.sqrt(np.sum(np.abs(theirs.astype(np.complex128)) ** 2, axis=-1, keepdims=True) / n_fft)
    assert np.all(err <= 16 * np.finfo(np.float32).eps * np.maximum(scale, np.finfo(np.float32).tiny)), err.max()
    np.testing.assert_array_equal(ours[2], 0)  # silence: exactly zero, as librosa's
    np.testing.assert_array_equal(magnitude_spectrogram(y=y, n_fft=n_fft, hop_length=hop, precision="float32"),
                                  np.abs(ours))


@pytest.mark.parametrize("features", [("chroma",), ("tonnetz",), ("mel", "chroma"), ("mfcc_delta", "spectral"),
                                      ("contrast",), ("onset",)])
def test_a_run_needing_float64_transforms_librosas_bits(features: tuple[str, ...]) -> None:
    """chroma's tuning estimate is an argmax the last bits of the power spectrum can tip (and
    tonnetz consumes chroma); spectral, contrast and onset miss their tolerances on float32
    spectra (the transform's noise floor): any run holding one of them gets librosa's STFT bit
    for bit, and every family of that run reads it."""
    config = FeatureConfig(features=features)
    y = np.stack([synth.genre_clip("jazz", seconds=3.0, sr=config.sr, seed=2),
                  synth.tone(freq=440.0, seconds=3.0, sr=config.sr)]).astype(np.float32)[:, : config.segment_samples]
    inputs = Inputs(y, config)
    for name in features:
        inputs.family(name)
    theirs = np.abs(librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length)).transpose(0, 2, 1)
    np.testing.assert_array_equal(inputs.magnitude, theirs[:, : inputs.n_live])


def test_a_run_of_float32_tolerant_families_transforms_in_float32() -> None:
    """The run's path is derived from its families' declarations: without one needing float64,
    every family reads the float32 spectra."""
    config = float32_part(every())
    assert {"mel", "mfcc", "mfcc_delta", "flatness", "spectrogram"} <= set(config.features)
    y = synth.genre_clip("rock", seconds=3.0, sr=config.sr, seed=1)[None, : config.segment_samples].astype(np.float32)
    inputs = Inputs(y, config)
    for name in config.features:
        inputs.family(name)
    np.testing.assert_array_equal(inputs.magnitude, np.abs(stft(y=y, precision="float32"))[:, : inputs.n_live])


def _invariance_pool(config: FeatureConfig, rng: np.random.Generator) -> np.ndarray:
    """Segments whose audio ends at different frames (the batch's longest sets how many frames
    are transformed), silence, one sample, full-length tones, noise and music."""
    sr, n = config.sr, config.segment_samples
    seconds = n / sr
    pool = np.zeros((10, n), dtype=np.float32)
    pool[0] = synth.tone(freq=440.0, seconds=seconds, sr=sr)[:n]
    pool[1] = synth.noise(seconds=seconds, sr=sr, seed=5)[:n]
    pool[2] = synth.genre_clip("rock", seconds=seconds, sr=sr, seed=3)[:n]
    pool[3, : n // 5] = synth.chirp(f0=80.0, f1=sr / 3, seconds=seconds, sr=sr)[: n // 5]
    pool[4, : n // 2] = rng.normal(0, 0.2, n // 2)
    pool[5, 3000] = 0.5  # one sample
    # pool[6] stays silent
    pool[7, : 2 * n // 3] = synth.genre_clip("jazz", seconds=seconds, sr=sr, seed=4)[: 2 * n // 3]
    pool[8] = synth.tone(freq=262.0, seconds=seconds, sr=sr)[:n] * 0.3 + rng.normal(0, 0.01, n)
    pool[9, : sr // 10] = synth.tone(freq=3000.0, seconds=0.1, sr=sr)[: sr // 10]
    return pool


def _featurise_bits(batch: np.ndarray, config: FeatureConfig) -> list[dict[str, np.ndarray]]:
    """Per segment of the batch: every variable and summary, as a chunk task stores them."""
    n = batch.shape[0]
    arrays = allocate(n, config)
    with dask.config.set({"pipeline.batch-segments": n}):  # the whole batch at once
        featurize_rows(np.arange(n), batch, np.full(n, config.segment_samples), config, arrays)
    return [{name: values[i] for name, values in arrays.items()} for i in range(n)]


def test_families_added_to_a_store_take_the_stores_stft_dtype(rng: np.random.Generator) -> None:
    """A chunk computing only the families added to a store keeps the store's config but for
    its families (``replace``, as chunk.run_chunk does): the STFT's arithmetic stays the
    store's, and so the numbers are a one-shot run's. A config of those families alone would
    take the float32 path: other bits."""
    config = FeatureConfig(features=("mel", "chroma"))
    assert config.stft_dtype == "float64"
    pool = _invariance_pool(config, rng)[:4]
    one_shot = _featurise_bits(pool, config)
    for added, same in ((replace(config, features=("mel",)), True), (FeatureConfig(features=("mel",)), False)):
        assert added.stft_dtype == ("float64" if same else "float32")
        arrays = allocate(len(pool), added)
        featurize_rows(np.arange(len(pool)), pool, np.full(len(pool), added.segment_samples), added, arrays)
        for i in range(len(pool)):
            for name, values in arrays.items():
                equal = np.array_equal(values[i], one_shot[i][name], equal_nan=True)
                assert equal or not same, f"{name} of segment {i} differs from the one-shot run's"
        assert same or not np.array_equal(arrays["mel"][0], one_shot[0]["mel"])


@pytest.mark.parametrize(("name", "precision"), [("default", "float64"), ("nfft1023-hop441", "float64"),
                                               ("sr16k-mels64", "float64"), ("default", "float32"),
                                               ("nfft1023-hop441", "float32")])
def test_a_segments_features_do_not_depend_on_its_batch(rng: np.random.Generator, name: str, precision: str) -> None:
    """Bit for bit: a segment alone, at every position of a batch, and in batches of every
    size from 1 to 12 (with partners whose audio ends elsewhere) gets the same arrays."""
    config = _path(CONFIGS[name], precision)
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


_Y = np.zeros((2, 4096), dtype=np.float32)
_S = np.ones((2, 5, 1025), dtype=np.float32)
_SMALL = every(segment_seconds=0.2)

#: (kernel call with one bad argument, the package error, the argument the message names)
BAD_CALLS: dict[str, tuple[Callable[[], object], type[Exception], str]] = {
    # the waveform batch, through every kernel that takes one
    "stft-1d": (lambda: stft(y=np.zeros(4096, dtype=np.float32)), InputError, "y with shape (n_segments, n_samples)"),
    "stft-list": (lambda: stft(y=[[0.0] * 4096]), InputError, "y with shape"),  # type: ignore[arg-type]
    "stft-complex": (lambda: stft(y=_Y.astype(np.complex64)), InputError, "y of real numbers"),
    "stft-no-segments": (lambda: stft(y=_Y[:0]), InputError, "y with at least one segment"),
    "stft-no-samples": (lambda: stft(y=_Y[:, :0]), InputError, "y with at least one segment"),
    "magnitude-3d": (lambda: magnitude_spectrogram(y=_Y[None]), InputError, "y with shape"),
    "live-frames-1d": (lambda: live_frames(_Y[0], 2048, 512), InputError, "y with shape"),
    "rms-1d": (lambda: rms(y=_Y[0]), InputError, "y with shape"),
    "zcr-strings": (lambda: zero_crossing_rate(y=_Y.astype(str)), InputError, "y of real numbers"),
    "compute-features-1d": (lambda: compute_features(_Y[0], _SMALL), InputError, "y with shape"),
    "compute-features-length": (lambda: compute_features(_Y[:, :100], _SMALL), InputError, "segments of 4410 samples, got 100"),
    # the STFT's and the frames' parameters
    "stft-n_fft-zero": (lambda: stft(y=_Y, n_fft=0), ConfigError, "n_fft to be a positive integer, got 0"),
    "stft-n_fft-float": (lambda: stft(y=_Y, n_fft=2048.0), ConfigError, "n_fft"),  # type: ignore[arg-type]
    "stft-hop-negative": (lambda: stft(y=_Y, hop_length=-512), ConfigError, "hop_length to be a positive integer"),
    "magnitude-hop-bool": (lambda: magnitude_spectrogram(y=_Y, hop_length=True), ConfigError, "hop_length"),
    "stft-precision": (lambda: stft(y=_Y, precision="float16"), ConfigError,  # type: ignore[arg-type]
                       "precision out of float32, float64, got 'float16'"),
    "magnitude-precision": (lambda: magnitude_spectrogram(y=_Y, precision=64), ConfigError, "precision"),  # type: ignore[arg-type]
    "magnitude-n_frames-zero": (lambda: magnitude_spectrogram(y=_Y, n_frames=0), ConfigError, "n_frames"),
    "magnitude-live-shape": (lambda: magnitude_spectrogram(y=_Y, live=np.array([1, 2, 3])), InputError, "live of 2 integers"),
    "magnitude-live-float": (lambda: magnitude_spectrogram(y=_Y, live=np.array([1.0, 2.0])), InputError, "live of 2 integers"),
    "live-frames-n_fft": (lambda: live_frames(_Y, -1, 512), ConfigError, "n_fft"),
    "live-frames-hop": (lambda: live_frames(_Y, 2048, 0), ConfigError, "hop_length"),
    "rms-frame_length": (lambda: rms(y=_Y, frame_length=0), ConfigError, "frame_length to be a positive integer"),
    "rms-hop": (lambda: rms(y=_Y, hop_length=1.5), ConfigError, "hop_length"),  # type: ignore[arg-type]
    "zcr-frame_length": (lambda: zero_crossing_rate(y=_Y, frame_length=-2048), ConfigError, "frame_length"),
    "zcr-hop": (lambda: zero_crossing_rate(y=_Y, hop_length=0), ConfigError, "hop_length"),
    # spectrograms and their parameters
    "power-to-db-1d": (lambda: power_to_db(S=np.ones(10)), InputError, "S with shape (n, frames) or (n, frames, bins)"),
    "power-to-db-complex": (lambda: power_to_db(S=_S.astype(np.complex64)), InputError, "S of real numbers"),
    "power-to-db-top_db-negative": (lambda: power_to_db(S=_S, top_db=-80.0), ConfigError, "top_db to be a finite number >= 0"),
    "power-to-db-top_db-nan": (lambda: power_to_db(S=_S, top_db=float("nan")), ConfigError, "top_db"),
    "tuning-2d": (lambda: estimate_tuning(S=_S[0], sr=22050), InputError, "S with shape (n, frames, 1 + n_fft // 2)"),
    "tuning-one-bin": (lambda: estimate_tuning(S=_S[..., :1], sr=22050), InputError, "S with at least 2 frequency bins"),
    "tuning-no-segments": (lambda: estimate_tuning(S=_S[:0], sr=22050), InputError, "S with at least one segment"),
    "tuning-sr": (lambda: estimate_tuning(S=_S, sr=0), ConfigError, "sr to be a positive integer"),
    "tuning-sr-float": (lambda: estimate_tuning(S=_S, sr=22050.0), ConfigError, "sr"),  # type: ignore[arg-type]
    "tuning-bins_per_octave": (lambda: estimate_tuning(S=_S, sr=22050, bins_per_octave=0), ConfigError, "bins_per_octave"),
    # the config and the summaries
    "compute-features-config": (lambda: compute_features(_Y, {"sr": 22050}), ConfigError, "config to be a FeatureConfig, got a dict"),  # type: ignore[arg-type]
    "summarize-1d": (lambda: summarize(np.ones(5), np.array([5])), InputError, "values with shape (n, frames) or (n, frames, bins)"),
    "summarize-4d": (lambda: summarize(_S[None], np.array([5])), InputError, "values with shape"),
    "summarize-frames-shape": (lambda: summarize(_S, np.array([5])), InputError, "valid_frames of 2 integers"),
    "summarize-frames-float": (lambda: summarize(_S, np.array([5.0, 5.0])), InputError, "valid_frames of 2 integers"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_arguments_raise_the_packages_error_in_one_line(case: str) -> None:
    """A bad array is an InputError, a bad parameter a ConfigError (never a bare ValueError or a
    NumPy error from deep inside): one line, "Expected ..., got ...", naming the argument."""
    call, error, names = BAD_CALLS[case]
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error
    message = str(info.value)
    assert message.startswith("Expected ") and ", got " in message and "\n" not in message, message
    assert names in message, message


def test_any_real_dtype_is_cast_to_float32() -> None:
    """Integer, float64 and bool batches are accepted and give the float32 batch's numbers."""
    y = np.zeros((2, _SMALL.segment_samples), dtype=np.float32)
    y[0, 100:900] = np.arange(800) % 7 - 3
    y[1, 50] = 1
    ours = compute_features(y, _SMALL)
    for dtype in (np.int16, np.float64, np.int64):
        for name, values in compute_features(y.astype(dtype), _SMALL).items():
            np.testing.assert_array_equal(values, ours[name], err_msg=f"{dtype.__name__}: {name}")
    np.testing.assert_array_equal(rms(y=y[1:] != 0), rms(y=y[1:]))


def test_a_batch_of_short_files_skips_the_padding_and_still_matches_librosa(rng: np.random.Generator) -> None:
    """Only the frames up to the batch's last audio are transformed (1-s files in 3-s segments
    cost a third); the padding's frames get librosa's constants (-100 dB, zeros)."""
    config = every()
    sr, n = config.sr, config.segment_samples
    batch = np.zeros((3, n), dtype=np.float32)
    batch[0, :sr] = synth.genre_clip("jazz", seconds=1.0, sr=sr, seed=2)[:sr]
    batch[1, : sr // 2] = rng.normal(0, 0.1, sr // 2)
    got = compute_features(batch, config)
    for i in range(3):
        ref = reference_segment(batch[i], config)
        assert_segment_close({var: got[var][i] for var in ref}, ref, batch[i], config)
