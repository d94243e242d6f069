"""A new store's template in two steps: the structure before the tasks write, the plan's
coordinates (``write.write_values``) while they compute (docs/scaling.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from pipeline import FeatureConfig, extract, open_store
from pipeline.store import TEMPLATE_ATTR, TEMPLATE_FILES
from pipeline.testing import assert_stores_equal

CONFIG = FeatureConfig(features=("rms", "zcr"))


def _same_store(a: str, b: str) -> None:
    assert_stores_equal(open_store(a), open_store(b))


def _chunks_done(store: str) -> int:
    return sum(1 for _ in (Path(store) / "chunk_done" / "c").glob("*"))


def _wait_for_a_chunk(store: str) -> None:
    """Return once a chunk task has written its done-flag (fail after 120 s: a bound for a
    broken run only)."""
    deadline = time.monotonic() + 120
    while not _chunks_done(store):
        if time.monotonic() > deadline:
            pytest.fail("no chunk task wrote while the template's values were being written")
        time.sleep(0.05)


def test_tasks_write_while_the_plan_coordinates_are_written(corpus: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """On a cluster the values step waits here until a chunk task has written its chunk: it
    cannot end unless the tasks write before the plan's coordinates are in the store. The
    store is then the one an in-process run writes."""
    from distributed import Client, LocalCluster

    from pipeline import write

    store = str(tmp_path / "s.zarr")
    real = write.write_values
    seen: list[int] = []

    def after_a_chunk(*args: Any) -> None:
        _wait_for_a_chunk(store)
        seen.append(_chunks_done(store))
        # the root says: structure and file table written, the per-segment coordinates not yet
        group = zarr.open_group(store, mode="r")
        assert group.attrs[TEMPLATE_ATTR] == TEMPLATE_FILES
        assert all(str(p) for p in np.asarray(group["file_path"][:]))
        real(*args)

    monkeypatch.setattr(write, "write_values", after_a_chunk)
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        extract([corpus], store, CONFIG, client=client, label_from="parent", progress=False)
    assert seen and seen[0] >= 1
    monkeypatch.undo()
    reference = str(tmp_path / "reference.zarr")
    extract([corpus], reference, CONFIG, scheduler="synchronous", label_from="parent", progress=False)
    _same_store(store, reference)
    assert zarr.open_group(store, mode="r").attrs[TEMPLATE_ATTR] == "complete"


def test_a_run_stopped_before_the_values_are_written_loses_no_chunk(corpus: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The values step fails once a chunk task has written its chunk: the extract fails with
    that error; the store, left at "files", shows no segment; the next run completes the
    template from the stored file table and resumes (the chunks done are not recomputed), and
    the store is the one an uninterrupted run writes."""
    from distributed import Client, LocalCluster

    from pipeline import write

    store = str(tmp_path / "s.zarr")

    def broken(*args: Any) -> None:
        _wait_for_a_chunk(store)
        raise OSError("disk full while writing the plan's coordinates")

    monkeypatch.setattr(write, "write_values", broken)
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0") as cluster, \
            Client(cluster) as client, pytest.raises(OSError, match="disk full while writing the plan's coordinates"):
        extract([corpus], store, CONFIG, client=client, label_from="parent", progress=False, segment_chunk=2)
    monkeypatch.undo()
    assert zarr.open_group(store, mode="r").attrs[TEMPLATE_ATTR] == TEMPLATE_FILES
    done = _chunks_done(store)
    assert done >= 1
    assert open_store(store).sizes["segment"] == 0  # nothing shown from a template not complete
    report = extract([corpus], store, CONFIG, scheduler="synchronous", label_from="parent", progress=False,
                     segment_chunk=2)
    assert report.chunks_skipped == done  # resumed, not rewritten
    reference = str(tmp_path / "reference.zarr")
    extract([corpus], reference, CONFIG, scheduler="synchronous", label_from="parent", progress=False, segment_chunk=2)
    _same_store(store, reference)


def test_every_root_written_while_tasks_may_open_the_store_is_consolidated(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks open the store from its consolidated metadata while ``write_values`` runs: every
    version of the root it writes must hold that metadata (an attribute update that dropped
    it, even until a later consolidate, failed tasks opening in between: benchmarks/scale.py)."""
    import json

    from zarr.storage import LocalStore

    from pipeline.probe import FileInfo, ManifestEntry
    from pipeline.schema import build_layout
    from pipeline.write import write_structure, write_values

    entries = [ManifestEntry(FileInfo(uri=f"/d/{i}.wav", size=1, fingerprint="f", sample_rate=22050, channels=1,
                                      frames=22050 * 7, format="WAV"), "jazz", "train") for i in range(3)]
    layout = build_layout(entries, CONFIG, chunk=2)
    store = str(tmp_path / "s.zarr")
    write_structure(store, {}, layout, CONFIG)
    roots: list[dict[str, Any]] = []
    real_set = LocalStore.set

    async def recording_set(self: LocalStore, key: str, value: Any) -> None:
        if key == "zarr.json":
            roots.append(json.loads(value.to_bytes()))
        await real_set(self, key, value)

    monkeypatch.setattr(LocalStore, "set", recording_set)
    write_values(store, {}, layout, CONFIG)
    assert roots, "write_values wrote no root"
    for root in roots:
        assert root.get("consolidated_metadata"), "a root without consolidated metadata"
    assert roots[-1]["attributes"][TEMPLATE_ATTR] == "complete"
    monkeypatch.undo()
    zarr.open_group(store, mode="r", use_consolidated=True)  # and it opens so
