"""Completeness flags read by listing their chunk keys (pipeline.flags) equal the values read
chunk by chunk, through every write that touches them, on a local path and on S3 (moto); and
opening a store reads no flag object."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.storage import FsspecStore, LocalStore

from pipeline.config import FeatureConfig
from pipeline.flags import DONE, is_flag, listed_flag
from pipeline.grow import add_families, flag_name
from pipeline.probe import FileInfo, ManifestEntry
from pipeline.schema import build_layout
from pipeline.store import consolidate, open_group, open_raw, open_store, zarr_array
from pipeline.write import append, layout_from_store, rollback_unfinished_append, write_template

ROOT = Path(__file__).resolve().parents[1]
SR = 22050
CONFIG = FeatureConfig(features=("rms",))


def entries(first: int, count: int, seconds: float = 6.0) -> list[ManifestEntry]:
    frames = int(seconds * SR)
    return [ManifestEntry(FileInfo(uri=f"/corpus/{i:05d}.wav", size=44 + 2 * frames, fingerprint=f"f{i}",
                                   sample_rate=SR, channels=1, frames=frames, format="WAV"), "a", "train")
            for i in range(first, first + count)]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A store location and its storage options: a local path, or a moto S3 bucket."""
    if request.param == "local":
        yield str(tmp_path / "flags.zarr"), {}
        return
    bucket, options = request.getfixturevalue("s3_bucket")
    yield f"s3://{bucket}/flags.zarr", options


def set_flags(url: str, options: dict[str, Any], name: str, chunks: list[int], value: int = 1) -> None:
    """Write a flag as a chunk task does (the consolidated group, one element)."""
    group = open_group(url, options, mode="r+", consolidated=True)
    for c in chunks:
        zarr_array(group, name)[c] = value


def assert_listing_equals_values(url: str, options: dict[str, Any]) -> dict[str, np.ndarray]:
    """Every flag of ``open_raw`` (listed, in memory) equals its values read chunk by chunk."""
    listed = open_raw(url, options)
    store = FsspecStore.from_url(url, storage_options=options, read_only=True) if url.startswith("s3://") else url
    read = xr.open_zarr(store, consolidated=False)
    names = [str(n) for n in read.variables if is_flag(str(n))]
    assert DONE in names
    out = {}
    for name in names:
        assert isinstance(listed[name].variable._data, np.ndarray), f"{name} was not listed"
        values = np.asarray(read[name].values)
        np.testing.assert_array_equal(listed[name].values, values, err_msg=name)
        assert listed[name].dtype == values.dtype
        out[name] = values.astype(bool)
    return out


def test_listing_equals_values_through_resume_append_rollback_and_grow(where: tuple[str, dict[str, Any]]) -> None:
    url, options = where
    layout = build_layout(entries(0, 6), CONFIG, chunk=4)  # 6 files x 2 segments: 3 chunks
    write_template(url, options, layout, CONFIG)
    assert not assert_listing_equals_values(url, options)[DONE].any()  # the template writes no flag

    set_flags(url, options, DONE, [0, 2])  # a run killed after two chunks: resume reads these
    assert assert_listing_equals_values(url, options)[DONE].tolist() == [True, False, True]
    set_flags(url, options, DONE, [2], value=0)  # a 0 deletes the chunk (fill value): still equal
    assert assert_listing_equals_values(url, options)[DONE].tolist() == [True, False, False]
    set_flags(url, options, DONE, [1, 2])

    grown = append(url, options, layout, entries(6, 4), CONFIG)  # 8 more segments: chunks 3, 4
    assert grown.n_chunks == 5
    assert assert_listing_equals_values(url, options)[DONE].tolist() == [True] * 3 + [False] * 2
    set_flags(url, options, DONE, [3])

    # an append that crashed after its tasks wrote flags: rolled back, those chunks are gone
    append(url, options, grown, entries(10, 4), CONFIG)
    group = open_group(url, options, mode="r+")
    group.attrs["append_in_progress"] = json.dumps({"segment": 20, "file": 10, "chunk": 5})
    consolidate(url, options)
    set_flags(url, options, DONE, [5, 6])
    assert assert_listing_equals_values(url, options)[DONE].tolist() == [True] * 4 + [False, True, True]
    rollback_unfinished_append(url, options)
    assert assert_listing_equals_values(url, options)[DONE].tolist() == [True] * 4 + [False]
    # re-appended: the rolled-back chunks' flags do not come back
    append(url, options, layout_from_store(open_raw(url, options)), entries(10, 4), CONFIG)
    assert assert_listing_equals_values(url, options)[DONE].tolist() == [True] * 4 + [False] * 3

    # a family added: its own flag, set for some chunks
    add_families(url, options, replace(CONFIG, features=("rms", "zcr")), ["zcr"])
    flags = assert_listing_equals_values(url, options)
    assert not flags[flag_name("zcr")].any()
    set_flags(url, options, flag_name("zcr"), [1, 3])
    assert assert_listing_equals_values(url, options)[flag_name("zcr")].tolist() == [
        False, True, False, True, False, False, False]


def test_a_flag_listing_cannot_tell_is_read(tmp_path: Path) -> None:
    """Chunked by two, a present chunk may hold a 0: the values are read instead."""
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    by_two = root.create_array("chunk_done", shape=(4,), chunks=(2,), dtype="uint8", fill_value=0)
    by_two[:] = [1, 0, 0, 0]
    assert listed_flag(by_two) is None
    by_one = root.create_array("chunk_done_x", shape=(4,), chunks=(1,), dtype="uint8", fill_value=0)
    by_one[1] = 1
    listed = listed_flag(by_one)
    assert listed is not None and listed.tolist() == [0, 1, 0, 0]


class Reads:
    """The keys a zarr store is asked for, and its listings (the real store does the work)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gets: Counter[str] = Counter()
        self.lists = 0
        for cls in (LocalStore, FsspecStore):
            self._wrap(monkeypatch, cls)

    def _wrap(self, monkeypatch: pytest.MonkeyPatch, cls: type) -> None:
        get, list_dir = cls.get, cls.list_dir

        async def counted_get(store: Any, key: str, *args: Any, **kwargs: Any) -> Any:
            self.gets[key.split("/")[0]] += 1
            return await get(store, key, *args, **kwargs)

        def counted_list(store: Any, prefix: str) -> Any:
            self.lists += 1
            return list_dir(store, prefix)

        monkeypatch.setattr(cls, "get", counted_get)
        monkeypatch.setattr(cls, "list_dir", counted_list)


def test_opening_a_store_reads_no_flag_object(where: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    url, options = where
    layout = build_layout(entries(0, 30), CONFIG, chunk=1)  # 60 chunks (two listing pages: below)
    write_template(url, options, layout, CONFIG)
    add_families(url, options, replace(CONFIG, features=("rms", "zcr")), ["zcr"])
    done = list(range(0, layout.n_chunks, 3))
    set_flags(url, options, DONE, done)
    set_flags(url, options, flag_name("zcr"), done)
    zarr_array(open_group(url, options), "segment_valid")[:] = True

    reads = Reads(monkeypatch)
    ds = open_store(url, options)
    assert reads.gets[DONE] == 0 and reads.gets[flag_name("zcr")] == 0
    assert reads.lists == 2  # one listing per flag
    # the flags are right: a third of the chunks done, their segments visible, zcr shown
    np.testing.assert_array_equal(ds["chunk_done"].values.nonzero()[0], done)
    np.testing.assert_array_equal(ds["segment"].values, done)
    assert "zero_crossing_rate_std" in ds.data_vars and "incomplete_families" not in ds.attrs
    monkeypatch.undo()
    assert_listing_equals_values(url, options)


@pytest.mark.s3
def test_a_listing_of_more_than_one_page_is_whole(s3_bucket: tuple[str, dict[str, Any]]) -> None:
    """1,050 chunk objects: an S3 listing answers 1,000 keys a page; the second page's flags count too."""
    bucket, options = s3_bucket
    group = zarr.open_group(f"s3://{bucket}/pages.zarr", mode="w", storage_options=options, zarr_format=3)
    flags = group.create_array(DONE, shape=(1050,), chunks=(1,), dtype="uint8", fill_value=0)
    flags[:] = 1  # 1,050 objects: the listing needs two pages
    undone = [3, 500, 999, 1048]
    for c in undone:
        flags[c] = 0  # deletes the chunk
    listed = listed_flag(flags)
    assert listed is not None and sorted(set(range(1050)) - set(listed.nonzero()[0].tolist())) == undone


def test_scale_benchmark_runs_at_a_tiny_scale(tmp_path: Path) -> None:
    """benchmarks/scale.py end to end at 1/1,000 of its corpus (1,200 files, 10 h, 48 chunks)."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--scale", "0.001",
                           "--workers", "1", "--store", str(tmp_path)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "corpus: 1,200 files, 10.0 h, 12,000 segments, 48 chunks of 252" in out
    assert "visible segments after open_store: 12,000 (report: 1,200 files ok, 0 pending)" in out
    assert "fixed costs" in out and "5% = 40.0 s" in out
    assert re.search(r"this machine's kernels, measured in this run: \d+x real time per worker \(one thread\); "
                     r"compute at that rate = [\d,]+ s; fixed costs = [\d.]+% of it", out), out
