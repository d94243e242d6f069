"""End to end: audio files -> store, checked against librosa on every segment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import xarray as xr

from pipeline import FeatureConfig, extract, open_store
from pipeline.errors import ConfigMismatch
from pipeline.schema import segment_starts
from pipeline.store import as_text, open_group, open_raw
from pipeline.testing import assert_segment_close, reference_segment

SMALL = FeatureConfig(features=("mel", "mfcc", "chroma", "spectral", "zcr", "rms", "spectrogram"), n_mels=64)


def check_against_librosa(store: str, config: FeatureConfig, **open_kwargs: object) -> int:
    """Every visible segment equals librosa.load + the reference calls; returns segments checked."""
    ds = open_store(store, **open_kwargs)  # type: ignore[arg-type]
    paths = as_text(ds["file_path"])
    checked = 0
    loaded: dict[int, np.ndarray] = {}
    for s in range(ds.sizes["segment"]):
        f = int(ds["segment_file"].values[s])
        if f not in loaded:
            loaded[f], _ = librosa.load(paths[f], sr=config.sr, mono=True)
        y = loaded[f]
        start = round(float(ds["segment_offset"].values[s]) * config.sr)
        seg = np.zeros(config.segment_samples, dtype=np.float32)
        part = y[start : start + config.segment_samples]
        seg[: part.size] = part
        ref = reference_segment(seg, config)
        valid = int(ds["segment_valid_frames"].values[s])
        assert valid == config.valid_frames(part.size)
        assert_segment_close({var: ds[var].isel(segment=s).values for var in ref}, ref, seg, config)
        for var in ref:
            got = ds[var].isel(segment=s).values
            # summaries: over the valid frames of the stored (librosa-equal) frames
            scale = max(1e-6, float(np.abs(got).max()))
            for stat, func in (("mean", np.mean), ("std", np.std)):
                summary = ds[f"{var}_{stat}"].isel(segment=s).values
                np.testing.assert_allclose(summary, func(got[:valid].astype(np.float64), axis=0), rtol=1e-5, atol=1e-6 * scale)
        checked += 1
    return checked


@pytest.fixture(scope="module")
def small_store(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    store = str(tmp_path_factory.mktemp("stores") / "small.zarr")
    report = extract([corpus], store, SMALL, scheduler="synchronous", label_from="parent", progress=False, segment_chunk=3)
    assert report.files_failed == 0 and report.files_ok == 5
    return store


def test_store_matches_librosa(small_store: str) -> None:
    n = check_against_librosa(small_store, SMALL)
    expected = 0
    for path in as_text(open_raw(small_store)["file_path"]):
        y, _ = librosa.load(path, sr=SMALL.sr)
        expected += segment_starts(y.size, SMALL).size
    assert n == expected > 5


def test_labels_splits_and_attrs(small_store: str) -> None:
    ds = open_store(small_store)
    paths = as_text(ds["file_path"])
    for s in range(ds.sizes["segment"]):
        f = int(ds["segment_file"].values[s])
        assert ds["label"].values[s] == Path(paths[f]).parent.name
        assert ds["split"].values[s] == ds["file_split"].values[f]
    assert FeatureConfig.from_dict(dict(ds.attrs)) == SMALL
    assert json.loads(ds.attrs["versions"])["librosa"] == librosa.__version__
    for name, var in ds.variables.items():
        assert "description" in var.attrs and "units" in var.attrs, name
    assert set(ds["file_status"].values) == {"ok"}
    assert ds["mel"].dtype == np.float32 and ds["mel"].dims == ("segment", "frame", "mel_band")
    assert list(ds["pitch_class"].values[:3]) == ["C", "C#", "D"]
    for var in ds.data_vars.values():
        assert not np.isnan(var.values).any()


def test_plain_xarray_reads_the_store_without_the_package(small_store: str) -> None:
    code = f"""
import sys, json, xarray as xr
ds = xr.open_zarr({small_store!r})
assert "pipeline" not in sys.modules
print(json.dumps({{"dims": dict(ds.sizes), "mel": float(ds["mel_mean"].isel(segment=0).mean()), "sr": ds.attrs["sr"]}}))
"""
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True, cwd="/")
    out = json.loads(proc.stdout)
    assert out["sr"] == 22050 and out["dims"]["mel_band"] == 64
    ours = open_raw(small_store)
    assert out["mel"] == pytest.approx(float(ours["mel_mean"].isel(segment=0).mean()))


def test_a_plain_xarray_export_to_netcdf_keeps_values_and_config(small_store: str, tmp_path: Path) -> None:
    """Attributes are netCDF-safe (no dicts, bools or None): a user's to_netcdf works, and
    the config read back from the netCDF file is the store's."""
    ds = xr.open_zarr(small_store)
    path = tmp_path / "export.nc"
    ds[["rms_mean", "label"]].to_netcdf(path)
    with xr.open_dataset(path) as back:
        np.testing.assert_array_equal(back["rms_mean"].values, ds["rms_mean"].values)
        assert list(back["label"].values) == list(ds["label"].values.astype(object))
        assert FeatureConfig.from_dict(dict(back.attrs)) == SMALL
        assert json.loads(back.attrs["versions"])["zarr"]


def test_store_is_zarr_v3_zstd_chunk_aligned(small_store: str) -> None:
    group = open_group(small_store, mode="r")
    assert group.metadata.zarr_format == 3
    mel = group["mel"]
    assert mel.chunks[0] == 3 and mel.chunks[1:] == mel.shape[1:]
    assert "zstd" in repr(mel.compressors).lower()
    meta = json.loads((Path(small_store) / "zarr.json").read_text())
    assert "consolidated_metadata" in meta
    assert "numcodecs.pickle" not in json.dumps(meta).lower()


def test_rerun_resumes_only_missing_chunks(small_store: str, tmp_path: Path) -> None:
    import shutil

    copy = str(tmp_path / "copy.zarr")
    shutil.copytree(small_store, copy)
    before = open_raw(copy).load()
    group = open_group(copy)
    n_chunks = group["chunk_done"].shape[0]
    assert n_chunks >= 3
    # forget chunk 1 and scribble over its data, as a crash mid-write would leave it
    group["chunk_done"][1] = 0
    group["mel"][3:6] = np.float32(-1.0)
    assert open_store(copy).sizes["segment"] < before.sizes["segment"]
    from pipeline.info import format_info

    assert f"complete: {n_chunks - 1}/{n_chunks} chunks" in format_info(copy, check_files=False)
    report = extract([Path(before["file_path"].values[0]).parent.parent], copy, SMALL, scheduler="synchronous", label_from="parent", progress=False)
    assert report.chunks_computed == 1 and report.chunks_skipped == n_chunks - 1
    after = open_raw(copy).load()
    for name in before.data_vars:
        xr.testing.assert_identical(before[name], after[name])


def test_different_config_is_refused_before_touching_the_store(small_store: str, corpus: Path) -> None:
    stamp = (Path(small_store) / "zarr.json").read_bytes()
    with pytest.raises(ConfigMismatch, match="n_mels: 128 != 64"):
        extract([corpus], small_store, FeatureConfig(), scheduler="synchronous", progress=False)
    assert (Path(small_store) / "zarr.json").read_bytes() == stamp


def test_bad_files_are_recorded_and_run_goes_on(tmp_path: Path, corpus: Path) -> None:
    root = tmp_path / "mixed"
    (root / "good").mkdir(parents=True)
    y = (0.2 * np.sin(2 * np.pi * 220 * np.arange(22050 * 4) / 22050)).astype(np.float32)
    sf.write(root / "good" / "ok.wav", y, 22050)
    (root / "good" / "empty.wav").write_bytes(b"")
    (root / "good" / "text.flac").write_text("definitely not flac")
    nan = y.copy()
    nan[5000] = np.nan
    sf.write(root / "good" / "nan.wav", nan, 22050, subtype="FLOAT")
    store = str(tmp_path / "mixed.zarr")
    report = extract([root], store, FeatureConfig(), scheduler="synchronous", label_from="parent", progress=False)
    assert (report.files_ok, report.files_failed) == (1, 3)
    reasons = dict(report.failed)
    assert "empty" in reasons[str(root / "good" / "empty.wav")]
    assert "not a recognised audio format" in reasons[str(root / "good" / "text.flac")]
    assert "non-finite" in reasons[str(root / "good" / "nan.wav")]
    ds = open_store(store)
    assert set(as_text(ds["file_path"])[ds["segment_file"].values]) == {str(root / "good" / "ok.wav")}
    assert not np.isnan(ds["mel"].values).any()
    raw = open_raw(store)
    status = dict(zip(as_text(raw["file_path"]), as_text(raw["file_status"]), strict=True))
    assert status[str(root / "good" / "nan.wav")] == "error"
    assert all(as_text(raw["file_error"])[as_text(raw["file_status"]) == "error"])


def test_long_file_spans_chunks_and_matches(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "long" / "x.wav"
    path.parent.mkdir()
    t = np.arange(44100 * 40) / 44100
    y = 0.2 * np.sin(2 * np.pi * (200 + 50 * np.sin(t)) * t) + rng.normal(0, 0.01, t.size)
    sf.write(path, np.stack([y, -y * 0.5], axis=1).astype(np.float32), 44100, subtype="PCM_24")
    config = FeatureConfig(features=("mel", "chroma", "rms"), segment_seconds=3.0, segment_hop_seconds=2.0)
    store = str(tmp_path / "long.zarr")
    report = extract([path], store, config, scheduler="synchronous", progress=False, segment_chunk=4)
    assert report.chunks_total >= 4
    assert check_against_librosa(store, config) == report.segments


def test_memory_filesystem_in_and_out(corpus: Path) -> None:
    """fsspec's memory:// works for inputs and the store (in-process only, by nature)."""
    import fsspec

    fs = fsspec.filesystem("memory")
    for path in sorted((corpus / "tones").iterdir()):
        fs.pipe(f"memory://corpus/tones/{path.name}", path.read_bytes())
    config = FeatureConfig(features=("mel", "rms"), n_mels=32)
    report = extract(["memory://corpus"], "memory://stores/m.zarr", config, scheduler="synchronous",
                     label_from="parent", progress=False)
    assert report.files_ok == 2
    ds = open_store("memory://stores/m.zarr")
    assert set(ds["label"].values) == {"tones"}
    assert all(p.startswith("memory://corpus/tones/") for p in as_text(ds["file_path"]))
    local = extract([corpus / "tones"], "memory://stores/local-copy.zarr", config, scheduler="synchronous", progress=False)
    assert local.segments == report.segments
    np.testing.assert_array_equal(ds["mel"].values, open_store("memory://stores/local-copy.zarr")["mel"].values)


def test_foreign_zarr_store_is_not_overwritten(tmp_path: Path, corpus: Path) -> None:
    import zarr

    from pipeline.errors import SchemaError

    foreign = tmp_path / "theirs.zarr"
    group = zarr.open_group(str(foreign), mode="w")
    group.create_array("precious", shape=(3,), dtype="i4")[:] = [1, 2, 3]
    with pytest.raises(SchemaError, match="another Zarr store"):
        extract([corpus], str(foreign), FeatureConfig(), scheduler="synchronous", progress=False)
    assert list(zarr.open_group(str(foreign), mode="r")["precious"][:]) == [1, 2, 3]


def test_interrupted_template_is_rewritten(tmp_path: Path, corpus: Path) -> None:
    store = tmp_path / "t.zarr"
    config = FeatureConfig(features=("rms",))
    extract([corpus], str(store), config, scheduler="synchronous", progress=False)
    group = open_group(str(store))
    del group.attrs["pipeline_template"]  # as if the client died while writing the template
    report = extract([corpus], str(store), config, scheduler="synchronous", progress=False)
    assert report.chunks_computed == report.chunks_total
    assert open_raw(str(store)).attrs["pipeline_template"] == "complete"


def test_a_small_default_run_stays_in_process(tmp_path: Path, corpus: Path) -> None:
    """No client, scheduler or workers given and less audio than a local cluster pays for:
    the run is in-process and says so; above the threshold, or asked for workers, it is not."""
    import io

    import dask

    from pipeline.cluster import auto_scheduler as _auto_scheduler

    out = io.StringIO()
    report = extract([corpus], str(tmp_path / "s.zarr"), SMALL, label_from="parent", progress=False, out=out)
    assert report.files_ok == 5
    assert "in-process: 5 files, 0.4 min of audio" in out.getvalue() and "Dask dashboard" not in out.getvalue()
    uris = sorted(str(p) for p in corpus.rglob("*.*"))
    with dask.config.set({"pipeline.in-process-below-seconds": 10}):  # the corpus holds 23 s
        scheduler, probed = _auto_scheduler(uris, {}, client=None, scheduler=None, workers=None, out=io.StringIO())
    assert scheduler is None and probed is not None and set(probed) == set(uris)
    assert _auto_scheduler(uris, {}, client=None, scheduler=None, workers=2, out=io.StringIO()) == (None, None)
