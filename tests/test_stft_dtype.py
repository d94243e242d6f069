"""The STFT's arithmetic is a store's: kept across resume, grow and stores older than the choice."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import zarr
from test_resume_append import write_clips

from pipeline import ConfigMismatch, FeatureConfig, extract, open_store


def test_a_store_keeps_its_stfts_arithmetic_across_runs(tmp_path: Path) -> None:
    """A mel store computes in float32; a store from before the choice (no attribute: float64)
    is resumed only with --stft-dtype float64, never silently mixed; chroma cannot be added to
    a float32 store (its numbers need float64)."""
    write_clips(tmp_path / "clips", ["a", "b", "c"], seconds=4.0)
    store = str(tmp_path / "s.zarr")
    mel = FeatureConfig(features=("mel",), n_mels=32)
    extract([tmp_path / "clips"], store, mel, scheduler="synchronous", progress=False, segment_chunk=2)
    assert open_store(store).attrs["stft_dtype"] == "float32"
    with pytest.raises(ConfigMismatch, match="stft_dtype: 'float64' != 'float32'"):
        extract([tmp_path / "clips"], store, replace(mel, features=("mel", "chroma"), stft_dtype=None),
                scheduler="synchronous", progress=False)
    group = zarr.open_group(store, mode="r+")
    del group.attrs["stft_dtype"]  # as a store written before the attribute existed
    zarr.consolidate_metadata(store)
    with pytest.raises(ConfigMismatch, match="stft_dtype: 'float32' != 'float64'"):
        extract([tmp_path / "clips"], store, mel, scheduler="synchronous", progress=False)
    report = extract([tmp_path / "clips"], store, replace(mel, stft_dtype="float64"), scheduler="synchronous",
                     progress=False)
    assert report.chunks_skipped == report.chunks_total
