"""The speech filterbanks on their own framing: ``fbank`` (Kaldi) and ``whisper`` (OpenAI Whisper).

Parity with their reference packages (``kaldi_native_fbank``, openai-whisper; test needs only)
on real speech, a tone, noise, silence and a zero-padded partial segment, at default and
other segment lengths; a long file through ``extract`` across chunks, every stored segment
against the references (a 30 s segment is Whisper's encoder input exactly); the whisper
family's sr check (config and CLI); batch independence.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import require_tool

from pipeline import FeatureConfig, extract, open_store, synth
from pipeline.errors import ConfigError
from pipeline.families import family
from pipeline.features import compute_features
from pipeline.schema import segment_starts
from pipeline.testing import assert_close, reference_segment

SR = 16000
TEXT = "Speech features for recognisers: Kaldi filterbanks and Whisper's log-mel spectrogram."


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    require_tool("espeak-ng")
    audio, rate = synth.speech_clip(TEXT, sr=SR)
    assert rate == SR and audio.size > 3 * SR
    return audio


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, y.size)] = y[:n]
    return out


def _signals(speech: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """One segment each: speech, a tone, noise, silence, speech zero-padded after 40%."""
    sr, n = config.sr, config.segment_samples
    seconds = n / sr
    partial = _fit(speech[sr // 2 :], n)
    partial[int(0.4 * n) :] = 0.0
    return {
        "speech": _fit(speech, n),
        "tone": _fit(synth.tone(freq=440.0, seconds=seconds, sr=sr), n),
        "noise": _fit(synth.noise(seconds=seconds, sr=sr, seed=3), n),
        "silence": np.zeros(n, dtype=np.float32),
        "partial": partial,
    }


CONFIGS = {
    "16k-3s": FeatureConfig(sr=SR, features=("fbank", "whisper")),
    "16k-2.37s": FeatureConfig(sr=SR, segment_seconds=2.37, features=("fbank", "whisper")),
    "22050-1.3s": FeatureConfig(sr=22050, segment_seconds=1.3, features=("fbank",)),  # Kaldi's truncated 551/220
    "8k-0.9s": FeatureConfig(sr=8000, segment_seconds=0.9, features=("fbank",)),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_parity_with_references(speech: np.ndarray, name: str) -> None:
    config = CONFIGS[name]
    signals = _signals(speech, config)
    got = compute_features(np.stack(list(signals.values())), config)
    for i, (kind, y) in enumerate(signals.items()):
        ref = reference_segment(y, config)
        for var, values in ref.items():
            fam = family(var if var == "fbank" else "whisper")
            assert got[var][i].shape == values.shape == fam.shape(fam.variables[0], config), (kind, var)
            assert_close(var, got[var][i], values)
    silence = list(signals).index("silence")
    # fbank of silence: log(float32 eps) everywhere (Kaldi's floor); whisper's: a constant
    np.testing.assert_array_equal(got["fbank"][silence], np.log(np.finfo(np.float32).eps).astype(np.float32))
    if "whisper_log_mel" in got:
        np.testing.assert_array_equal(got["whisper_log_mel"][silence], np.float32(-1.5))


def test_partial_segment_frames(speech: np.ndarray) -> None:
    """Frames past a segment's audio are the references' constants; the framing's valid frames
    are those whose centre lies in the audio."""
    config = CONFIGS["16k-3s"]
    y = _signals(speech, config)["partial"]
    got = compute_features(y[None], config)
    real = int(np.flatnonzero(y)[-1]) + 1
    fb, wh = family("fbank").framing, family("whisper").framing
    valid_fb = int(fb.valid_frames(config, np.array([real]))[0])
    valid_wh = int(wh.valid_frames(config, np.array([real]))[0])
    assert valid_fb == (real - 200 - 1) // 160 + 1 and valid_wh == (real - 1) // 160 + 1
    # fbank frame t covers samples [160 t, 160 t + 400): all zero from ceil(real / 160) on
    tail = -(-real // 160)
    np.testing.assert_array_equal(got["fbank"][0, tail:], np.log(np.finfo(np.float32).eps).astype(np.float32))
    # whisper: the floor (max - 8 + 4) / 4 from the frame whose window leaves the audio
    w = got["whisper_log_mel"][0]
    floor = max(np.float32(-1.5), w.max() - np.float32(2.0))  # (max(-10, peak - 8) + 4) / 4, w.max() = (peak + 4) / 4
    np.testing.assert_allclose(w[-(-(real + 200) // 160) :], floor, atol=1e-6)


def test_whisper_30s_segment_is_the_encoder_input(speech: np.ndarray) -> None:
    import torch
    import whisper

    config = FeatureConfig(sr=SR, segment_seconds=30.0, features=("whisper",))
    audio = np.concatenate([speech, 0.01 * synth.noise(seconds=1.0, sr=SR, seed=1).astype(np.float32)])
    got = compute_features(_fit(audio, config.segment_samples)[None], config)["whisper_log_mel"][0]
    ref = whisper.audio.log_mel_spectrogram(whisper.audio.pad_or_trim(torch.from_numpy(audio))).numpy().T
    assert got.shape == ref.shape == (3000, 80)
    assert_close("whisper_log_mel", got, ref)


def test_whisper_filters_are_whispers() -> None:
    import whisper

    from pipeline.families.whisper import mel_filters

    with np.load(Path(whisper.__file__).parent / "assets" / "mel_filters.npz") as npz:
        for n_mels in (80, 128):
            np.testing.assert_allclose(mel_filters(n_mels).T, npz[f"mel_{n_mels}"], rtol=1e-6, atol=1e-9)


def test_batch_independence(speech: np.ndarray) -> None:
    """A segment's numbers are the same bits alone or in any batch (the whisper clip is per segment)."""
    config = CONFIGS["16k-3s"]
    s = _signals(speech, config)
    loud = 0.9 * s["tone"]  # a louder neighbour would move a batch-wide whisper maximum
    alone = compute_features(s["partial"][None], config)
    for batch in ([loud, s["partial"], s["noise"]], [s["silence"], s["speech"], loud, s["partial"]]):
        got = compute_features(np.stack(batch), config)
        row = next(i for i, y in enumerate(batch) if y is s["partial"])
        for var in ("fbank", "whisper_log_mel"):
            np.testing.assert_array_equal(got[var][row], alone[var][0], err_msg=var)


def test_long_file_end_to_end(speech: np.ndarray, tmp_path: Path) -> None:
    """~48 s of speech in noise through extract (30 s and 3 s segments, each with a zero-padded
    last one, over several chunks): every stored segment and summary against the references."""
    rng = np.random.default_rng(5)
    n = round(47.6 * SR)
    audio = 0.003 * rng.standard_normal(n).astype(np.float32)
    for start in range(0, n - speech.size, speech.size + SR // 3):
        audio[start : start + speech.size] += speech
    root = tmp_path / "in"
    root.mkdir()
    sf.write(root / "talk.wav", audio, SR, subtype="FLOAT")
    for seconds, chunk in ((30.0, 1), (3.0, 4)):
        config = FeatureConfig(sr=SR, segment_seconds=seconds, features=("fbank", "whisper"))
        store = str(tmp_path / f"s{seconds:g}.zarr")
        report = extract([root], store, config=config, scheduler="synchronous", progress=False, segment_chunk=chunk)
        assert report.files_ok == 1 and report.files_failed == 0
        ds = open_store(store)
        assert ds.sizes["segment"] == segment_starts(n, config).size == -(-n // config.segment_samples)
        assert ds.sizes["fbank_frame"] == family("fbank").framing.n_frames(config)
        assert ds.sizes["whisper_frame"] == config.segment_samples // 160
        for s in range(ds.sizes["segment"]):
            start = round(float(ds["segment_offset"].values[s]) * SR)
            part = audio[start : start + config.segment_samples]
            seg = _fit(part, config.segment_samples)
            ref = reference_segment(seg, config)
            if seconds == 30.0:  # Whisper's encoder input for the audio from the segment's start
                import torch
                import whisper

                direct = whisper.audio.log_mel_spectrogram(whisper.audio.pad_or_trim(torch.from_numpy(audio[start:]))).numpy().T
                assert_close("whisper_log_mel", ds["whisper_log_mel"].isel(segment=s).values, direct)
            for var, name in (("fbank", "fbank"), ("whisper_log_mel", "whisper")):
                got = ds[var].isel(segment=s).values
                assert_close(var, got, ref[var])
                valid = int(family(name).framing.valid_frames(config, np.array([part.size]))[0])
                np.testing.assert_allclose(ds[f"{var}_mean"].isel(segment=s).values,
                                           got[:valid].astype(np.float64).mean(axis=0), rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(ds[f"{var}_std"].isel(segment=s).values,
                                           got[:valid].astype(np.float64).std(axis=0), rtol=1e-5, atol=1e-5)


def test_whisper_needs_16k(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        FeatureConfig(sr=22050, features=("mel", "whisper"))
    message = str(info.value)
    assert message == ("Expected sr 16000 for the whisper family (Whisper's log-mel is defined at 16 kHz), got sr 22050")
    sf.write(tmp_path / "a.wav", np.zeros(SR, dtype=np.float32), SR)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "extract", str(tmp_path), "-o", str(tmp_path / "s.zarr"),
                           "--features", "whisper", "--scheduler", "synchronous"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Expected sr 16000 for the whisper family" in lines[0], proc.stderr
    assert not (tmp_path / "s.zarr").exists()


def test_fbank_config_checks() -> None:
    with pytest.raises(ConfigError, match=r"^Expected sr >= 8000 for the fbank family .*got sr 4000$"):
        FeatureConfig(sr=4000, n_fft=256, hop_length=64, features=("fbank",))
    with pytest.raises(ConfigError, match=r"^Expected segments of at least one 25 ms frame \(400 samples\)"):
        FeatureConfig(sr=SR, n_fft=256, hop_length=64, segment_seconds=0.02, features=("fbank",))
    FeatureConfig(sr=SR, n_fft=256, hop_length=64, segment_seconds=0.025, features=("fbank",))  # one frame is enough
