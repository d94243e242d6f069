"""The store's file table: FileRecord -> file_* coordinates -> a written store -> FileRecord, both ways."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from pipeline.config import FeatureConfig
from pipeline.probe import FileInfo, ManifestEntry
from pipeline.schema import FileRecord, Layout, build_layout, segment_coords
from pipeline.store import as_text, open_raw
from pipeline.template import FILE_FIELDS
from pipeline.write import (
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
    assert set(FILE_FIELDS) == set(FileRecord._fields)


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
    config = FeatureConfig(n_mels=32, features="mel,rms,chroma")  # chroma: a string axis (pitch_class)
    ours, theirs = tmp_path / "ours.zarr", tmp_path / "theirs.zarr"
    write_template(str(ours), {}, layout, config)
    ds, encoding = make_template(layout, config)
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


def test_layout_and_plan_vectorised_equal_a_file_by_file_reference() -> None:
    """``build_layout`` and ``graph.plan_tasks`` (vectorised over files) against the file-by-file
    definitions: each file's segments from ``segment_count(resampled_length(...))``, one after
    another; each chunk's files exactly those owning one of its segments, in file order, with
    the segment range inside it. Resampled, failed, one-sample and empty files; an append."""
    from pipeline.graph import plan_tasks
    from pipeline.schema import resampled_length, segment_count

    rng = np.random.default_rng(7)
    entries = []
    for i in range(60):
        sr = int(rng.choice([8000, 22050, 44100, 48000]))
        frames = int(rng.choice([0, 1, sr, int(rng.integers(1, 20 * sr))]))
        error = "unreadable audio header" if i % 11 == 3 else ""
        entries.append(_entry(f"/data/{i:03d}.wav", sample_rate=sr, frames=frames, error=error,
                              label=["jazz", "rock", ""][i % 3], split=["train", "val", "test"][i % 3 - 1]))
    old = build_layout(entries[:25], CONFIG, chunk=3)
    layout = build_layout(entries[25:], CONFIG, chunk=3, first_segment=old.n_chunks * 3, first_file_records=old.files)
    cursor = 0
    for k, (entry, record) in enumerate(zip(entries, layout.files, strict=True)):
        if k == 25:
            cursor = old.n_chunks * 3
        info = entry.info
        n = 0 if info.error else segment_count(resampled_length(info.frames, info.sample_rate, CONFIG.sr), CONFIG)
        assert (record.first_segment, record.n_segments) == (cursor, n), record.uri
        cursor += n
    assert layout.n_segments == cursor
    owner = {s: f for f, r in enumerate(layout.files) for s in range(r.first_segment, r.first_segment + r.n_segments)}
    # the plan's per-segment coordinates, segment by segment: the owner's, padding -1 and ""
    coords = segment_coords(layout, CONFIG)
    padding = [s for s in range(layout.n_segments) if s not in owner]
    assert padding  # the append starts on a chunk boundary
    for s in range(layout.n_segments):
        f = owner.get(s)
        record = layout.files[f] if f is not None else None
        expected = (-1, 0.0, "", "") if record is None else (
            f, (s - record.first_segment) * CONFIG.segment_hop_samples / CONFIG.sr, record.label, record.split)
        assert (coords["segment_file"][s], coords["segment_offset"][s], coords["label"][s], coords["split"][s]) == expected, s
    pending = [c for c in range(layout.n_chunks) if c % 4 != 1]
    partial = {1: ("zcr",)}
    tasks = plan_tasks(layout, pending, partial=partial)
    assert [t.index for t in tasks] == [*pending, 1]
    for task in tasks:
        expected = sorted({owner[s] for s in range(task.start, task.stop) if s in owner})
        assert [f.file_index for f in task.files] == expected, task.index
        for f in task.files:
            record = layout.files[f.file_index]
            inside = [s - record.first_segment for s in range(task.start, task.stop) if owner.get(s) == f.file_index]
            assert (f.seg_lo, f.seg_hi) == (inside[0], inside[-1] + 1)
            assert (f.uri, f.first_segment, f.frames, f.sample_rate) == (record.uri, record.first_segment,
                                                                         record.frames, record.sample_rate)
