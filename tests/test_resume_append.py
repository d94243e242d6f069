"""Interruption, resume and append: only missing chunks are computed; results equal one-shot runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import xarray as xr

from pipeline import FeatureConfig, extract, open_store
from pipeline.store import as_text, open_group, open_raw

CONFIG = FeatureConfig(features=("mel", "mfcc", "chroma", "rms"), n_mels=32, n_mfcc=13)


def write_clips(root: Path, names: list[str], seconds: float = 7.0) -> None:
    for i, name in enumerate(names):
        label = "low" if i % 2 else "high"
        path = root / label / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(seconds * 22050)) / 22050
        f = 200.0 + 37 * (zlib.crc32(name.encode()) % 20)
        sf.write(path, (0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.2 * np.sin(t))).astype(np.float32), 22050)


def by_file(ds: xr.Dataset) -> dict[tuple[str, float], dict[str, np.ndarray]]:
    """Visible segments keyed by (file, offset): order-free comparison of two stores."""
    paths = as_text(ds["file_path"])
    out = {}
    for s in range(ds.sizes["segment"]):
        key = (str(paths[int(ds["segment_file"].values[s])]), float(ds["segment_offset"].values[s]))
        out[key] = {name: ds[name].values[s] for name in ds.data_vars} | {
            "label": ds["label"].values[s], "valid": ds["segment_valid_frames"].values[s]}
    return out


def assert_same_content(a: xr.Dataset, b: xr.Dataset) -> None:
    ka, kb = by_file(a), by_file(b)
    assert ka.keys() == kb.keys()
    for key in ka:
        for name in ka[key]:
            np.testing.assert_array_equal(ka[key][name], kb[key][name], err_msg=f"{key} {name}")


def test_append_only_new_files_equals_one_shot(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "more"
    write_clips(first, [f"a{i}" for i in range(5)])
    write_clips(second, [f"b{i}" for i in range(4)])
    store = str(tmp_path / "grown.zarr")
    r1 = extract([first], store, CONFIG, scheduler="synchronous", label_from="parent", progress=False, segment_chunk=4)
    done_before = r1.chunks_total
    mel_before = open_group(store, mode="r")["mel"][:]
    r2 = extract([first, second], store, CONFIG, scheduler="synchronous", label_from="parent", progress=False)
    assert r2.chunks_skipped == done_before
    assert r2.chunks_computed == r2.chunks_total - done_before > 0
    assert r2.files == 9 and r2.files_ok == 9
    grown = open_group(store, mode="r")["mel"][:]
    np.testing.assert_array_equal(grown[: mel_before.shape[0]], mel_before)  # finished chunks untouched

    one_shot = str(tmp_path / "one.zarr")
    extract([first, second], one_shot, CONFIG, scheduler="synchronous", label_from="parent", progress=False, segment_chunk=4)
    assert_same_content(open_store(store), open_store(one_shot))
    # nothing new: a rerun computes nothing
    r3 = extract([first, second], store, CONFIG, scheduler="synchronous", label_from="parent", progress=False)
    assert r3.chunks_computed == 0


def test_a_segments_features_do_not_depend_on_its_chunk(tmp_path: Path) -> None:
    """A long 44.1 kHz file (resampled, split across chunks) beside short files: every segment
    is the same bits whatever ``segment_chunk`` puts it in, whichever files share its batch.
    (The file's 14 segments straddle chunk edges differently under 3 and 8 segments a chunk.)"""
    root = tmp_path / "mixed"
    write_clips(root, ["s0", "s1", "s2"], seconds=4.4)
    rng = np.random.default_rng(11)
    t = np.arange(42 * 44100) / 44100  # three resampling tiles
    long = 0.2 * np.sin(2 * np.pi * 220 * t * (1 + t / 60)) + rng.normal(0, 0.02, t.size)
    (root / "long").mkdir()
    sf.write(root / "long" / "l.wav", long.astype(np.float32), 44100, subtype="PCM_24")
    stores = []
    for chunk in (3, 8):
        store = str(tmp_path / f"c{chunk}.zarr")
        extract([root], store, CONFIG, scheduler="synchronous", label_from="parent", progress=False, segment_chunk=chunk)
        stores.append(open_store(store))
    for other in stores[1:]:
        assert_same_content(stores[0], other)


def test_crashed_append_is_rolled_back(tmp_path: Path) -> None:
    from pipeline import graph

    root = tmp_path / "c"
    write_clips(root, ["x0", "x1", "x2"])
    store = str(tmp_path / "s.zarr")
    extract([root], store, CONFIG, scheduler="synchronous", progress=False, segment_chunk=2)
    before = open_raw(store).load()
    # a crash half-way through an append: sizes grown, marker left behind
    group = open_group(store)
    group.attrs["append_in_progress"] = json.dumps({"segment": before.sizes["segment"], "file": before.sizes["file"], "chunk": before.sizes["chunk"]})
    graph._resize_all(store, {}, {"segment": before.sizes["segment"] + 8, "file": before.sizes["file"] + 2, "chunk": before.sizes["chunk"] + 4})
    report = extract([root], store, CONFIG, scheduler="synchronous", progress=False)
    assert report.chunks_computed == 0
    after = open_raw(store).load()
    assert dict(after.sizes) == dict(before.sizes)
    assert "append_in_progress" not in after.attrs


def _extract_cmd(corpus: Path, store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "extract", str(corpus), "-o", str(store), "--label-from", "parent",
            "--features", "mel,mfcc,chroma,rms", "--n-mels", "32", "--n-mfcc", "13", "--no-progress", *extra]


def _wait_for_chunks(store: Path, n: int, proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            done = int(np.asarray(open_group(str(store), mode="r")["chunk_done"][:]).sum())
        except Exception:
            done = 0
        if done >= n:
            break
        time.sleep(0.05)
    return done


def _assert_equals_clean_run(corpus: Path, store: Path, tmp_path: Path) -> None:
    """Every array of ``store`` equals that of an uninterrupted in-process run."""
    clean = tmp_path / "clean.zarr"
    subprocess.run(_extract_cmd(corpus, clean, "--scheduler", "synchronous", "--segment-chunk", "2"), check=True,
                   capture_output=True, timeout=300)
    a, b = open_raw(str(store)).load(), open_raw(str(clean)).load()
    for name in a.data_vars:
        xr.testing.assert_identical(a[name], b[name])
    for name in ("segment_valid", "segment_valid_frames", "file_status", "chunk_done"):
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_sigkill_of_the_client_then_rerun_resumes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_clips(corpus, [f"k{i}" for i in range(16)], seconds=9.0)
    store = tmp_path / "killed.zarr"
    cmd = _extract_cmd(corpus, store, "--scheduler", "synchronous", "--segment-chunk", "2")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    done = _wait_for_chunks(store, 3, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert done >= 3, "the run finished or never started before it could be killed"
    total = open_group(str(store), mode="r")["chunk_done"].shape[0]
    rerun = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    k = int(rerun.stderr.split("resuming: ", 1)[1].split(" of ")[0])
    assert k >= 3
    assert f"resuming: {k} of {total} chunks done" in rerun.stderr
    assert f"{total - k} of {total} chunks computed" in rerun.stdout
    _assert_equals_clean_run(corpus, store, tmp_path)


@pytest.mark.cluster
def test_killed_worker_does_not_fail_the_run(tmp_path: Path) -> None:
    """A real cluster of 2 workers; one worker process is SIGKILLed mid-run."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "CLUSTER_STATE_DIR": str(tmp_path / "state"), "DASK": str(Path(sys.executable).parent / "dask")}
    script = str(root / "deploy" / "local" / "cluster.sh")
    address = subprocess.run([script, "start", "2"], capture_output=True, text=True, env=env, check=True, timeout=120).stdout.strip()
    try:
        corpus = tmp_path / "corpus"
        write_clips(corpus, [f"w{i}" for i in range(24)], seconds=9.0)
        store = tmp_path / "cluster.zarr"
        proc = subprocess.Popen(_extract_cmd(corpus, store, "--scheduler", address, "--segment-chunk", "2"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        victim = _worker_child(int((tmp_path / "state" / "worker-1.pid").read_text()))
        assert _wait_for_chunks(store, 2, proc) >= 2
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        _assert_equals_clean_run(corpus, store, tmp_path)
    finally:
        subprocess.run([script, "stop"], env=env, timeout=60, check=False)


def _worker_child(nanny: int) -> int:
    """The worker process a nanny runs (the nanny restarts it after the kill)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{nanny}/task/{nanny}/children").read_text().split()
        if children:
            return int(children[-1])
        time.sleep(0.1)
    raise AssertionError(f"no worker process under nanny {nanny}")
