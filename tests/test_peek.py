"""The zarr-only view of a store (what ``info`` reads) equals what ``xr.open_zarr`` shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pipeline import FeatureConfig, SchemaError, extract
from pipeline.info import format_info
from pipeline.peek import peek_store
from pipeline.store import completeness, label_counts, open_raw, visible_segments


@pytest.fixture(scope="module")
def grown_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two labels, one undecodable file, an added family whose flag is missing in one chunk."""
    from test_resume_append import write_clips

    root = tmp_path_factory.mktemp("peek")
    write_clips(root / "clips", ["a", "b", "c"], seconds=4.0)
    (root / "clips" / "low" / "broken.wav").write_bytes(b"RIFF not a wave file at all")
    store = str(root / "s.zarr")
    for features in (("rms",), ("rms", "zcr")):  # the second run adds zcr to the store
        extract([root / "clips"], store, FeatureConfig(features=features), scheduler="synchronous",
                label_from="parent", progress=False, segment_chunk=2)
    flags = sorted((Path(store) / "chunk_done_zcr" / "c").iterdir())
    assert len(flags) >= 2
    flags[0].unlink()  # zcr not written in the first chunk (a grow run stopped half-way)
    return store


def test_view_is_what_xarray_shows(grown_store: str) -> None:
    view = peek_store(grown_store)
    ds = xr.open_zarr(grown_store, chunks=None)
    assert view.attrs == ds.attrs
    assert list(view.sizes.items()) == list(ds.sizes.items())
    assert list(view.data_vars) == list(map(str, ds.data_vars))
    assert sorted(view.coords) == sorted(map(str, ds.coords))
    assert sorted(view.variables) == sorted(map(str, ds.variables))
    for name, var in ds.variables.items():
        mine = view[str(name)]
        assert mine.dims == var.dims, name
        assert mine.attrs == var.attrs, name
        assert mine.dtype == var.dtype, name
        assert mine.encoding["chunks"] == var.encoding["chunks"], name
        np.testing.assert_array_equal(mine.values, var.values, err_msg=str(name))


def test_store_readers_agree_on_both(grown_store: str) -> None:
    view, ds = peek_store(grown_store), open_raw(grown_store, dask=False)
    np.testing.assert_array_equal(visible_segments(view), visible_segments(ds))
    assert completeness(view) == completeness(ds)
    assert completeness(view).families["zcr"] == completeness(view).chunks_done - 1
    assert label_counts(view) == label_counts(ds)
    assert {row.label: row.failed_files for row in label_counts(view)}["low"] == 1


def test_info_reads_the_view(grown_store: str) -> None:
    text = format_info(grown_store, check_files=False)
    done = completeness(open_raw(grown_store, dask=False))
    assert f"zcr v1 (added) {done.chunks_done - 1}/{done.chunks_total}" in text
    assert "broken.wav" in text.split("failed files:")[1]


def test_flags_are_listed_not_read(grown_store: str, tmp_path: Path) -> None:
    copy = tmp_path / "s.zarr"
    shutil.copytree(grown_store, copy)
    done = copy / "chunk_done" / "c"
    first = sorted(done.iterdir())[0]
    first.write_bytes(b"not a zarr chunk")  # a read of this object would fail to decode
    view = peek_store(str(copy))
    assert view["chunk_done"].values.all()


@pytest.mark.parametrize("make", ["missing", "other"])
def test_not_a_store_is_one_line(tmp_path: Path, make: str) -> None:
    path = tmp_path / "x.zarr"
    if make == "other":
        xr.Dataset({"a": ("x", np.arange(3))}).to_zarr(path)
    with pytest.raises(SchemaError, match="Expected a feature store"):
        peek_store(str(path))


def test_open_store_takes_label_and_split_from_the_files(tmp_path: Path) -> None:
    """``label`` and ``split`` per segment are ``file_label``/``file_split`` at ``segment_file``
    ("" on padding): equal to the stored arrays everywhere, and ``open_store`` does not read
    those (their objects are corrupted in a copy)."""
    from test_resume_append import write_clips

    from pipeline.store import open_store, per_segment_from_files

    write_clips(tmp_path / "clips", ["a", "b", "c"], seconds=4.0)
    (tmp_path / "clips" / "low" / "broken.wav").write_bytes(b"RIFF not a wave file at all")
    store = str(tmp_path / "grown.zarr")
    extract([tmp_path / "clips"], store, FeatureConfig(features=("rms",)), scheduler="synchronous",
            label_from="parent", progress=False, segment_chunk=2)
    write_clips(tmp_path / "clips", ["d"], seconds=4.0)  # appended: they start on a chunk boundary
    extract([tmp_path / "clips"], store, FeatureConfig(features=("rms",)), scheduler="synchronous",
            label_from="parent", progress=False, segment_chunk=2)
    raw = open_raw(store, dask=False).load()
    assert (raw["segment_file"].values < 0).any()  # padding is covered
    for name, derived in per_segment_from_files(raw).items():
        stored = raw[name]
        assert derived.dtype == object and derived.attrs == stored.attrs, name  # Python strings, not StringDType
        np.testing.assert_array_equal(derived.values, stored.values, err_msg=name)
    copy = tmp_path / "s.zarr"
    shutil.copytree(store, copy)
    for name in ("label", "split"):
        for obj in (copy / name / "c").iterdir():
            obj.write_bytes(b"not a zarr chunk")
    ds = open_store(str(copy))
    visible = ds["segment"].values
    for name in ("label", "split"):
        assert ds[name].dtype == object
        np.testing.assert_array_equal(ds[name].values, raw[name].values[visible], err_msg=name)
    assert set(ds["label"].values) == {"high", "low"}


def test_info_reads_the_task_columns_from_the_finalised_copy(grown_store: str, tmp_path: Path) -> None:
    """``segment_valid`` (one object per chunk: 47,620 at 10,000 hours) is read as open_store
    reads it, from the last finalise's copy: its per-chunk objects are corrupted in a copy of
    the store, and info's readers give what they give on the original."""
    copy = tmp_path / "s.zarr"
    shutil.copytree(grown_store, copy)
    for name in ("segment_valid", "segment_valid_frames"):
        for obj in (copy / name / "c").iterdir():
            obj.write_bytes(b"not a zarr chunk")
    view, original = peek_store(str(copy)), peek_store(grown_store)
    np.testing.assert_array_equal(visible_segments(view), visible_segments(original))
    assert completeness(view) == completeness(original)
    assert label_counts(view) == label_counts(original)
    np.testing.assert_array_equal(view["segment_valid_frames"].values,
                                  xr.open_zarr(grown_store, chunks=None)["segment_valid_frames"].values)
    assert format_info(str(copy), check_files=False) == format_info(grown_store, check_files=False).replace(
        grown_store, str(copy))


def test_visible_segments_are_done_valid_real_and_of_a_file_not_failed() -> None:
    """Segment by segment, the rule readers apply: its chunk done, audio stored, not padding,
    and its file not failed (a file whose later chunk failed to decode hides the segments an
    earlier chunk stored); a status given (finalise's) replaces the stored one."""
    from pipeline.store import TEMPLATE_ATTR, TEMPLATE_COMPLETE

    # 3 chunks of 4: files 0 (segments 0-4), 1 (5-7, failed in chunk 1), 2 (8-9); 10, 11 padding
    segment_file = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, -1, -1], dtype=np.int32)
    valid = np.array([1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=bool)
    ds = xr.Dataset(
        coords={"segment_file": ("segment", segment_file), "segment_valid": ("segment", valid),
                "chunk_done": ("chunk", np.array([1, 1, 0], dtype=np.uint8)),
                "file_status": ("file", np.array(["ok", "error", "pending"], dtype=np.dtypes.StringDType()))},
        attrs={TEMPLATE_ATTR: TEMPLATE_COMPLETE, "segment_chunk": 4})
    assert visible_segments(ds).tolist() == [0, 1, 3, 4]  # 2 invalid, 5-7 failed, 8-11 chunk not done
    status = np.array(["ok", "ok", "ok"], dtype=object)
    assert visible_segments(ds, status).tolist() == [0, 1, 3, 4, 5, 6, 7]
    assert visible_segments(ds.assign_attrs({TEMPLATE_ATTR: "files"})).size == 0  # template not complete
