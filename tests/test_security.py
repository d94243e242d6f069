"""Security: loopback-only services; credentials never in task graphs, store attributes or logs."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
from pathlib import Path
from typing import Any

import pytest
import s3fs
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

from pipeline import FeatureConfig, extract
from pipeline.graph import _cluster


class GraphRecorder(SchedulerPlugin):
    """Keeps the pickled specification of every task the scheduler receives."""

    name = "graph-recorder"

    def __init__(self) -> None:
        self.blobs: list[bytes] = []

    def update_graph(self, scheduler: Any, *, keys: Any, **kwargs: Any) -> None:
        for key in keys:
            ts = scheduler.tasks.get(key)
            if ts is not None:
                self.blobs.append(pickle.dumps(ts.run_spec))


def _listening(pids: set[int]) -> list[str]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids)]


def _children(pid: int) -> set[int]:
    found = {pid}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        found |= _children(int(child))
    return found


def test_default_local_cluster_listens_on_loopback_only() -> None:
    import io

    with _cluster(None, None, 2, io.StringIO()) as client:
        assert client is not None
        addresses = _listening(_children(os.getpid()))
        assert addresses, "expected the scheduler, dashboard and workers to be listening"
        assert all(a.startswith("127.0.0.1:") for a in addresses), addresses
        assert client.dashboard_link.startswith("http://127.0.0.1:")


@pytest.mark.s3
def test_planted_secret_never_leaves_the_environment(
    corpus: Path, s3_bucket: tuple[str, dict[str, object]], caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket, options = s3_bucket
    secret = "planted-" + os.urandom(12).hex()
    saved = os.environ["AWS_SECRET_ACCESS_KEY"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = secret  # moto accepts any key; workers inherit the env
    caplog.set_level(logging.DEBUG)
    try:
        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem(**options)
        for path in sorted(corpus.rglob("*.wav")):
            fs.put_file(str(path), f"{bucket}/in/{path.name}")
        recorder = GraphRecorder()
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            cluster.scheduler.add_plugin(recorder)
            report = extract([f"s3://{bucket}/in"], f"s3://{bucket}/out.zarr", FeatureConfig(features=("rms",)),
                             client=client, storage_options=options, progress=True)
        assert report.files_ok == 3
        assert recorder.blobs, "no task graph was recorded"
        assert not any(secret.encode() in blob for blob in recorder.blobs)
        stored = b"".join(fs.cat_file(p) for p in fs.find(f"{bucket}/out.zarr"))
        assert secret.encode() not in stored
        assert b"endpoint_url" not in stored and b"storage_options" not in stored
        out = capsys.readouterr()
        assert secret not in out.out + out.err
        assert secret not in caplog.text
    finally:
        os.environ["AWS_SECRET_ACCESS_KEY"] = saved
        s3fs.S3FileSystem.clear_instance_cache()


def test_store_has_no_pickle_codecs(tmp_path: Path, corpus: Path) -> None:
    store = tmp_path / "s.zarr"
    extract([corpus], str(store), FeatureConfig(features=("mel", "chroma")), scheduler="synchronous", progress=False)
    metadata = b"".join(p.read_bytes() for p in store.rglob("zarr.json"))
    assert b"pickle" not in metadata.lower()
    assert b"vlen-utf8" in metadata or b'"string"' in metadata
