"""deploy/slurm/cluster.py through a real one-node SLURM (tests/slurm.py): the store equals a local run's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from slurm import Slurm, SlurmUnavailable, one_node_slurm

from pipeline import extract
from pipeline.store import open_raw
from pipeline.testing import assert_stores_equal

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
CLUSTER_PY = Path(__file__).resolve().parents[1] / "deploy" / "slurm" / "cluster.py"
# a worker preload (DASK_DISTRIBUTED__WORKER__PRELOAD; sbatch exports the environment to the jobs):
# each task a worker runs is printed, with the SLURM job it runs in, to that job's slurm-<id>.out
TRACE = """\
import os

from distributed import WorkerPlugin


class Trace(WorkerPlugin):
    def transition(self, key, start, finish, **kwargs):
        if start == "executing" and finish == "memory":
            print(f"ran {key} in SLURM job {os.environ.get('SLURM_JOB_ID')}", flush=True)


async def dask_setup(worker):
    await worker.plugin_add(Trace(), name="trace")
"""


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Slurm]:
    """The SLURM answering ``sinfo``, else a one-node SLURM for the session (as root; torn
    down after); skipped, saying why, where neither can be had."""
    try:
        with one_node_slurm() as slurm:
            yield slurm
    except SlurmUnavailable as exc:
        pytest.skip(f"no SLURM: {exc}")


def test_cluster_py_through_slurm_equals_a_local_run(slurm_cluster: Slurm, corpus: Path, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"  # sbatch's cwd: the workers' slurm-<job id>.out land here
    jobs.mkdir()
    trace = tmp_path / "trace.py"
    trace.write_text(TRACE)
    store = str(tmp_path / "slurm.zarr")
    proc = subprocess.run(
        [sys.executable, str(CLUSTER_PY), str(corpus), "-o", store, "--label-from", "parent", "--jobs", "2",
         "--interface", "lo", "--walltime", "00:10:00", "--memory", "2GB"],
        cwd=jobs, env={**slurm_cluster.env, "DASK_DISTRIBUTED__WORKER__PRELOAD": repr([str(trace)])},
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "5 files (5 ok, 0 warned, 0 failed)" in proc.stdout

    # every chunk ran in a SLURM job: the job's own log says so, with its job id
    ran = {}
    for log in jobs.glob("slurm-*.out"):
        for key, job in re.findall(r"^ran (chunk-\S+) in SLURM job (\S+)$", log.read_text(), re.MULTILINE):
            assert log.name == f"slurm-{job}.out", (log.name, key, job)
            ran[key] = job
    a = open_raw(store)
    assert len(ran) == a.sizes["chunk"], f"chunk tasks run in SLURM jobs: {ran}; job logs: {sorted(os.listdir(jobs))}"

    local = str(tmp_path / "local.zarr")
    extract([corpus], local, scheduler="synchronous", label_from="parent", progress=False)
    b = open_raw(local)
    assert a.sizes["segment"] > 0 and len(a.data_vars) > 10, a
    assert_stores_equal(a, b)
