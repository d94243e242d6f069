"""Adding feature families to an existing store: only the new ones are computed, resumably."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import xarray as xr

from pipeline import FeatureConfig, extract, open_store
from pipeline.errors import ConfigMismatch
from pipeline.info import format_info
from pipeline.store import completeness, open_group, open_raw

BASE = "mel,rms"
GROWN = "mel,rms,spectrogram,zcr"
ADDED = ("spectrogram", "zcr")
OPTS = ("--n-mels", "32", "--label-from", "parent", "--no-progress", "--segment-chunk", "2", "--scheduler", "synchronous")


def _clips(root: Path, names: list[str], seconds: float = 7.0) -> None:
    rng = np.random.default_rng(3)
    for i, name in enumerate(names):
        path = root / ("low" if i % 2 else "high") / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(seconds * 22050)) / 22050
        y = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + rng.normal(0, 0.02, t.size)
        sf.write(path, y.astype(np.float32), 22050)


def _extract(corpus: Path, store: Path, features: str, *extra: str, env: dict[str, str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pipeline", "extract", str(corpus), "-o", str(store), "--features", features, *OPTS, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _run(corpus: Path, store: Path, features: str) -> None:
    """The in-process equivalent of :func:`_extract` (no process start: faster)."""
    extract([corpus], str(store), FeatureConfig(features=features, n_mels=32), scheduler="synchronous",
            label_from="parent", progress=False, segment_chunk=2)


def _flags(store: Path, name: str) -> list[int]:
    return [int(v) for v in np.asarray(open_group(str(store), mode="r")[name][:])]


def _assert_same_arrays(grown: Path, oneshot: Path) -> None:
    """Every data variable and per-segment coordinate of a one-shot store, equal in the grown one."""
    a, b = open_raw(str(grown)).load(), open_raw(str(oneshot)).load()
    assert set(b.data_vars) <= set(a.data_vars)
    for name in b.data_vars:
        xr.testing.assert_identical(a[name], b[name])
    for name in ("segment_valid", "segment_valid_frames", "file_status", "chunk_done", "frame_time", "freq"):
        np.testing.assert_array_equal(a[name].values, b[name].values)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    _clips(root, [f"c{i}" for i in range(4)])
    return root


def test_adding_two_families_killed_midway_then_rerun_equals_one_shot(corpus: Path, tmp_path: Path) -> None:
    store = tmp_path / "grown.zarr"
    _run(corpus, store, BASE)
    before = {name: open_raw(str(store))[name].values.copy() for name in ("mel", "rms_mean")}
    n_chunks = len(_flags(store, "chunk_done"))
    assert n_chunks >= 4
    env = {**os.environ, "DASK_PIPELINE__CRASH_AFTER_CHUNKS": "2"}
    killed = _extract(corpus, store, GROWN, env=env, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert f"adding families {', '.join(sorted(ADDED))}: {n_chunks} done chunks" in killed.stderr
    for name in ADDED:  # exactly the two chunks done before the kill, for both families at once
        assert sum(_flags(store, f"chunk_done_{name}")) == 2
    # a reader never shows the unwritten chunks of an added family as data
    partial = open_store(str(store))
    assert "spectrogram" not in partial.data_vars and "zero_crossing_rate_mean" not in partial.data_vars
    assert partial.attrs["incomplete_families"] == sorted(ADDED)
    assert completeness(open_raw(str(store))).families == {"spectrogram": 2, "mel": n_chunks, "zcr": 2, "rms": n_chunks}

    said = io.StringIO()
    extract([corpus], str(store), FeatureConfig(features=GROWN, n_mels=32), scheduler="synchronous",
            label_from="parent", progress=False, segment_chunk=2, out=said)
    assert f"{n_chunks - 2} done chunks to compute them for" in said.getvalue()
    assert sum(_flags(store, "chunk_done_spectrogram")) == n_chunks
    # the families the store was made with were not rewritten (nor recomputed)
    after = open_raw(str(store))
    for name, values in before.items():
        np.testing.assert_array_equal(after[name].values, values)
    oneshot = tmp_path / "oneshot.zarr"
    _run(corpus, oneshot, GROWN)
    _assert_same_arrays(store, oneshot)
    families = json.loads(after.attrs["families"])
    assert families["zcr"]["flag"] == "chunk_done_zcr" and "flag" not in families["mel"]
    assert list(after.attrs["features"]) == ["spectrogram", "mel", "zcr", "rms"]
    assert f"spectrogram v1 (added) {n_chunks}/{n_chunks}" in format_info(str(store), check_files=False)


def test_only_the_new_families_are_computed(corpus: Path, tmp_path: Path) -> None:
    """The rerun computes the added families only: its chunk reports say which, and the tasks
    took no time over the families the store had (a family task's config holds only the new)."""
    store = tmp_path / "s.zarr"
    config = FeatureConfig(features=BASE, n_mels=32)
    extract([corpus], str(store), config, scheduler="synchronous", label_from="parent", progress=False, segment_chunk=2)
    report = extract([corpus], str(store), FeatureConfig(features=GROWN, n_mels=32), scheduler="synchronous",
                     label_from="parent", progress=False, segment_chunk=2)
    assert report.chunks_computed == report.chunks_total
    ds = open_store(str(store))
    assert {"spectrogram", "zero_crossing_rate", "mel", "rms"} <= set(ds.data_vars)
    assert "incomplete_families" not in ds.attrs
    # a third run has nothing to do
    again = extract([corpus], str(store), FeatureConfig(features=GROWN, n_mels=32), scheduler="synchronous",
                    label_from="parent", progress=False, segment_chunk=2)
    assert again.chunks_computed == 0


def test_a_subset_or_another_base_config_is_refused_before_touching_the_store(corpus: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _run(corpus, store, GROWN)
    listing = sorted(os.listdir(store))
    subset = _extract(corpus, store, BASE, check=False)
    assert subset.returncode == 2
    assert "holds families spectrogram, zcr that this run leaves out" in subset.stderr
    assert len(subset.stderr.strip().splitlines()) == 1
    other = _extract(corpus, store, f"{GROWN},chroma", "--hop-length", "256", check=False)
    assert other.returncode == 2 and "hop_length: 256 != 512" in other.stderr
    assert "chroma" not in open_raw(str(store)).data_vars
    assert sorted(os.listdir(store)) == listing
    with pytest.raises(ConfigMismatch, match="leaves out"):
        extract([corpus], str(store), FeatureConfig(features="mel", n_mels=32), scheduler="synchronous",
                label_from="parent", progress=False)


def test_files_appended_after_a_family_was_added_get_every_family(corpus: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _run(corpus, store, BASE)
    _run(corpus, store, GROWN)
    n_chunks = len(_flags(store, "chunk_done"))
    _clips(corpus, ["d4", "d5"])
    _run(corpus, store, GROWN)
    flags = _flags(store, "chunk_done_spectrogram")
    assert len(flags) > n_chunks and all(flags) and flags == _flags(store, "chunk_done")
    oneshot = tmp_path / "oneshot.zarr"
    _run(corpus, oneshot, GROWN)
    a, b = open_store(str(store)), open_store(str(oneshot))
    key = lambda ds: {(p, o): i for i, (p, o) in enumerate(zip(ds["file_path"].values[ds["segment_file"].values],  # noqa: E731
                                                            ds["segment_offset"].values, strict=True))}
    ka, kb = key(a), key(b)
    assert set(ka) == set(kb)
    order = [ka[k] for k in kb]
    for name in ("spectrogram", "zero_crossing_rate_mean", "mel"):
        np.testing.assert_array_equal(a[name].values[order], b[name].values)
