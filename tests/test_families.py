"""The feature-family registry: declarations, what derives from them, intermediates computed once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline import spectrum
from pipeline.config import DEFAULT_FEATURES, FeatureConfig
from pipeline.errors import ConfigError, FamilyError
from pipeline.families import (
    Family,
    Framing,
    Variable,
    all_families,
    family,
    is_frame_dim,
    register,
    stft_precision,
)
from pipeline.families.listing import BEGIN, END, markdown_table
from pipeline.features import compute_features
from pipeline.featurize import allocate
from pipeline.schema import build_layout
from pipeline.testing import runnable_families
from pipeline.write import make_template

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _registry_restored() -> Iterator[None]:
    from pipeline.families import registry

    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def _zero(inputs: Any, config: FeatureConfig) -> dict[str, np.ndarray]:
    return {"probe_value": np.zeros((inputs.n, config.n_frames), dtype=np.float32)}


@pytest.mark.parametrize("doc", ["docs/store.md", "docs/features.md"])
def test_the_docs_table_is_the_registry(doc: str) -> None:
    text = (ROOT / doc).read_text()
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert table == markdown_table(), f"run: python -m pipeline.families.listing {doc}"
    for fam in all_families():
        assert f"| `{fam.name}` |" in table


def test_every_built_in_family_is_declared_whole() -> None:
    names = [f.name for f in all_families()]
    assert names[:7] == ["spectrogram", "mel", "mfcc", "chroma", "spectral", "zcr", "rms"]
    assert {"contrast", "flatness", "tonnetz", "onset", "mfcc_delta", "fbank", "whisper"} <= set(names)
    assert tuple(f.name for f in all_families() if f.default) == DEFAULT_FEATURES
    variables = [v.name for f in all_families() for v in f.variables]
    assert len(variables) == len(set(variables))
    dims = {f.framing.dim for f in all_families()} | {v.bins.name for f in all_families() for v in f.variables if v.bins}
    assert not dims & set(variables)  # no dimension shares a variable's name
    for fam in all_families():
        assert is_frame_dim(fam.framing.dim)
        assert fam.reference and fam.reference_fn is not None, fam.name
        assert fam.origin["module"] == f"pipeline.families.{fam.name}"
        for var in fam.variables:
            assert var.description and var.units, var.name


def test_the_template_allocation_and_listing_derive_from_the_registry(tmp_path: Path) -> None:
    config = FeatureConfig(sr=16000, features=runnable_families(sr=16000))
    layout = build_layout([], config, chunk=4)
    ds, _ = make_template(layout, config)
    arrays = allocate(3, config)
    for fam in all_families():
        for var in fam.variables:
            assert ds[var.name].dims == fam.dims(var)
            assert ds[var.name].attrs["family"] == fam.name
            assert arrays[var.name].shape == (3, *fam.shape(var, config))
            assert (f"{var.name}_mean" in ds) == var.per_frame
            if var.bins is not None:
                assert ds.sizes[var.bins.name] == var.bins.size(config)
        if any(v.per_frame for v in fam.variables):
            np.testing.assert_allclose(ds[f"{fam.framing.dim}_time"].values, fam.framing.times(config))
    assert ds.sizes["fbank_frame"] == 1 + (config.segment_samples - 400) // 160
    assert ds.sizes["whisper_frame"] == config.segment_samples // 160
    assert ds["tempo"].dims == ("segment",)
    listing = subprocess.run([sys.executable, "-m", "pipeline", "features"], capture_output=True, text=True, check=True).stdout
    for fam in all_families():
        assert f"\n  reference: {fam.reference}" in listing


def test_the_stft_is_computed_once_per_batch_and_only_when_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = spectrum.magnitude_spectrogram

    def counting(**kw: Any) -> np.ndarray:
        calls.append(1)
        return real(**kw)

    monkeypatch.setattr(spectrum, "magnitude_spectrogram", counting)
    y = np.random.default_rng(0).normal(0, 0.1, (3, FeatureConfig().segment_samples)).astype(np.float32)
    every_stft_family = ("spectrogram", "mel", "mfcc", "chroma", "spectral", "contrast", "flatness", "tonnetz", "onset",
                         "mfcc_delta")
    compute_features(y, FeatureConfig(features=every_stft_family))
    assert len(calls) == 1
    calls.clear()
    compute_features(y, FeatureConfig(features=("zcr", "rms", "fbank")))
    assert calls == []


def test_a_family_consuming_another_reuses_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.families import mfcc

    calls: list[int] = []
    real = mfcc.FAMILY.compute

    def counting(inputs: Any, config: FeatureConfig) -> dict[str, np.ndarray]:
        calls.append(1)
        return real(inputs, config)

    register(Family(name="mfcc", version="1", variables=mfcc.FAMILY.variables, compute=counting,
                    reference="", consumes=("mel_db",), origin=mfcc.FAMILY.origin), replace=True)
    y = np.zeros((2, FeatureConfig().segment_samples), dtype=np.float32)
    compute_features(y, FeatureConfig(features=("mfcc", "mfcc_delta")))
    assert len(calls) == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "Bad-Name"}, "lower-case letters"),
    ({"variables": ()}, "at least one variable"),
    ({"consumes": ("phase",)}, "to consume intermediates out of"),
    ({"framing": Framing("frames", lambda c: 1, lambda c: 1, lambda c: 0, "x")}, "frame axis to be named"),
    ({"variables": (Variable("a", "x", "1"), Variable("a", "y", "1"))}, "distinct variable names"),
])
def test_a_bad_declaration_is_a_one_line_config_error(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"name": "probe", "version": "1", "variables": (Variable("probe_value", "x", "1"),),
                            "compute": _zero, "reference": "zero"}
    with pytest.raises(ConfigError, match=message):
        Family(**{**base, **kwargs})


@pytest.mark.parametrize(("variable", "message"), [
    ("mel", "to be new, got one of family mel"),
    ("mel_band", "not to be a dimension or coordinate name"),
    ("segment_extra", "not to be a dimension or coordinate name"),
])
def test_a_clash_with_the_registry_is_refused(variable: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        register(Family(name="probe", version="1", variables=(Variable(variable, "x", "1"),), compute=_zero, reference=""))
    with pytest.raises(ConfigError, match="registered already"):
        register(Family(name="mel", version="9", variables=(Variable("x9", "x", "1"),), compute=_zero, reference=""))


def test_config_validation_comes_from_the_registry() -> None:
    with pytest.raises(ConfigError, match=r"got unknown nope \(a plugin's families need --plugin\)"):
        FeatureConfig(features="mel,nope")
    with pytest.raises(ConfigError, match="Expected sr 16000 for the whisper family"):
        FeatureConfig(features="whisper")
    assert FeatureConfig(features="rms,mel").features == ("mel", "rms")  # registry order
    assert family("onset").variables[1].per_frame is False


def test_a_family_consuming_itself_is_an_error_not_a_recursion() -> None:
    register(Family(name="loop", version="1", variables=(Variable("loop_value", "x", "1"),),
                    compute=lambda inputs, config: inputs.family("loop"), reference="", consumes=("family:loop",)))
    y = np.zeros((1, FeatureConfig().segment_samples), dtype=np.float32)
    with pytest.raises(FamilyError, match="without a cycle"):
        compute_features(y, FeatureConfig(features="loop"))


def test_the_stfts_precision_derives_from_the_declarations() -> None:
    """float64 for a run holding a family that declares ``float64_stft`` or consumes one (at any
    depth, a plugin's too); float32 for every other run, and for one without a spectrum."""
    assert family("chroma").float64_stft and not family("tonnetz").float64_stft
    assert stft_precision(("tonnetz",)) == "float64"  # it consumes chroma
    assert stft_precision(("mel", "mfcc", "mfcc_delta", "flatness", "spectrogram")) == "float32"
    assert stft_precision(("mel", "chroma")) == "float64"
    assert stft_precision(DEFAULT_FEATURES) == "float64"
    assert stft_precision(("rms", "zcr")) == "float32" and stft_precision(()) == "float32"
    probe = (Variable("probe_value", "x", "1"),)
    register(Family(name="probe", version="1", variables=probe, compute=_zero, reference="", consumes=("family:tonnetz",)))
    register(Family(name="exact", version="1", variables=(Variable("exact_value", "x", "1"),), compute=_zero,
                    reference="", consumes=("power",), float64_stft=True))
    register(Family(name="outer", version="1", variables=(Variable("outer_value", "x", "1"),), compute=_zero,
                    reference="", consumes=("family:exact", "family:outer")))
    assert stft_precision(("probe",)) == "float64" and stft_precision(("outer",)) == "float64"
    assert stft_precision(("mel", "outer")) == "float64"
    y = np.zeros((1, FeatureConfig().segment_samples), dtype=np.float32)
    y[0, :100] = 0.5
    from pipeline.families.inputs import Inputs

    assert Inputs(y, FeatureConfig(features=("mel", "outer"))).precision == "float64"
    assert Inputs(y, FeatureConfig(features=("mel",))).precision == "float32"


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_every_family_in_a_store_equals_its_reference_across_chunk_boundaries(tmp_path: Path, precision: str) -> None:
    """A 20-s file (a drum groove, then speech-like noise bursts, then a tone) in chunks of 2
    segments: every stored segment of every family that runs at 22,050 Hz (float64: all of them
    in one run; float32: those that tolerate it), each against its reference on the segment of
    ``librosa.load``'s whole-file audio."""
    import librosa
    import soundfile as sf

    from pipeline import extract, open_store
    from pipeline.synth import genre_clip, noise, tone
    from pipeline.testing import assert_segment_close, reference_segment

    sr = 22050
    y = np.concatenate([genre_clip("hiphop", seconds=8.0, sr=sr, seed=4), 0.3 * noise(seconds=5.0, sr=sr, seed=2),
                        tone(freq=523.0, seconds=7.3, sr=sr)]).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, y, sr, subtype="FLOAT")
    names = [n for n in runnable_families() if precision == "float64" or stft_precision((n,)) == "float32"]
    config = FeatureConfig(features=names)
    assert stft_precision(config.features) == precision
    store = str(tmp_path / "s.zarr")
    extract([str(path)], store, config, scheduler="synchronous", progress=False, segment_chunk=2)
    ds = open_store(store)
    assert ds.sizes["segment"] == 7 and int(ds.attrs["segment_chunk"]) == 2
    audio, _ = librosa.load(path, sr=sr, mono=True)
    for i in range(ds.sizes["segment"]):
        start = round(float(ds["segment_offset"].values[i]) * sr)
        seg = np.zeros(config.segment_samples, dtype=np.float32)
        part = audio[start : start + config.segment_samples]
        seg[: part.size] = part
        ref = reference_segment(seg, config)
        got = {name: np.asarray(ds[name].values[i]) for name in ref}
        try:
            assert_segment_close(got, ref, seg, config)
        except AssertionError as exc:
            raise AssertionError(f"segment {i}: {exc}") from None
