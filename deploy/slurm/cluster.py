"""Run the pipeline on a SLURM cluster with dask-jobqueue.

    pip install 'audio-feature-pipeline[s3]' dask-jobqueue
    python deploy/slurm/cluster.py /shared/corpus -o /shared/features.zarr --jobs 8

Each SLURM job runs one Dask worker process with one thread (the feature kernels are
single-threaded NumPy; parallelism comes from processes). The scheduler runs where this script
runs (a login node or a small job) and listens on the interface the compute nodes reach; use TLS
(the DASK_DISTRIBUTED__COMM__TLS__* variables, see deploy/kubernetes/README.md) when that network
is shared. Extraction resumes after preemption: rerun the same command.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def make_cluster(*, jobs: int, queue: str | None, walltime: str, memory: str, interface: str | None,
                 host: str | None = None, account: str | None = None) -> Any:
    """A dask-jobqueue SLURMCluster sized for the pipeline: 1 core, 1 thread, 1 process per job."""
    from dask_jobqueue import SLURMCluster

    scheduler_options: dict[str, Any] = {"dashboard_address": "127.0.0.1:0"}
    if host:
        scheduler_options["host"] = host
    cluster = SLURMCluster(
        cores=1, processes=1, memory=memory, walltime=walltime, queue=queue, account=account,
        interface=interface, scheduler_options=scheduler_options,
        job_extra_directives=["--cpus-per-task=1"],
        worker_extra_args=["--nthreads", "1"],
        job_script_prologue=["export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1"],
    )
    cluster.scale(jobs=jobs)
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--queue")
    parser.add_argument("--account")
    parser.add_argument("--walltime", default="02:00:00")
    parser.add_argument("--memory", default="4GB")
    parser.add_argument("--interface", help="network interface the compute nodes reach, e.g. ib0")
    parser.add_argument("--label-from", choices=["parent"])
    parser.add_argument("--labels")
    parser.add_argument("--print-job-script", action="store_true", help="print the sbatch script and exit")
    args = parser.parse_args(argv)

    from distributed import Client

    import pipeline

    with make_cluster(jobs=args.jobs, queue=args.queue, walltime=args.walltime, memory=args.memory,
                      interface=args.interface, account=args.account) as cluster:
        if args.print_job_script:
            print(cluster.job_script())
            return 0
        with Client(cluster) as client:
            report = pipeline.extract(args.inputs, args.output, client=client, label_from=args.label_from,
                                      labels=args.labels)
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
