"""The store's file table: FileRecord -> file_* coordinates -> a written store -> FileRecord, both ways."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from pipeline.config import FeatureConfig
from pipeline.probe import FileInfo, ManifestEntry
from pipeline.schema import FileRecord, Layout, build_layout
from pipeline.store import as_text, open_raw
from pipeline.write import (
    _FILE_FIELDS,
    file_columns,
    file_records,
    layout_from_store,
    make_template,
    write_template,
)

CONFIG = FeatureConfig(n_mels=32, features="mel,rms", segment_seconds=3.0)


def _entry(uri: str, *, label: str = "jazz", split: str = "train", **changes: Any) -> ManifestEntry:
    info = FileInfo(uri=uri, size=1234, fingerprint="1234-1700000000.000000", sample_rate=44100, channels=2,
                    frames=44100 * 7, format="WAV")
    return ManifestEntry(dataclasses.replace(info, **changes), label, split)


def _layout() -> Layout:
    entries = [
        _entry("/data/ok.wav"),
        _entry("/data/é ünïcode/b.flac", format="FLAC", label="", split="val", channels=1,
               warning="truncated: the header declares 441000 frames (10.000 s), the file holds 308700 (7.000 s)"),
        _entry("/data/bad.wav", error="unreadable audio header: not a recognised audio format", sample_rate=0,
               channels=0, frames=0, format="", split="test"),
        _entry("s3://bucket/long.mp3", frames=2**31 + 5, sample_rate=48000, size=2**33, format="MP3",
               fingerprint='8589934592-"etag"'),
    ]
    return build_layout(entries, CONFIG, chunk=4096)  # 4 chunks: few objects to write


def test_every_file_record_field_has_a_column() -> None:
    assert set(_FILE_FIELDS) == {f.name for f in dataclasses.fields(FileRecord)}


def test_file_records_round_trip_through_a_written_store(tmp_path: Path) -> None:
    layout = _layout()
    store = str(tmp_path / "s.zarr")
    write_template(store, {}, layout, CONFIG)
    ds = open_raw(store)
    # store -> records: exactly the records written, every field (error and warning included)
    assert file_records(ds) == layout.files
    assert layout_from_store(ds) == layout
    # records -> columns: the coordinates the store holds, value for value and dtype for dtype
    for name, (values, _, _) in file_columns(file_records(ds)).items():
        stored = as_text(ds[name]) if values.dtype == object else np.asarray(ds[name].values)
        assert list(stored) == list(values), name
        if values.dtype != object:
            assert stored.dtype == values.dtype, name
    assert list(as_text(ds["file_status"])) == ["pending", "pending", "error", "pending"]
    np.testing.assert_allclose(ds["file_duration"].values, [7.0, 7.0, 0.0, (2**31 + 5) / 48000])


def test_the_template_is_the_store_xarray_writes(tmp_path: Path) -> None:
    """``write_template`` writes the string variables through zarr, not xarray: every array's
    metadata (dtype, chunks, codecs, fill value, dimension names, attributes) and values, and the
    root attributes, are those of the template written whole by ``xarray.Dataset.to_zarr``."""
    layout = _layout()
    ours, theirs = tmp_path / "ours.zarr", tmp_path / "theirs.zarr"
    write_template(str(ours), {}, layout, CONFIG)
    ds, encoding = make_template(layout, CONFIG)
    ds.to_zarr(theirs, mode="w", compute=False, encoding=encoding, consolidated=False, zarr_format=3)
    a, b = zarr.open_group(ours, mode="r", use_consolidated=False), zarr.open_group(theirs, mode="r")
    assert sorted(a.array_keys()) == sorted(b.array_keys())
    for name in a.array_keys():
        x, y = a[name], b[name]
        assert isinstance(x, zarr.Array) and isinstance(y, zarr.Array)
        assert x.metadata.to_dict() == y.metadata.to_dict(), name
        if x.dtype.kind in "OT" or x.ndim == 1:  # the small ones: values too (placeholders read as fill)
            np.testing.assert_array_equal(np.asarray(x[:]), np.asarray(y[:]), err_msg=name)
    moments = {"created", "updated", "pipeline_template"}
    assert {k: v for k, v in a.attrs.items() if k not in moments} == {k: v for k, v in b.attrs.items() if k not in moments}
