"""What finalising keeps so that nothing reads one object per chunk: the chunk tasks' results
merged as they arrive (finalise reads no chunk report of this run), and the finalised copy of
the per-segment columns tasks write (``finalized/``), used by ``open_store`` where it is
current and ignored where it is not (chunks done since, a finalise interrupted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from zarr.storage import LocalStore

from pipeline.chunk import ChunkTask, write_chunk
from pipeline.config import FeatureConfig
from pipeline.graph import plan_tasks
from pipeline.probe import FileInfo, ManifestEntry
from pipeline.results import ChunkReport, ChunkResult, ChunkResults, ExtractReport
from pipeline.schema import Layout, build_layout
from pipeline.store import FINALIZED, as_text, open_group, open_raw, open_store, zarr_array
from pipeline.write import finalize, write_template

SR = 22050
CONFIG = FeatureConfig(features=("rms",))


def entries(count: int, seconds: float = 6.0) -> list[ManifestEntry]:
    frames = int(seconds * SR)
    return [ManifestEntry(FileInfo(uri=f"/corpus/{i:05d}.wav", size=44 + 2 * frames, fingerprint=f"f{i}",
                                   sample_rate=SR, channels=1, frames=frames, format="WAV"), "a", "train")
            for i in range(count)]


def run_task(url: str, task: ChunkTask, *, bad: int | None = None) -> ChunkResult:
    """What a chunk task writes besides its features (as benchmarks/scale.py's no-op task):
    its segments valid with a frame count of 100 + the segment index, except file ``bad``'s,
    which fail with an error in the report."""
    n = task.stop - task.start
    valid = np.ones(n, dtype=bool)
    files: dict[str, Any] = {}
    for f in task.files:
        rows = slice(f.first_segment + f.seg_lo - task.start, f.first_segment + f.seg_hi - task.start)
        if f.file_index == bad:
            valid[rows] = False
            files[str(f.file_index)] = {"status": "error", "error": f"broken in chunk {task.index}", "warning": ""}
        else:
            files[str(f.file_index)] = {"status": "ok", "error": "", "warning": ""}
    frames = np.where(valid, 100 + np.arange(task.start, task.stop), 0).astype(np.int32)
    report: ChunkReport = {"chunk": task.index, "segments": int(valid.sum()), "audio_seconds": float(valid.sum() * 3),
                           "files": files, "timings": {"decode": 0.0, "resample": 0.0, "compute": 0.0, "write": 0.0}}
    group = open_group(url, mode="r+", consolidated=True)
    write_chunk(group, task, {"segment_valid": valid, "segment_valid_frames": frames}, report)
    return ChunkResult(report, task.start, valid, frames)


def new_store(tmp_path: Path, files: int = 8) -> tuple[str, Layout, list[ChunkTask]]:
    url = str(tmp_path / "store.zarr")
    layout = build_layout(entries(files), CONFIG, chunk=3)  # 2 segments per file: 16 segments, 6 chunks
    write_template(url, {}, layout, CONFIG)
    return url, layout, plan_tasks(layout)


def run(url: str, layout: Layout, tasks: list[ChunkTask], *, bad: int | None = None) -> ChunkResults:
    results = ChunkResults(layout.n_segments, layout.n_chunks)
    for task in tasks:
        results.add(run_task(url, task, bad=bad))
    return results


class Reads:
    """The keys a local zarr store is asked for (the real store does the work)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.keys: list[str] = []
        get = LocalStore.get

        async def counted_get(store: Any, key: str, *args: Any, **kwargs: Any) -> Any:
            self.keys.append(key)
            return await get(store, key, *args, **kwargs)

        monkeypatch.setattr(LocalStore, "get", counted_get)

    def chunks(self, array: str) -> list[str]:
        """The chunk objects of ``array`` read (not its metadata)."""
        return [k for k in self.keys if k.startswith(f"{array}/c/")]


def per_chunk_values(url: str) -> dict[str, np.ndarray]:
    """The task columns as stored per chunk (read whole, through xarray)."""
    ds = xr.open_zarr(url, consolidated=False)
    return {name: np.asarray(ds[name].values) for name in ("segment_valid", "segment_valid_frames")}


def test_a_finalised_store_opens_without_reading_the_per_chunk_columns(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    url, layout, tasks = new_store(tmp_path)
    finalize(url, {}, ExtractReport(store=url), run(url, layout, tasks))
    truth = per_chunk_values(url)
    reads = Reads(monkeypatch)
    ds = open_store(url)
    assert reads.chunks("segment_valid") == [] and reads.chunks("segment_valid_frames") == []
    assert reads.chunks(f"{FINALIZED}/segment_valid")
    monkeypatch.undo()
    assert ds.sizes["segment"] == layout.n_segments
    np.testing.assert_array_equal(ds["segment_valid_frames"].values, truth["segment_valid_frames"])
    assert ds["segment_valid_frames"].dtype == np.int32 and ds["segment_valid"].dtype == bool
    # the coordinates read from the copy are those xarray reads: dtype, attributes, values
    raw = open_raw(url).load()
    for name in truth:
        xr.testing.assert_identical(ds[name].variable, raw[name].variable)


def test_the_copy_is_ignored_for_chunks_done_since_and_when_finalise_was_interrupted(tmp_path: Path) -> None:
    url, layout, tasks = new_store(tmp_path)
    finalize(url, {}, ExtractReport(store=url), run(url, layout, tasks[:3]))
    # a later run does two more chunks and dies before finalising: the copy covers 3 of 5 done
    run(url, layout, tasks[3:5])
    ds = open_store(url)
    done_segments = tasks[4].stop
    np.testing.assert_array_equal(ds["segment"].values, np.arange(done_segments))
    np.testing.assert_array_equal(ds["segment_valid_frames"].values, 100 + np.arange(done_segments))
    # a finalise interrupted after writing the copy but before setting what it covers
    finalize(url, {}, ExtractReport(store=url))
    covered = zarr_array(open_group(url), f"{FINALIZED}/chunk_covered")
    assert covered[:].tolist() == [1] * 5 + [0]
    covered[:] = 0
    zarr_array(open_group(url), f"{FINALIZED}/segment_valid")[:] = False  # what a stale copy could hold
    ds = open_store(url)
    np.testing.assert_array_equal(ds["segment"].values, np.arange(done_segments))


def test_finalise_merges_this_runs_results_and_reads_only_other_runs_reports(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    url, layout, tasks = new_store(tmp_path)
    # run 1: chunks 0-2, file 1 fails (its segments are in chunk 0); finalised
    first = ExtractReport(store=url)
    finalize(url, {}, first, run(url, layout, tasks[:3], bad=1))
    assert first.failed == [("/corpus/00001.wav", "broken in chunk 0")]
    # run 2 (killed before finalising): chunk 3, file 5 fails (its segments: 10, 11, chunks 3)
    run(url, layout, tasks[3:4], bad=5)
    # run 3: the rest, then finalise: this run's reports come from its results
    results = run(url, layout, tasks[4:], bad=7)
    reads = Reads(monkeypatch)
    report = ExtractReport(store=url)
    finalize(url, {}, report, results)
    # chunk 3's report only (neither covered by the copy nor in this run's results)
    assert reads.chunks("chunk_report") == ["chunk_report/c/3"]
    assert reads.chunks("segment_valid") == ["segment_valid/c/3"]
    monkeypatch.undo()
    assert sorted(report.failed) == [("/corpus/00001.wav", "broken in chunk 0"), ("/corpus/00005.wav", "broken in chunk 3"),
                                     ("/corpus/00007.wav", "broken in chunk 4")]
    assert report.files_ok == 5 and report.files_pending == 0
    stored = [json.loads(t) for t in as_text(open_raw(url)["chunk_report"])]
    assert report.audio_seconds == sum(r["audio_seconds"] for r in stored)
    assert report.segments == 16 - 2 * 3
    # the same as a finalise that reads every report
    again = ExtractReport(store=url)
    zarr_array(open_group(url), f"{FINALIZED}/chunk_covered")[:] = 0
    finalize(url, {}, again)
    assert (again.failed, again.segments, again.audio_seconds) == (report.failed, report.segments, report.audio_seconds)


@pytest.mark.parametrize("undone", [(), (0,), (2,), (5,), (1, 4)])
def test_file_status_is_ok_only_when_every_chunk_of_the_file_is_done(tmp_path: Path, undone: tuple[int, ...]) -> None:
    """finalise's per-file status (vectorised over files) against the file-by-file rule: error
    when the file failed, else ok when every chunk holding one of its segments is done, else
    pending. Files of 2 segments in chunks of 3: a file spans 1 or 2 chunks; one is too short
    for a segment (no chunk: ok), one failed in its header."""
    url = str(tmp_path / "store.zarr")
    listed = entries(8)
    listed[3] = ManifestEntry(FileInfo(uri="/corpus/short.wav", size=44, fingerprint="s", sample_rate=SR, channels=1,
                                       frames=0, format="WAV"), "a", "train")
    listed[6] = ManifestEntry(FileInfo(uri="/corpus/bad.wav", size=4, fingerprint="b", sample_rate=0, channels=0,
                                       frames=0, format="", error="unreadable audio header"), "a", "train")
    layout = build_layout(listed, CONFIG, chunk=3)
    write_template(url, {}, layout, CONFIG)
    tasks = [t for t in plan_tasks(layout) if t.index not in undone]
    report = ExtractReport(store=url)
    finalize(url, {}, report, run(url, layout, tasks, bad=5))
    status = list(as_text(open_raw(url)["file_status"]))
    expected = []
    for i, record in enumerate(layout.files):
        chunks = {s // layout.chunk for s in range(record.first_segment, record.first_segment + record.n_segments)}
        if record.error or (i == 5 and chunks - set(undone)):  # its error comes from a chunk that ran
            expected.append("error")
        else:
            expected.append("pending" if chunks & set(undone) else "ok")
    assert status == expected
    assert report.files_pending == expected.count("pending") and report.files_failed == expected.count("error")
