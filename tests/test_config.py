"""Config validation and round trip."""

from __future__ import annotations

import pytest

from pipeline.config import DEFAULT_FEATURES, FeatureConfig, parse_features
from pipeline.errors import ConfigError


def test_defaults_follow_the_contract() -> None:
    c = FeatureConfig()
    assert (c.sr, c.n_fft, c.hop_length, c.n_mels, c.n_mfcc) == (22050, 2048, 512, 128, 20)
    assert c.segment_seconds == 3.0 and c.segment_hop_seconds == 3.0
    assert c.features == DEFAULT_FEATURES
    assert c.n_frames == 130 and c.segment_samples == 66150


def test_round_trip() -> None:
    c = FeatureConfig(sr=16000, n_mels=64, features=("rms", "mel"), segment_hop_seconds=1.5)
    assert FeatureConfig.from_dict(c.to_dict()) == c
    assert c.features == ("mel", "rms")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sr": 0}, "sr to be a positive integer"),
        ({"n_fft": 2.5}, "n_fft to be a positive integer"),
        ({"segment_seconds": -1.0}, "segment_seconds to be a positive number"),
        ({"segment_hop_seconds": float("nan")}, "segment_hop_seconds"),
        ({"n_mfcc": 200}, "n_mfcc <= n_mels"),
        ({"fmax": 20000.0}, "fmax <= sr/2"),
        ({"features": "mel,loudness"}, "unknown loudness"),
        ({"features": ""}, "at least one feature"),
        ({"window": "hamming"}, "window 'hann'"),
    ],
)
def test_invalid_values_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FeatureConfig(**kwargs)  # type: ignore[arg-type]


def test_parse_features_orders_and_dedups() -> None:
    assert parse_features("rms, MEL,mel") == ("mel", "rms")


def test_differences_name_the_fields() -> None:
    assert FeatureConfig().differences(FeatureConfig(n_mels=64)) == ["n_mels: 128 != 64"]


def test_the_stfts_arithmetic_is_derived_from_the_families_and_refused_where_they_need_float64() -> None:
    assert FeatureConfig().stft_dtype == "float64"  # chroma (and spectral) need librosa's bits
    assert FeatureConfig(features=("mel", "mfcc")).stft_dtype == "float32"
    assert FeatureConfig(features=("mel",), stft_dtype="float64").stft_dtype == "float64"
    assert FeatureConfig(features=("tonnetz",)).stft_dtype == "float64"  # through chroma
    with pytest.raises(ConfigError, match="Expected stft_dtype 'float64' with chroma, spectral") as info:
        FeatureConfig(features=("mel", "chroma", "spectral"), stft_dtype="float32")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="Expected stft_dtype 'float32' or 'float64', got 'float16'"):
        FeatureConfig(features=("mel",), stft_dtype="float16")


def test_a_config_read_back_keeps_its_arithmetic_and_old_stores_read_as_float64() -> None:
    mel = FeatureConfig(features=("mel",))
    assert FeatureConfig.from_dict(mel.to_dict()) == mel
    legacy = {k: v for k, v in mel.to_dict().items() if k != "stft_dtype"}  # a store from before the field
    assert FeatureConfig.from_dict(legacy).stft_dtype == "float64"
    assert mel.differences(FeatureConfig.from_dict(legacy)) == ["stft_dtype: 'float32' != 'float64'"]
