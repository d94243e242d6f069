"""Tests for :mod:`pipeline.synth`: synthetic signals, genre clips, espeak/sox helpers, corpora."""

from __future__ import annotations

import csv
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from pipeline.errors import ConfigError, ToolError
from pipeline.synth import (
    CORPUS_FORMATS,
    GENRES,
    SPEECH_LABEL,
    chirp,
    espeak_available,
    genre_clip,
    make_demo_corpus,
    noise,
    silence,
    sox_available,
    sox_music,
    speech_clip,
    tone,
)

SR = 11025  # small rate keeps the whole module fast

FloatArray = npt.NDArray[np.floating[Any]]


def require(tool: str) -> None:
    """Fail loudly (never skip) when a system tool is missing."""
    if shutil.which(tool) is None:
        pytest.fail(
            f"{tool} is not installed: `make test` installs it (apt-get install espeak-ng sox)"
        )


def dominant_hz(x: FloatArray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1.0 / sr)[int(np.argmax(spectrum))])


def zero_crossing_hz(x: FloatArray, sr: int) -> float:
    crossings = np.count_nonzero(np.signbit(x[1:]) != np.signbit(x[:-1]))
    return crossings / 2.0 / (x.size / sr)


# --------------------------------------------------------------------------- basic signals


def test_tone_shape_dtype_frequency_and_amplitude() -> None:
    y = tone(freq=440.0, seconds=1.5, sr=SR, amplitude=0.25)
    assert y.dtype == np.float32
    assert y.shape == (round(1.5 * SR),)
    assert np.max(np.abs(y)) == pytest.approx(0.25, abs=1e-3)
    assert dominant_hz(y, SR) == pytest.approx(440.0, abs=1.0)


def test_tone_phase_and_determinism() -> None:
    y = tone(freq=100.0, seconds=0.1, sr=SR, amplitude=0.5, phase=math.pi / 2)
    assert y[0] == pytest.approx(0.5)
    np.testing.assert_array_equal(y, tone(freq=100.0, seconds=0.1, sr=SR, phase=math.pi / 2))


def test_zero_length_signals_are_empty() -> None:
    for y in (
        tone(freq=440.0, seconds=0.0, sr=SR),
        chirp(f0=100.0, f1=1000.0, seconds=0.0, sr=SR),
        noise(seconds=0.0, sr=SR),
        noise(seconds=0.0, sr=SR, color="pink"),
        silence(seconds=0.0, sr=SR),
    ):
        assert y.shape == (0,)
        assert y.dtype == np.float32


def test_chirp_sweeps_exponentially() -> None:
    f0, f1, seconds = 200.0, 3200.0, 2.0
    y = chirp(f0=f0, f1=f1, seconds=seconds, sr=SR, amplitude=0.3)
    assert y.dtype == np.float32
    assert y.shape == (round(seconds * SR),)
    assert np.max(np.abs(y)) == pytest.approx(0.3, abs=1e-3)
    window = round(0.1 * SR)
    middle = y.size // 2 - window // 2
    # an exponential sweep is at the geometric mean half-way (a linear one would be at 1700 Hz)
    assert zero_crossing_hz(y[middle : middle + window], SR) == pytest.approx(
        math.sqrt(f0 * f1), rel=0.08
    )
    assert zero_crossing_hz(y[:window], SR) < zero_crossing_hz(y[-window:], SR)
    down = chirp(f0=f1, f1=f0, seconds=seconds, sr=SR)
    assert zero_crossing_hz(down[:window], SR) > zero_crossing_hz(down[-window:], SR)


def test_chirp_with_equal_ends_is_a_tone() -> None:
    np.testing.assert_allclose(
        chirp(f0=500.0, f1=500.0, seconds=0.5, sr=SR),
        tone(freq=500.0, seconds=0.5, sr=SR),
        atol=1e-6,
    )


@pytest.mark.parametrize("color", ["white", "pink"])
def test_noise_shape_peak_and_determinism(color: str) -> None:
    y = noise(seconds=1.0, sr=SR, amplitude=0.2, seed=5, color=color)
    assert y.dtype == np.float32
    assert y.shape == (SR,)
    assert np.max(np.abs(y)) == pytest.approx(0.2, rel=1e-5)
    assert abs(float(np.mean(y))) < 0.01
    np.testing.assert_array_equal(y, noise(seconds=1.0, sr=SR, amplitude=0.2, seed=5, color=color))
    assert not np.array_equal(y, noise(seconds=1.0, sr=SR, amplitude=0.2, seed=6, color=color))


def test_pink_noise_has_more_low_frequency_energy_than_white() -> None:
    def low_share(y: FloatArray) -> float:
        power = np.abs(np.fft.rfft(y)) ** 2
        freqs = np.fft.rfftfreq(y.size, 1.0 / SR)
        return float(power[freqs < 500.0].sum() / power.sum())

    white = noise(seconds=2.0, sr=SR, seed=1)
    pink = noise(seconds=2.0, sr=SR, seed=1, color="pink")
    assert low_share(white) == pytest.approx(500.0 / (SR / 2), abs=0.03)
    assert low_share(pink) > 0.4


def test_silence_is_zeros() -> None:
    y = silence(seconds=0.5, sr=SR)
    assert y.dtype == np.float32
    assert y.shape == (round(0.5 * SR),)
    assert not y.any()


InvalidCall = tuple[Callable[..., object], dict[str, Any]]

INVALID: list[InvalidCall] = [
    (tone, {"freq": 0.0, "seconds": 1.0}),
    (tone, {"freq": -5.0, "seconds": 1.0}),
    (tone, {"freq": SR / 2, "seconds": 1.0, "sr": SR}),
    (tone, {"freq": 440.0, "seconds": -1.0}),
    (tone, {"freq": 440.0, "seconds": math.nan}),
    (tone, {"freq": 440.0, "seconds": 1.0, "amplitude": 1.5}),
    (tone, {"freq": 440.0, "seconds": 1.0, "sr": 0}),
    (tone, {"freq": 440.0, "seconds": 1.0, "sr": 22050.0}),
    (tone, {"freq": 440.0, "seconds": 1.0, "sr": True}),
    (tone, {"freq": "440", "seconds": 1.0}),
    (chirp, {"f0": 100.0, "f1": 20000.0, "seconds": 1.0}),
    (chirp, {"f0": 0.0, "f1": 1000.0, "seconds": 1.0}),
    (noise, {"seconds": 1.0, "color": "brown"}),
    (noise, {"seconds": 1.0, "seed": -1}),
    (noise, {"seconds": 1.0, "amplitude": -0.1}),
    (silence, {"seconds": math.inf}),
    (genre_clip, {"genre": "polka"}),
    (genre_clip, {"genre": "rock", "seconds": 0.0}),
    (genre_clip, {"genre": "rock", "sr": 1000}),
    (genre_clip, {"genre": "rock", "seed": 1.5}),
]


@pytest.mark.parametrize(
    ("func", "kwargs"), INVALID, ids=[f"{f.__name__}-{i}" for i, (f, _) in enumerate(INVALID)]
)
def test_invalid_arguments_raise_config_error(
    func: Callable[..., object], kwargs: dict[str, Any]
) -> None:
    options = dict(kwargs)
    args = (options.pop("genre"),) if func is genre_clip else ()
    with pytest.raises(ConfigError, match="Expected"):
        func(*args, **options)


# --------------------------------------------------------------------------- genre clips


def test_genres_are_the_documented_tuple() -> None:
    assert isinstance(GENRES, tuple)
    assert len(GENRES) >= 6
    assert len(set(GENRES)) == len(GENRES)
    assert SPEECH_LABEL not in GENRES
    assert {"ambient", "classical", "electronic", "jazz", "rock", "hiphop"} <= set(GENRES)


@pytest.mark.parametrize("genre", GENRES)
def test_genre_clip_shape_range_and_determinism(genre: str) -> None:
    y = genre_clip(genre, seconds=2.5, sr=SR, seed=3)
    assert y.dtype == np.float32
    assert y.shape == (round(2.5 * SR),)
    assert np.all(np.isfinite(y))
    peak = float(np.max(np.abs(y)))
    assert 0.75 <= peak <= 0.8 + 1e-6
    assert float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) > 0.01  # not near-silent
    np.testing.assert_array_equal(y, genre_clip(genre, seconds=2.5, sr=SR, seed=3))
    assert not np.array_equal(y, genre_clip(genre, seconds=2.5, sr=SR, seed=4))


@pytest.mark.parametrize("genre", GENRES)
def test_genre_clip_handles_odd_lengths_and_rates(genre: str) -> None:
    y = genre_clip(genre, seconds=0.05, sr=8001, seed=0)
    assert y.shape == (round(0.05 * 8001),)
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y))
    assert np.max(np.abs(y)) <= 0.8 + 1e-6


def _frames(x: FloatArray, size: int = 512, hop: int = 256) -> FloatArray:
    starts = np.arange(0, x.size - size, hop)
    framed: FloatArray = x[starts[:, None] + np.arange(size)[None, :]] * np.hanning(size)
    return framed


def _features(y: FloatArray) -> dict[str, float]:
    """Crude numpy-only descriptors: brightness, onset spikiness, bass share, dynamics."""
    frames = _frames(y.astype(np.float64))
    mag = np.abs(np.fft.rfft(frames, axis=1))
    freqs = np.fft.rfftfreq(512, 1.0 / SR)
    centroid = (mag * freqs).sum(axis=1) / (mag.sum(axis=1) + 1e-12)
    flux = np.maximum(np.diff(mag, axis=0), 0.0).sum(axis=1) / (mag[1:].sum(axis=1) + 1e-12)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    power = mag**2
    return {
        "log_centroid": float(np.log(centroid.mean())),
        "flux": float(flux.mean()),
        "flux_spikiness": float(flux.std()),
        "dynamics": float(rms.std() / rms.mean()),
        "bass_share": float(power[:, freqs < 250.0].sum() / power.sum()),
    }


@pytest.fixture(scope="module")
def genre_features() -> dict[str, list[dict[str, float]]]:
    return {
        genre: [_features(genre_clip(genre, seconds=4.0, sr=SR, seed=100 + s)) for s in range(3)]
        for genre in GENRES
    }


def test_genres_differ_in_brightness_rhythm_and_bass(
    genre_features: dict[str, list[dict[str, float]]],
) -> None:
    def values(genre: str, key: str) -> list[float]:
        return [clip[key] for clip in genre_features[genre]]

    # timbre: band-limited pads and piano are darker than rock guitars and jazz cymbals
    dark = values("ambient", "log_centroid") + values("classical", "log_centroid")
    bright = values("rock", "log_centroid") + values("jazz", "log_centroid")
    assert max(dark) < min(bright)
    # rhythm: drum-driven genres have spiky spectral flux, ambient pads do not
    assert max(values("ambient", "flux_spikiness")) < min(
        values("electronic", "flux_spikiness") + values("hiphop", "flux_spikiness")
    )
    # low end: kick + sub/saw bass dominate electronic and hip-hop more than classical
    classical = float(np.mean(values("classical", "bass_share")))
    assert classical + 0.2 < float(np.mean(values("electronic", "bass_share")))
    assert classical + 0.2 < float(np.mean(values("hiphop", "bass_share")))


def test_genres_are_separable_but_clips_vary(
    genre_features: dict[str, list[dict[str, float]]],
) -> None:
    keys = sorted(next(iter(genre_features.values()))[0])
    x = np.array([[clip[k] for k in keys] for g in GENRES for clip in genre_features[g]])
    y = np.repeat(np.arange(len(GENRES)), 3)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    correct = 0
    for i in range(y.size):  # leave-one-out nearest class mean
        keep = np.arange(y.size) != i
        means = np.array([x[keep & (y == k)].mean(axis=0) for k in range(len(GENRES))])
        correct += int(np.argmin(((means - x[i]) ** 2).sum(axis=1)) == y[i])
    assert correct / y.size >= 0.7  # chance is 1/6
    for genre in GENRES:  # within-genre variation: no two clips share the same descriptors
        first, second, third = (tuple(clip.values()) for clip in genre_features[genre])
        assert len({first, second, third}) == 3


# --------------------------------------------------------------------------- corpus


def _read_labels(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["path", "label"]
        return list(reader)


def test_make_demo_corpus_writes_gtzan_layout(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    csv_path = make_demo_corpus(root, n_per_genre=2, seconds=3.0, sr=SR, speech=False)
    assert csv_path == root / "labels.csv"
    rows = _read_labels(csv_path)
    expected = [
        {"path": f"{genre}/{genre}.{i:05d}.wav", "label": genre}
        for genre in GENRES
        for i in range(2)
    ]
    assert rows == expected
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))
    assert on_disk == sorted(row["path"] for row in rows)
    for row in rows:
        info = sf.info(root / row["path"])
        assert (info.samplerate, info.channels, info.frames) == (SR, 1, 3 * SR)
        assert info.subtype == "PCM_16"
    audio, _ = sf.read(root / rows[0]["path"], dtype="float32")
    np.testing.assert_allclose(np.max(np.abs(audio)), 0.8, atol=1e-3)


def test_make_demo_corpus_rotates_formats_and_is_rerunnable(tmp_path: Path) -> None:
    csv_path = make_demo_corpus(
        tmp_path, n_per_genre=3, seconds=1.0, sr=SR, speech=False, formats=("wav", "flac")
    )
    rows = _read_labels(csv_path)
    assert [Path(r["path"]).suffix for r in rows[:3]] == [".wav", ".flac", ".wav"]
    assert sf.info(tmp_path / rows[1]["path"]).format == "FLAC"
    first = sf.read(tmp_path / rows[4]["path"])[0]
    # same corpus again: identical files and csv
    again = make_demo_corpus(
        tmp_path, n_per_genre=3, seconds=1.0, sr=SR, speech=False, formats=("wav", "flac")
    )
    assert _read_labels(again) == rows
    np.testing.assert_array_equal(sf.read(tmp_path / rows[4]["path"])[0], first)
    # a smaller corpus in other formats replaces the old clips: disk matches the csv
    (tmp_path / "notes.txt").write_text("keep me")
    rows = _read_labels(make_demo_corpus(tmp_path, n_per_genre=1, seconds=1.0, sr=SR, speech=False))
    clips = sorted(
        p.relative_to(tmp_path).as_posix()
        for p in tmp_path.rglob("*")
        if p.suffix in {".wav", ".flac"}
    )
    assert (
        clips == sorted(r["path"] for r in rows) == [f"{g}/{g}.00000.wav" for g in sorted(GENRES)]
    )
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_make_demo_corpus_seed_changes_audio(tmp_path: Path) -> None:
    a = make_demo_corpus(tmp_path / "a", n_per_genre=1, seconds=0.5, sr=SR, seed=0, speech=False)
    b = make_demo_corpus(tmp_path / "b", n_per_genre=1, seconds=0.5, sr=SR, seed=1, speech=False)
    path = _read_labels(a)[0]["path"]
    assert not np.array_equal(sf.read(a.parent / path)[0], sf.read(b.parent / path)[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_per_genre": 0},
        {"n_per_genre": 2.0},
        {"seconds": 0.0},
        {"seconds": -3.0},
        {"sr": 100},
        {"seed": -1},
        {"formats": ()},
        {"formats": "wav"},
        {"formats": ("wav", "aiff")},
        {"speech": "yes"},
    ],
)
def test_make_demo_corpus_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="Expected"):
        make_demo_corpus(tmp_path, **{"speech": False, **kwargs})
    assert not (tmp_path / "labels.csv").exists()


def test_corpus_formats_constant() -> None:
    assert CORPUS_FORMATS[0] == "wav"
    assert {"wav", "flac"} <= set(CORPUS_FORMATS)


# --------------------------------------------------------------------------- espeak-ng


def test_speech_clip_uses_espeak() -> None:
    require("espeak-ng")
    assert espeak_available()
    audio, rate = speech_clip("The quick brown fox jumps over the lazy dog.")
    assert rate == 22050
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert 1.0 < audio.size / rate < 6.0
    assert np.max(np.abs(audio)) <= 1.0
    assert float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) > 0.01
    again, _ = speech_clip("The quick brown fox jumps over the lazy dog.")
    np.testing.assert_array_equal(audio, again)
    resampled, new_rate = speech_clip("The quick brown fox jumps over the lazy dog.", sr=16000)
    assert new_rate == 16000
    assert resampled.size == pytest.approx(audio.size * 16000 / 22050, abs=2)
    other, _ = speech_clip("-v looks like an option but is text", voice="en-us+f3", speed=220)
    assert other.size > 0


def test_speech_clip_errors() -> None:
    require("espeak-ng")
    with pytest.raises(ToolError, match="espeak-ng failed"):
        speech_clip("hello", voice="xx-bogus")
    with pytest.raises(ConfigError, match="Expected"):
        speech_clip("   ")
    with pytest.raises(ConfigError, match="Expected"):
        speech_clip("hello", speed=10)
    with pytest.raises(ConfigError, match="Expected"):
        speech_clip("hello", voice="--help")


def test_missing_tools_raise_runtime_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no espeak-ng, no sox
    assert not espeak_available()
    assert not sox_available()
    with pytest.raises(ToolError, match="espeak-ng is not installed"):
        speech_clip("hello")
    with pytest.raises(ToolError, match="sox is not installed"):
        sox_music(tmp_path / "x.wav", seconds=1.0)
    with pytest.raises(ToolError, match="espeak-ng is not installed"):
        make_demo_corpus(tmp_path / "c", n_per_genre=1, seconds=0.5, sr=SR, speech=True)
    # speech=None quietly means "only if espeak-ng is installed"
    rows = _read_labels(make_demo_corpus(tmp_path / "d", n_per_genre=1, seconds=0.5, sr=SR))
    assert {r["label"] for r in rows} == set(GENRES)


def test_make_demo_corpus_with_speech(tmp_path: Path) -> None:
    require("espeak-ng")
    csv_path = make_demo_corpus(tmp_path, n_per_genre=2, seconds=3.0, sr=16000, speech=True)
    rows = _read_labels(csv_path)
    speech_rows = [r for r in rows if r["label"] == SPEECH_LABEL]
    assert [r["path"] for r in speech_rows] == [
        f"{SPEECH_LABEL}/{SPEECH_LABEL}.{i:05d}.wav" for i in range(2)
    ]
    assert len(rows) == 2 * (len(GENRES) + 1)
    clips = [sf.read(tmp_path / r["path"], dtype="float32") for r in speech_rows]
    for audio, rate in clips:
        assert rate == 16000
        assert audio.shape == (3 * 16000,)
        assert np.max(np.abs(audio)) == pytest.approx(0.8, abs=1e-3)
    assert not np.array_equal(clips[0][0], clips[1][0])  # different text/voice per clip


# --------------------------------------------------------------------------- sox


def test_sox_music_writes_a_music_like_clip(tmp_path: Path) -> None:
    require("sox")
    assert sox_available()
    path = sox_music(tmp_path / "sub" / "music.wav", seconds=2.0, sr=16000, seed=2)
    assert path == tmp_path / "sub" / "music.wav"
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (
        16000,
        1,
        32000,
        "PCM_16",
    )
    audio, _ = sf.read(path, dtype="float32")
    assert np.max(np.abs(audio)) == pytest.approx(10 ** (-1 / 20), abs=0.02)  # norm -1 dBFS
    # plucked notes: energy comes and goes rather than sitting still like a tone
    rms = np.sqrt(np.mean(audio[: 16000 * 2 // 400 * 400].reshape(-1, 400) ** 2, axis=1))
    assert rms.max() > 4 * np.median(rms[rms > 0]) or rms.std() > 0.2 * rms.mean()
    again = sox_music(tmp_path / "again.wav", seconds=2.0, sr=16000, seed=2)
    np.testing.assert_array_equal(sf.read(again)[0], sf.read(path)[0])
    other = sox_music(tmp_path / "other.wav", seconds=2.0, sr=16000, seed=3)
    assert not np.array_equal(sf.read(other)[0], sf.read(path)[0])


def test_sox_music_formats_and_errors(tmp_path: Path) -> None:
    require("sox")
    flac = sox_music(tmp_path / "music.flac", seconds=0.5)
    info = sf.info(flac)
    assert (info.format, info.samplerate, info.frames) == ("FLAC", 22050, 11025)
    for kwargs in ({"seconds": 0.0}, {"seconds": -1.0}, {"sr": 10}, {"seed": -3}):
        with pytest.raises(ConfigError, match="Expected"):
            sox_music(tmp_path / "bad.wav", **kwargs)
    with pytest.raises(ConfigError, match="Expected"):
        sox_music(tmp_path / "no_extension")
    with pytest.raises(ToolError, match="sox failed"):
        sox_music(tmp_path / "music.unknownformat", seconds=0.5)
