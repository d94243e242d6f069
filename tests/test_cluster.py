"""A real Dask cluster (deploy/local/cluster.sh: scheduler + 2 workers on 127.0.0.1)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    error and the task waiting at the gate is told so (it fails there, it does not hang)."""
    from distributed import Client, LocalCluster

    from pipeline import gate, graph, write

    gates: list[gate.TemplateGate | None] = []
    create = gate.TemplateGate.create

    def spy(client: object) -> gate.TemplateGate | None:
        gates.append(create(client))
        return gates[-1]

    # a cluster object of this process (its workers are child processes, on loopback); not
    # processes=False: a task's worker client would then become this process's default
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        client.run_on_scheduler(_install_gate_spy())

        def broken(*args: object, **kwargs: object) -> None:
            # the template fails only once a chunk task waits for it at the gate
            name = _gate_name(gates)
            _until(lambda: _gate_seen(client, name)[0] == 1, "a chunk task waiting at the gate")
            raise OSError("disk full while writing the template")

        monkeypatch.setattr(write, "write_structure", broken)
        monkeypatch.setattr(graph.TemplateGate, "create", staticmethod(spy))
        with pytest.raises(OSError, match="disk full while writing the template"):
            graph.extract([corpus], str(tmp_path / "s.zarr"), client=client, progress=False)
        name = _gate_name(gates)
        # the gate answered the waiting task "failed" (it raises StorageError: could not be
        # written; so would any later one), and nothing waits there any more
        def told_failed() -> bool:
            waiting, answers = _gate_seen(client, name)
            return waiting == 0 and answers[:1] == ["failed"] and set(answers) == {"failed"}

        _until(told_failed, "the waiting task told the template failed")
    assert len(gates) == 1


def _gate_name(gates: list[Any]) -> str:
    assert len(gates) == 1 and gates[0] is not None, gates
    return str(gates[0].name)


def _until(condition: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail (saying ``what`` never happened) after ``seconds``,
    a bound for a broken run only: it is not what the test measures."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.02)


def _install_gate_spy() -> Callable[[Any], None]:
    """A function for ``client.run_on_scheduler``: the scheduler's ``variable_get`` handler (the
    gate's wait) wrapped to count, per variable, the calls waiting now and the values answered.

    A closure, so that cloudpickle ships it by value to a scheduler that cannot import tests."""

    def install(dask_scheduler: Any) -> None:
        import collections

        handler = dask_scheduler.handlers["variable_get"]
        if hasattr(handler, "waiting"):
            return
        waiting: collections.Counter[str] = collections.Counter()
        answers: dict[str, list[Any]] = collections.defaultdict(list)

        async def get(name: str | None = None, **kwargs: Any) -> Any:
            waiting[str(name)] += 1
            try:
                record = await handler(name=name, **kwargs)
            finally:
                waiting[str(name)] -= 1
            answers[str(name)].append(record.get("value"))
            return record

        get.waiting = waiting  # type: ignore[attr-defined]
        get.answers = answers  # type: ignore[attr-defined]
        dask_scheduler.handlers["variable_get"] = get

    return install


def _gate_seen(client: Any, name: str) -> tuple[int, list[Any]]:
    """(tasks waiting at gate ``name`` now, the values the gate answered so far)."""

    def read(dask_scheduler: Any) -> tuple[int, list[Any]]:
        get = dask_scheduler.handlers["variable_get"]
        return int(get.waiting[name]), list(get.answers[name])

    waiting, answers = client.run_on_scheduler(read)
    return int(waiting), list(answers)


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
        client.run_on_scheduler(_install_gate_spy())
        gate = TemplateGate.create(client)
        assert gate is not None
        waiting = client.submit(wait_for_template, gate.name, 600.0, pure=False)
        # the task is running and asks the scheduler for the gate, which is not open: it waits
        _until(lambda: _gate_seen(client, gate.name) == (1, []), "the task waiting at the gate")
        assert waiting.status == "pending"
        gate.open(ok=True)
        assert waiting.result(timeout=30) is None
        assert _gate_seen(client, gate.name) == (0, ["ok"])
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


def test_without_a_gate_nothing_is_waited_for() -> None:
    """No gate (no cluster, or the template written first): the task goes on at once, without
    asking any scheduler (there is none here: asking one would raise)."""
    from distributed import default_client

    from pipeline.gate import wait_for_template

    with pytest.raises(ValueError, match="No clients found"):
        default_client()
    wait_for_template(None, 0.0)  # returns, asking nobody
