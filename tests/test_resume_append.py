"""Interruption, resume and append: only missing chunks are computed; results equal one-shot runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import xarray as xr

from pipeline import FeatureConfig, extract, open_store
from pipeline.store import as_text, chunk_reports, open_group, open_raw

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
    """A crash half-way through an append (the arrays grown, the marker left behind): the next
    run shrinks the store back; an append of the same new files then equals a one-shot run."""
    from pipeline.write import _resize_all

    root, more = tmp_path / "c", tmp_path / "more"
    write_clips(root, ["x0", "x1", "x2"])
    write_clips(more, ["y0", "y1"])
    store = str(tmp_path / "s.zarr")
    extract([root], store, CONFIG, scheduler="synchronous", progress=False, segment_chunk=2)
    before = open_raw(store).load()
    group = open_group(store)
    group.attrs["append_in_progress"] = json.dumps({"segment": before.sizes["segment"], "file": before.sizes["file"], "chunk": before.sizes["chunk"]})
    _resize_all(store, {}, {"segment": before.sizes["segment"] + 8, "file": before.sizes["file"] + 2, "chunk": before.sizes["chunk"] + 4})
    report = extract([root], store, CONFIG, scheduler="synchronous", progress=False)
    assert report.chunks_computed == 0
    after = open_raw(store).load()
    assert dict(after.sizes) == dict(before.sizes)
    assert "append_in_progress" not in after.attrs
    # redone: the append the crash cut short
    report = extract([root, more], store, CONFIG, scheduler="synchronous", progress=False)
    assert report.chunks_skipped == before.sizes["chunk"] and report.chunks_computed > 0
    one_shot = str(tmp_path / "one.zarr")
    extract([root, more], one_shot, CONFIG, scheduler="synchronous", progress=False, segment_chunk=2)
    assert_same_content(open_store(store), open_store(one_shot))


def _extract_cmd(corpus: Path, store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "extract", str(corpus), "-o", str(store), "--label-from", "parent",
            "--features", "mel,mfcc,chroma,rms", "--n-mels", "32", "--n-mfcc", "13", "--no-progress", *extra]


def _chunk_flags(store: Path) -> list[int]:
    """The store's done-flag of every chunk."""
    return [int(v) for v in np.asarray(open_group(str(store), mode="r")["chunk_done"][:])]


def _rerun_here(cmd: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The same command in this process (the kill needed a process of its own; the rerun does
    not): its exit code, stdout and stderr."""
    from pipeline.cli import main

    capsys.readouterr()
    code = main(cmd[3:])
    out = capsys.readouterr()
    return code, out.out, out.err


def _crash_after(k: int) -> dict[str, str]:
    """The environment of a run that SIGKILLs itself once ``k`` of its chunks are done in the
    store (``pipeline.crash-after-chunks``)."""
    return {**os.environ, "DASK_PIPELINE__CRASH_AFTER_CHUNKS": str(k)}


def _assert_equals_clean_run(corpus: Path, store: Path, tmp_path: Path) -> None:
    """Every array of ``store`` equals that of an uninterrupted in-process run."""
    clean = tmp_path / "clean.zarr"
    extract([corpus], str(clean), CONFIG, scheduler="synchronous", label_from="parent", progress=False, segment_chunk=2)
    a, b = open_raw(str(store)).load(), open_raw(str(clean)).load()
    for name in a.data_vars:
        xr.testing.assert_identical(a[name], b[name])
    for name in ("segment_valid", "segment_valid_frames", "file_status", "chunk_done"):
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_sigkill_of_the_client_then_rerun_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The client dies by SIGKILL right after its third chunk is done (in-process, chunks run
    one after the other): the store holds exactly those three; the rerun computes the rest."""
    corpus = tmp_path / "corpus"
    write_clips(corpus, [f"k{i}" for i in range(4)])
    store = tmp_path / "killed.zarr"
    cmd = _extract_cmd(corpus, store, "--scheduler", "synchronous", "--segment-chunk", "2")
    killed = subprocess.run(cmd, env=_crash_after(3), capture_output=True, text=True, check=False, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    flags = _chunk_flags(store)
    total = len(flags)
    assert total > 3 and flags == [1, 1, 1] + [0] * (total - 3)
    reports = chunk_reports(open_raw(str(store)))
    assert [r is not None for r in reports] == [True] * 3 + [False] * (total - 3)
    code, out, err = _rerun_here(cmd, capsys)
    assert code == 0, err
    assert f"resuming: 3 of {total} chunks done" in err
    assert f"{total - 3} of {total} chunks computed" in out
    assert _chunk_flags(store) == [1] * total
    _assert_equals_clean_run(corpus, store, tmp_path)


def test_sigkill_during_an_append_then_rerun_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An append whose client dies after one of its new chunks: the rerun keeps the grown
    store, computes only the new chunks not done, and equals a one-shot run."""
    corpus = tmp_path / "corpus"
    write_clips(corpus, [f"a{i}" for i in range(2)])
    store = tmp_path / "grown.zarr"
    cmd = _extract_cmd(corpus, store, "--scheduler", "synchronous", "--segment-chunk", "2")
    extract([corpus], str(store), CONFIG, scheduler="synchronous", label_from="parent", progress=False, segment_chunk=2)
    old = len(_chunk_flags(store))
    write_clips(corpus, [f"a{i}" for i in range(2, 5)])  # new files beside the old ones
    killed = subprocess.run(cmd, env=_crash_after(1), capture_output=True, text=True, check=False, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "appending 3 new files" in killed.stderr
    flags = _chunk_flags(store)
    total = len(flags)
    assert total > old + 1 and flags == [1] * (old + 1) + [0] * (total - old - 1)
    code, out, err = _rerun_here(cmd, capsys)
    assert code == 0, err
    assert f"resuming: {old + 1} of {total} chunks done" in err and "appending" not in err
    assert f"{total - old - 1} of {total} chunks computed" in out
    one_shot = tmp_path / "one.zarr"
    extract([corpus], str(one_shot), CONFIG, scheduler="synchronous", label_from="parent", progress=False, segment_chunk=2)
    assert_same_content(open_store(str(store)), open_store(str(one_shot)))


#: A worker preload (``distributed.worker.preload``): the first chunk task to start executing
#: once two chunks are done in the store kills its worker (SIGKILL), on one worker only (the
#: marker file, created exclusively, records the task and the chunks done then).
_KILL_ONE_WORKER = """
import os
import signal

import numpy as np
import zarr
from distributed import WorkerPlugin

MARKER = os.environ["PIPELINE_TEST_KILL_MARKER"]
STORE = os.environ["PIPELINE_TEST_KILL_STORE"]


class KillOnce(WorkerPlugin):
    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or not str(key).startswith("chunk-"):
            return
        try:
            done = int(np.asarray(zarr.open_group(STORE, mode="r")["chunk_done"][:]).sum())
        except Exception:
            return
        if done < 2:
            return
        try:
            fd = os.open(MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"{key} {done}".encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


async def dask_setup(worker):
    await worker.plugin_add(plugin=KillOnce(), name="pipeline-test-kill-once")
"""


@pytest.mark.cluster
def test_killed_worker_does_not_fail_the_run(tmp_path: Path) -> None:
    """A real cluster of 2 workers; one worker process dies by SIGKILL as it starts a chunk task,
    mid-run: that chunk is computed again (elsewhere or by the restarted worker), the run ends
    well and equals a clean one."""
    root = Path(__file__).resolve().parents[1]
    corpus = tmp_path / "corpus"
    write_clips(corpus, [f"w{i}" for i in range(8)])
    store = tmp_path / "cluster.zarr"
    preload = tmp_path / "kill_one_worker.py"
    preload.write_text(_KILL_ONE_WORKER)
    marker = tmp_path / "killed"
    env = {**os.environ, "CLUSTER_STATE_DIR": str(tmp_path / "state"), "DASK": str(Path(sys.executable).parent / "dask"),
           "DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([str(preload)]),
           "PIPELINE_TEST_KILL_MARKER": str(marker), "PIPELINE_TEST_KILL_STORE": str(store)}
    script = str(root / "deploy" / "local" / "cluster.sh")
    address = subprocess.run([script, "start", "2"], capture_output=True, text=True, env=env, check=True, timeout=120).stdout.strip()
    try:
        proc = subprocess.run(_extract_cmd(corpus, store, "--scheduler", address, "--segment-chunk", "2"),
                              capture_output=True, text=True, timeout=300, check=False)
    finally:
        subprocess.run([script, "stop"], env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    # the kill landed mid-run: a chunk task had started, and chunks were still to do
    key, done_then = marker.read_text().split()
    chunk = int(key.split("-")[1])  # chunk-<index>-<token>: every chunk was pending
    total = len(_chunk_flags(store))
    assert 2 <= int(done_then) < total
    assert f"{total} of {total} chunks computed" in proc.stdout
    # and its work was redone
    assert _chunk_flags(store)[chunk] == 1
    _assert_equals_clean_run(corpus, store, tmp_path)
