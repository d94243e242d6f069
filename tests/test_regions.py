"""Whole-chunk writes that bypass zarr's indexing write exactly the bytes zarr would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from pipeline.regions import direct_chunk, write_region


def _group(path: Path) -> zarr.Group:
    group = zarr.open_group(str(path), mode="w")
    zstd = (ZstdCodec(level=1),)
    group.create_array("mel", shape=(10, 3, 4), chunks=(4, 3, 4), dtype="float32", compressors=zstd, fill_value=np.nan)
    group.create_array("valid", shape=(10,), chunks=(4,), dtype="bool", compressors=zstd, fill_value=False)
    group.create_array("frames", shape=(10,), chunks=(4,), dtype="int32", compressors=zstd, fill_value=0)
    group.create_array("blosc", shape=(10,), chunks=(4,), dtype="float32", compressors=(BloscCodec(),), fill_value=np.nan)
    group.create_array("split", shape=(10, 3), chunks=(4, 2), dtype="float32", compressors=zstd, fill_value=np.nan)
    return group


def _arrays(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    return {
        "mel": rng.normal(size=(rows, 3, 4)).astype(np.float32),
        "valid": rng.random(rows) > 0.5,
        "frames": rng.integers(0, 100, rows).astype(np.int32),
        "blosc": rng.normal(size=rows).astype(np.float32),
        "split": rng.normal(size=(rows, 3)).astype(np.float32),
    }


@pytest.mark.parametrize(("start", "stop"), [(0, 4), (4, 8), (8, 10)])
def test_direct_chunks_are_zarrs_own_bytes(tmp_path: Path, rng: np.random.Generator, start: int, stop: int) -> None:
    ours, theirs = _group(tmp_path / "ours.zarr"), _group(tmp_path / "theirs.zarr")
    values = _arrays(rng, stop - start)
    write_region(ours, values, start, stop)
    for name, v in values.items():
        theirs[name][start:stop] = v  # type: ignore[index]
    for name, v in values.items():
        np.testing.assert_array_equal(ours[name][start:stop], v)  # type: ignore[index]
    chunk = start // 4
    for key in (f"mel/c/{chunk}/0/0", f"valid/c/{chunk}", f"frames/c/{chunk}"):
        assert (tmp_path / "ours.zarr" / key).read_bytes() == (tmp_path / "theirs.zarr" / key).read_bytes(), key


def test_other_codecs_layouts_and_regions_go_through_zarr(tmp_path: Path, rng: np.random.Generator) -> None:
    group = _group(tmp_path / "s.zarr")
    assert direct_chunk(group["mel"], 0, 4) is not None  # type: ignore[arg-type]
    assert direct_chunk(group["blosc"], 0, 4) is None  # type: ignore[arg-type]
    assert direct_chunk(group["split"], 0, 4) is None  # type: ignore[arg-type]  # chunked along bins
    assert direct_chunk(group["mel"], 2, 6) is None  # type: ignore[arg-type]  # not chunk-aligned
    assert direct_chunk(group["mel"], 0, 8) is None  # type: ignore[arg-type]  # two chunks
    values = _arrays(rng, 4)
    write_region(group, values, 2, 6)  # unaligned: every array through zarr
    for name, v in values.items():
        np.testing.assert_array_equal(group[name][2:6], v)  # type: ignore[index]
    assert np.isnan(group["mel"][0]).all()  # type: ignore[index]


def test_workers_keep_freed_memory_only_where_dask_pinned_malloc() -> None:
    """Under Dask's MALLOC_TRIM_THRESHOLD_ the thresholds are raised (once); without it nothing
    is touched. (Checked in a child: mallopt is process-wide.)"""
    code = (
        "from pipeline.heap import keep_freed_memory\n"
        "print(keep_freed_memory(), keep_freed_memory())\n"
    )
    for env, expected in (({"MALLOC_TRIM_THRESHOLD_": "65536"}, ["True", "True"]), ({}, ["False", "False"])):
        out = subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", **env},
                             capture_output=True, text=True, check=True).stdout.split()
        assert out == expected
