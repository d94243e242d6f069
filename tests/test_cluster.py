"""A real Dask cluster (deploy/local/cluster.sh: scheduler + 2 workers on 127.0.0.1)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline import FeatureConfig, extract, open_store

pytestmark = pytest.mark.cluster
CONFIG = FeatureConfig(features=("mel", "chroma", "spectral"), n_mels=48)


def test_extract_on_a_real_cluster_equals_in_process(dask_cluster: str, corpus: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "cluster.zarr")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "extract", str(corpus), "-o", store, "--label-from", "parent",
         "--scheduler", dask_cluster, "--features", "mel,chroma,spectral", "--n-mels", "48", "--no-progress"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "5 ok, 0 warned, 0 failed" in proc.stdout
    assert "Dask dashboard: http://127.0.0.1:" in proc.stderr
    local = str(tmp_path / "local.zarr")
    extract([corpus], local, CONFIG, scheduler="synchronous", label_from="parent", progress=False)
    a, b = open_store(store), open_store(local)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values)
    np.testing.assert_array_equal(a["label"].values, b["label"].values)


def test_cluster_listens_on_loopback_only(dask_cluster: str) -> None:
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    port = dask_cluster.rsplit(":", 1)[1]
    listening = [line.split()[3] for line in out.splitlines()]
    assert f"127.0.0.1:{port}" in listening
    assert not any(addr.startswith(("0.0.0.0:", "*:", "[::]:")) and addr.endswith(f":{port}") for addr in listening)


def test_local_cluster_binds_loopback(corpus: Path, tmp_path: Path) -> None:
    """The default (embedded) cluster: 1 worker process, dashboard on 127.0.0.1."""
    store = str(tmp_path / "embedded.zarr")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "extract", str(corpus / "tones"), "-o", store, "--workers", "1",
         "--features", "rms", "--no-progress"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Dask dashboard: http://127.0.0.1:" in proc.stderr
    assert open_store(store).sizes["segment"] > 0


def test_cluster_script_stop_leaves_nothing_listening(tmp_path: Path) -> None:
    import os

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "CLUSTER_STATE_DIR": str(tmp_path / "state"), "DASK": str(Path(sys.executable).parent / "dask")}
    script = str(root / "deploy" / "local" / "cluster.sh")
    address = subprocess.run([script, "start", "1"], capture_output=True, text=True, env=env, check=True, timeout=120).stdout.strip()
    port = address.rsplit(":", 1)[1]
    pids = [int((tmp_path / "state" / f).read_text()) for f in ("scheduler.pid", "worker-1.pid")]
    subprocess.run([script, "stop"], env=env, check=True, timeout=60)
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    assert f"127.0.0.1:{port} " not in out
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    bad = subprocess.run([script, "start", "zero"], capture_output=True, text=True, env=env, check=False)
    assert bad.returncode == 2 and "positive number of workers" in bad.stderr


def test_a_template_that_cannot_be_written_fails_the_waiting_tasks_fast(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a cluster of this process, chunk tasks compute while the client writes a new store's
    template and wait for it only to write: if the template fails, the extract reports that
    error and no task hangs at the gate."""
    from distributed import Client, LocalCluster

    from pipeline import gate, graph

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full while writing the template")

    gates: list[object] = []
    create = gate.TemplateGate.create

    def spy(client: object) -> object:
        gates.append(create(client))
        return gates[-1]

    monkeypatch.setattr(graph, "_write_template", broken)
    monkeypatch.setattr(graph.TemplateGate, "create", staticmethod(spy))
    # a cluster object of this process (its workers are child processes, on loopback); not
    # processes=False: a task's worker client would then become this process's default
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        t0 = time.monotonic()
        with pytest.raises(OSError, match="disk full"):
            graph.extract([corpus], str(tmp_path / "s.zarr"), client=client, progress=False)
        assert time.monotonic() - t0 < 60
    assert len(gates) == 1 and gates[0] is not None


def test_on_a_remote_cluster_the_template_is_written_before_any_task(
    dask_cluster: str, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote cluster outlives a killed client: its tasks must never wait for a template."""
    from distributed import Client

    from pipeline import graph

    def no_gate(client: object) -> None:
        raise AssertionError("no gate on a remote cluster")

    monkeypatch.setattr(graph.TemplateGate, "create", staticmethod(no_gate))
    with Client(dask_cluster) as client:
        report = graph.extract([corpus], str(tmp_path / "s.zarr"), CONFIG, client=client, progress=False)
    assert report.chunks_computed == report.chunks_total > 0


def test_tasks_wait_at_the_template_gate_until_it_opens(dask_cluster: str) -> None:
    from distributed import Client

    from pipeline.errors import StorageError
    from pipeline.gate import TemplateGate, wait_for_template

    with Client(dask_cluster) as client:
        gate = TemplateGate.create(client)
        assert gate is not None
        waiting = client.submit(wait_for_template, gate.name, 60.0, pure=False)
        time.sleep(0.5)
        assert not waiting.done()  # still at the gate
        gate.open(ok=True)
        assert waiting.result(timeout=30) is None
        gate.close()
        closed = TemplateGate.create(client)
        assert closed is not None
        closed.open(ok=False)
        with pytest.raises(StorageError, match="could not be written"):
            client.submit(wait_for_template, closed.name, 60.0, pure=False).result(timeout=30)
        never = TemplateGate.create(client)
        assert never is not None
        with pytest.raises(StorageError, match="not written within"):
            client.submit(wait_for_template, never.name, 0.5, pure=False).result(timeout=30)
    wait_for_template(None)  # no cluster: nothing to wait for
