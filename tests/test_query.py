"""Reading stores back: tables, summary matrices, standardisation and similarity search."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from pathlib import Path

import dask.array as da
import fsspec
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import xarray as xr

from pipeline import FeatureConfig, extract, open_store
from pipeline.errors import InputError
from pipeline.families.axes import PITCH_CLASSES
from pipeline.query import (
    feature_names,
    query,
    segment_ids,
    standardize_stats,
    summary_matrix,
    summary_variables,
    write_table,
)
from pipeline.similar import featurise_audio, similar
from pipeline.standardize import moments, unit_std
from pipeline.store import as_text, open_raw

SR = 22050
CONFIG = FeatureConfig(n_mels=32)


def _tone(seconds: float, amplitude: float, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * 440.0 * t + phase)).astype(np.float32)


def _noise(seconds: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, int(seconds * SR)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus_store(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The shared odd-but-valid corpus (labels tones/noise), 3 segments per chunk."""
    store = str(tmp_path_factory.mktemp("query") / "corpus.zarr")
    extract([corpus], store, CONFIG, scheduler="synchronous", label_from="parent", progress=False, segment_chunk=3)
    return store


@pytest.fixture(scope="module")
def clear(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Path]]:
    """Two 440 Hz tone files and two white-noise files (6 s, 2 segments each), fixed splits."""
    root = tmp_path_factory.mktemp("clear")
    signals = {"tones/tone_a.wav": _tone(6.0, 0.5), "tones/tone_b.wav": _tone(6.0, 0.3, 1.0),
               "noise/noise_c.wav": _noise(6.0, 1), "noise/noise_d.wav": _noise(6.0, 2)}
    paths: dict[str, Path] = {}
    for rel, y in signals.items():
        path = root / "corpus" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, y, SR, subtype="FLOAT")
        paths[path.stem] = path
    splits = {"tone_a": "train", "noise_c": "train", "tone_b": "val", "noise_d": "val"}
    labels = {str(paths[stem]): (paths[stem].parent.name, split) for stem, split in splits.items()}
    store = str(root / "clear.zarr")
    extract([root / "corpus"], store, CONFIG, scheduler="synchronous", labels=labels, progress=False, segment_chunk=3)
    return store, paths


# -- summary_variables / feature_names / summary_matrix ---------------------------------
def test_summary_variables(corpus_store: str) -> None:
    ds = open_store(corpus_store)
    every = summary_variables(ds)
    assert every == [str(v) for v in ds.data_vars if str(v).endswith(("_mean", "_std"))]
    assert len(every) == 2 * len(CONFIG.frame_variables)
    assert summary_variables(ds, ["mfcc"]) == ["mfcc_mean", "mfcc_std"]
    # store order, whatever the order asked, and no duplicates
    picked = summary_variables(ds, ["rms_mean", "mfcc", "mfcc_std"])
    assert picked == [v for v in every if v in ("rms_mean", "mfcc_mean", "mfcc_std")]
    assert summary_variables(ds, ["spectral"]) == [v for v in every if v.startswith("spectral_")]
    with pytest.raises(InputError, match=r"Expected families among .*mfcc.* or variables among .*got unknown 'tempo'"):
        summary_variables(ds, ["mfcc", "tempo"])


def test_feature_names_and_matrix(corpus_store: str) -> None:
    ds = open_store(corpus_store)
    names = feature_names(ds)
    assert [f"mfcc_mean_{i}" for i in range(20)] == [n for n in names if n.startswith("mfcc_mean_")]
    assert [f"chroma_std_{p}" for p in PITCH_CLASSES] == [n for n in names if n.startswith("chroma_std_")]
    assert [f"mel_mean_{i}" for i in range(32)] == [n for n in names if n.startswith("mel_mean_")]
    assert {"rms_mean", "rms_std", "spectral_centroid_std", "zero_crossing_rate_mean"} <= set(names)
    matrix = summary_matrix(ds)
    assert isinstance(matrix, da.Array)
    assert matrix.shape == (ds.sizes["segment"], len(names)) and matrix.dtype == np.float32
    assert matrix.chunks[0] == ds["mfcc_mean"].data.chunks[0] and len(matrix.chunks[0]) > 1
    assert len(matrix.chunks[1]) == 1
    values = matrix.compute()
    np.testing.assert_array_equal(values[:, names.index("mfcc_mean_7")], ds["mfcc_mean"].values[:, 7])
    np.testing.assert_array_equal(values[:, names.index("chroma_std_A")], ds["chroma_std"].values[:, 9])
    np.testing.assert_array_equal(values[:, names.index("rms_mean")], ds["rms_mean"].values)
    assert summary_matrix(ds, ["rms"]).shape == (ds.sizes["segment"], 2)


# -- query ---------------------------------------------------------------------------------
def test_query_table_equals_store(corpus_store: str) -> None:
    ds = open_store(corpus_store)
    df = query(corpus_store)
    assert len(df) == ds.sizes["segment"] > 5
    assert df.index.name == "segment"
    np.testing.assert_array_equal(df.index.to_numpy(), ds["segment"].values)
    assert list(df.columns) == ["file", "offset", "label", "split", *feature_names(ds)]
    paths = as_text(ds["file_path"])
    assert list(df["file"]) == [paths[f] for f in ds["segment_file"].values]
    assert list(df["label"]) == list(as_text(ds["label"]))
    assert list(df["split"]) == list(as_text(ds["split"]))
    np.testing.assert_array_equal(df["offset"].to_numpy(), ds["segment_offset"].values)
    for column, var, i in (("mfcc_mean_0", "mfcc_mean", 0), ("mel_std_31", "mel_std", 31), ("chroma_mean_C#", "chroma_mean", 1)):
        np.testing.assert_array_equal(df[column].to_numpy(), ds[var].values[:, i])
    np.testing.assert_array_equal(df["spectral_centroid_std"].to_numpy(), ds["spectral_centroid_std"].values)
    assert df["mfcc_mean_0"].dtype == np.float32
    # without the `segment` coordinate the store index is rebuilt from the per-file plan
    np.testing.assert_array_equal(segment_ids(ds.drop_vars("segment")), ds["segment"].values)
    only = query(corpus_store, vars=["rms"])
    assert list(only.columns) == ["file", "offset", "label", "split", "rms_mean", "rms_std"]


def test_query_filters(corpus_store: str, corpus: Path, clear: tuple[str, dict[str, Path]]) -> None:
    ds = open_store(corpus_store)
    full = query(ds)
    tones = query(ds, labels=["tones"])
    assert len(tones) == int((as_text(ds["label"]) == "tones").sum()) > 0
    assert set(tones["label"]) == {"tones"}
    pd.testing.assert_frame_equal(tones, full[full["label"] == "tones"])
    assert len(query(ds, labels=["tones", "noise"])) == len(full)
    # basename and full-path patterns
    a440 = query(ds, file_glob="a440.wav")
    assert len(a440) == 3 and {Path(f).name for f in a440["file"]} == {"a440.wav"}
    wavs = query(ds, file_glob="*.wav")
    assert set(wavs["file"]) == {f for f in full["file"] if f.endswith(".wav")}
    noise_dir = query(ds, file_glob=f"{corpus}/noise/*")
    assert set(noise_dir["label"]) == {"noise"} and len(noise_dir) == int((full["label"] == "noise").sum())
    assert len(query(ds, labels=["tones"], file_glob="*.flac")) == 1
    assert query(ds, file_glob="nothing-*").empty

    store, _ = clear
    val = query(store, split="val")
    assert {Path(f).stem for f in val["file"]} == {"tone_b", "noise_d"} and len(val) == 4
    assert set(val["split"]) == {"val"}
    assert query(store, split="test").empty
    train_tones = query(store, split="train", labels=["tones"])
    assert {Path(f).stem for f in train_tones["file"]} == {"tone_a"}

    with pytest.raises(InputError, match=r"Expected split to be one of train, val, test, got 'training'"):
        query(store, split="training")
    with pytest.raises(InputError, match=r"Expected labels among noise, tones, got unknown 'jazz'"):
        query(store, labels=["jazz"])


def test_query_shows_visible_segments_only(tmp_path: Path) -> None:
    """A truncated FLAC: the header (STREAMINFO) plans 2 segments, the data holds only the first.
    (A truncated PCM WAV is laid out as what its bytes hold, so it plans no invisible segment.)"""
    path = tmp_path / "in" / "tones" / "cut.flac"
    path.parent.mkdir(parents=True)
    noisy = _tone(6.0, 0.5) + np.random.default_rng(3).normal(0, 0.05, int(6.0 * SR)).astype(np.float32)
    sf.write(path, noisy, SR, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # about 2 s decode
    store = str(tmp_path / "cut.zarr")
    extract([tmp_path / "in"], store, CONFIG, scheduler="synchronous", label_from="parent", progress=False)
    assert open_raw(store).sizes["segment"] == 2
    df = query(store)
    assert list(df.index) == [0]
    with pytest.raises(InputError, match=r"Expected a visible segment index .*got 1"):
        similar(store, segment=1)


# -- write_table ---------------------------------------------------------------------------
def test_write_table(corpus_store: str, tmp_path: Path) -> None:
    df = query(corpus_store)
    out = tmp_path / "table.csv"
    write_table(df, str(out))
    back = pd.read_csv(out, index_col="segment")
    assert list(back.columns) == list(df.columns)
    pd.testing.assert_frame_equal(back, df, check_dtype=False, rtol=1e-6)
    write_table(df, "memory://query-test/table.csv")  # fsspec URLs work too
    pd.testing.assert_frame_equal(pd.read_csv("memory://query-test/table.csv", index_col="segment"), back)
    fsspec.filesystem("memory").rm("/query-test", recursive=True)
    parquet = str(tmp_path / "table.parquet")
    write_table(df, parquet)  # pyarrow is a dependency
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), df)
    with pytest.raises(InputError, match=r"Expected an output path ending in .parquet or .csv, got .*table.xlsx"):
        write_table(df, str(tmp_path / "table.xlsx"))


# -- standardize_stats ---------------------------------------------------------------------
def test_standardize_stats(clear: tuple[str, dict[str, Path]]) -> None:
    store, _ = clear
    ds = open_store(store)
    table = query(ds)
    names = feature_names(ds)
    mean_all, std_all = standardize_stats(ds, split=None)
    mean_train, std_train = standardize_stats(ds)
    values = table[names].to_numpy(np.float64)
    train = table["split"].to_numpy() == "train"
    np.testing.assert_allclose(mean_all, values.mean(axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(mean_train, values[train].mean(axis=0), rtol=1e-9, atol=1e-9)
    expected_std = values[train].std(axis=0)
    expected_std[expected_std == 0] = 1.0
    np.testing.assert_allclose(std_train, expected_std, rtol=1e-9, atol=1e-9)
    assert not np.allclose(mean_train, mean_all)
    # an empty split falls back to every segment
    mean_test, std_test = standardize_stats(ds, split="test")
    np.testing.assert_array_equal(mean_test, mean_all)
    np.testing.assert_array_equal(std_test, std_all)
    # a constant column gets std 1 (a NumPy-backed variable works too)
    flat = ds.assign(rms_mean=xr.full_like(ds["rms_mean"].load(), 0.25))
    mean, std = standardize_stats(flat, vars=["rms_mean"], split=None)
    np.testing.assert_allclose(mean, [0.25])
    np.testing.assert_array_equal(std, [1.0])
    with pytest.raises(InputError, match="Expected split"):
        standardize_stats(ds, split="dev")


# -- similar -------------------------------------------------------------------------------
def _reference_distances(ds: xr.Dataset, query_vector: np.ndarray) -> np.ndarray:
    values = query(ds)[feature_names(ds)].to_numpy(np.float64)
    mean, std = values.mean(axis=0), values.std(axis=0)
    std[std == 0] = 1.0
    z, q = (values - mean) / std, (query_vector - mean) / std
    cosine = z @ q / (np.linalg.norm(z, axis=1) * np.linalg.norm(q))
    distances: np.ndarray = 1.0 - cosine
    return distances


def test_similar_by_segment(clear: tuple[str, dict[str, Path]]) -> None:
    store, _ = clear
    ds = open_store(store)
    table = query(ds)
    tone = int(table.index[table["label"] == "tones"][0])
    result = similar(store, segment=tone, k=3)
    assert list(result.columns) == ["segment", "distance", "file", "offset", "label"]
    assert len(result) == 3 and tone not in set(result["segment"])
    assert result["distance"].is_monotonic_increasing
    assert set(result["label"]) == {"tones"}  # the 3 other tone segments, no noise
    noise = int(table.index[table["label"] == "noise"][-1])
    assert set(similar(ds, segment=noise, k=3)["label"]) == {"noise"}
    # every other segment, with the distances a plain NumPy computation gives
    everything = similar(ds, segment=tone, k=100)
    assert len(everything) == ds.sizes["segment"] - 1
    reference = _reference_distances(ds, table.loc[tone, feature_names(ds)].to_numpy(np.float64))
    expected = pd.Series(reference, index=table.index).drop(tone)
    got = everything.set_index("segment")["distance"]
    np.testing.assert_allclose(got.sort_index().to_numpy(), expected.sort_index().to_numpy(), atol=1e-6)
    assert list(everything["file"]) == list(table.loc[everything["segment"], "file"])
    np.testing.assert_array_equal(everything["offset"].to_numpy(), table.loc[everything["segment"], "offset"].to_numpy())


def test_similar_by_audio(clear: tuple[str, dict[str, Path]], tmp_path: Path) -> None:
    store, paths = clear
    ds = open_store(store)
    copy = tmp_path / "outside" / "copy.wav"
    copy.parent.mkdir()
    shutil.copy(paths["tone_a"], copy)
    result = similar(store, audio=str(copy), k=4)
    assert len(result) == 4 and set(result["label"]) == {"tones"}
    assert result["distance"].is_monotonic_increasing
    # the first 3 s of tone_a is exactly its first segment: distance ~0 to that segment
    clip = tmp_path / "outside" / "clip.wav"
    y, _ = sf.read(paths["tone_a"], dtype="float32")
    sf.write(clip, y[: CONFIG.segment_samples], SR, subtype="FLOAT")
    table = query(ds)
    first = int(table.index[(table["file"] == str(paths["tone_a"])) & (table["offset"] == 0.0)][0])
    nearest = similar(ds, audio=str(clip), k=ds.sizes["segment"]).set_index("segment")["distance"]
    assert nearest.loc[first] < 1e-4 and nearest.iloc[0] < 1e-4


def test_similar_errors(clear: tuple[str, dict[str, Path]], tmp_path: Path) -> None:
    store, _ = clear
    ds = open_store(store)
    with pytest.raises(InputError, match="Expected exactly one of segment or audio, got both"):
        similar(ds, segment=0, audio="x.wav")
    with pytest.raises(InputError, match="Expected exactly one of segment or audio, got neither"):
        similar(ds)
    with pytest.raises(InputError, match="Expected k to be a positive integer, got 0"):
        similar(ds, segment=0, k=0)
    with pytest.raises(InputError, match=r"Expected a visible segment index .*got 999"):
        similar(ds, segment=999)
    with pytest.raises(InputError, match="Expected families among"):
        similar(ds, segment=0, vars=["tempo"])
    fake = tmp_path / "fake.wav"
    fake.write_text("not audio")
    with pytest.raises(InputError, match=r"Expected a readable audio file, got .*fake.wav: unreadable audio header"):
        similar(ds, audio=str(fake))


def test_outside_audio_is_featurised_as_the_store_did(clear: tuple[str, dict[str, Path]], tmp_path: Path) -> None:
    """similar featurises an outside file with the chunk tasks' code: a copy of a stored file
    gives the stored summary vectors, bit for bit."""
    store, paths = clear
    ds = open_store(store)
    copy = tmp_path / "copy.wav"
    shutil.copy(paths["noise_c"], copy)
    table = query(ds)
    stored = table[table["file"] == str(paths["noise_c"])][feature_names(ds)].to_numpy()
    got = featurise_audio(str(copy), ds)
    assert got.dtype == np.float32 and got.shape == stored.shape == (2, len(feature_names(ds)))
    np.testing.assert_array_equal(got, stored)
    np.testing.assert_array_equal(featurise_audio(str(copy), ds, vars=["mfcc"]),
                                  table[table["file"] == str(paths["noise_c"])][feature_names(ds, ["mfcc"])].to_numpy())


def test_similar_names(clear: tuple[str, dict[str, Path]]) -> None:
    """``similar`` lives in pipeline.similar, and ``pipeline.similar(...)`` calls it."""
    import pipeline
    import pipeline.similar as module

    store, _ = clear
    pd.testing.assert_frame_equal(pipeline.similar(store, segment=0, k=2), module.similar(store, segment=0, k=2))
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        _ = importlib.import_module("pipeline.query").nothing


def test_moments() -> None:
    """The one standardisation rule: float64 moments, a std not above the floor (or NaN) is 1."""
    x = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, 1.0], [5.0, 5.0, 3.0]], dtype=np.float32)
    mean, std = moments(x[:, :2])
    np.testing.assert_array_equal(mean, [3.0, 5.0])
    np.testing.assert_allclose(std, [np.sqrt(8 / 3), 1.0])
    assert mean.dtype == std.dtype == np.float64
    lazy = moments(da.from_array(x[:, :2], chunks=(2, 2)))
    np.testing.assert_allclose(lazy[0], mean, rtol=1e-15)
    np.testing.assert_allclose(lazy[1], std, rtol=1e-15)
    # NaN skipped on request; else its column's std (NaN) counts as no spread
    mean, std = moments(x, skipna=True)
    np.testing.assert_array_equal(mean, [3.0, 5.0, 2.0])
    np.testing.assert_array_equal(std[1:], [1.0, 1.0])
    assert moments(x)[1][2] == 1.0
    mean, std = moments(da.from_array(x, chunks=(1, 3)), skipna=True)
    np.testing.assert_array_equal(mean, [3.0, 5.0, 2.0])
    # the floor, after the cast to the requested dtype
    tiny = np.array([[0.0, 0.0], [1e-13, 1.0]])
    mean, std = moments(tiny, floor=1e-12, dtype=np.float32)
    assert std.dtype == np.float32 and std[0] == 1.0 and std[1] == np.float32(0.5)
    assert moments(tiny)[1][0] == pytest.approx(5e-14)
    np.testing.assert_array_equal(unit_std(np.array([0.0, 2.0, np.nan])), [1.0, 2.0, 1.0])
