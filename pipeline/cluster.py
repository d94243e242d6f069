"""Where tasks run: a Dask client (given, connected to, or a local cluster started here) or this process.

:func:`auto_scheduler` keeps a default run that is too small to pay for a cluster in this
process; :class:`Runner` maps a function over items on either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from .errors import SchedulerError, one_line
from .probe import FileInfo, probe_many
from .settings import setting

__all__ = ["Runner", "auto_scheduler", "cluster", "owns_cluster"]


class Runner:
    """Runs functions either on a Dask client or in this process (no client: ``synchronous``)."""

    def __init__(self, client: Any | None) -> None:
        self.client = client

    def map(self, func: Callable[..., Any], items: Sequence[Any], *args: Any, key: str = "task",
            meanwhile: Callable[[], None] | None = None) -> Iterator[Any]:
        """``func(item, *args)`` for each item, in completion order; ``meanwhile()`` runs here
        once the tasks are submitted (in this process, before any task, when there is no client).

        On a cluster a task whose worker died is retried ``pipeline.retries`` times.
        """
        if self.client is None:
            if meanwhile is not None:
                meanwhile()
            for item in items:
                yield func(item, *args)
            return
        from distributed import as_completed

        retries = setting("retries")
        futures = [
            self.client.submit(func, item, *args, key=f"{key}-{i}-{os.urandom(4).hex()}", retries=retries, pure=False)
            for i, item in enumerate(items)
        ]
        try:
            if meanwhile is not None:
                meanwhile()
            for future in as_completed(futures, loop=self.client.loop):
                yield future.result()
        finally:
            for future in futures:
                future.release()


@contextlib.contextmanager
def cluster(client: Any | None, scheduler: str | None, workers: int | None, out: TextIO) -> Iterator[Any | None]:
    """Yield a distributed client (given, connected to ``scheduler``, or a new local cluster of
    ``workers`` processes) or None for ``scheduler="synchronous"``; closes what it started."""
    if client is not None:
        yield client
        return
    if scheduler == "synchronous":
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            own = Client(scheduler, timeout=f"{setting('connect-timeout')}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(f"Cannot reach the Dask scheduler at {scheduler}: {one_line(exc)}") from exc
        try:
            _print_dashboard(own, out)
            yield own
        finally:
            own.close()
        return
    n = workers or max(1, os.cpu_count() or 1)
    # everything on loopback: the dashboard would otherwise listen on all interfaces. Worker
    # processes start with SIGINT ignored: Ctrl-C (sent to the whole process group) reaches
    # this process alone, which says one line and closes the cluster, instead of every worker
    # printing its KeyboardInterrupt. Their logs stay quiet below CRITICAL: a failing task is
    # reported once, by this process, in one line. Workers import the kernels as they start
    # (preload), while this process probes, not in their first task: 3.1 -> 0.8 s of tasks for
    # 1 min of audio on 2 workers.
    with _sigint_ignored():
        local = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL, preload=["pipeline.chunk"],
        )
    own = Client(local, set_as_default=False)
    try:
        _print_dashboard(own, out)
        yield own
    finally:
        own.close()
        local.close()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while the cluster starts its worker processes, which inherit that (an
    ignored signal stays ignored across exec, and Python then installs no handler of its own).
    A Ctrl-C in those 1-2 s is lost (the next one works). In the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_dashboard(client: Any, out: TextIO) -> None:
    link = getattr(client, "dashboard_link", None)
    if link:
        print(f"Dask dashboard: {link}", file=out)


def owns_cluster(client: Any | None) -> bool:
    """Whether the client's cluster is a LocalCluster of this process, which ends with it
    (a Kubernetes, SSH or jobqueue cluster object outlives a killed client)."""
    if client is None or getattr(client, "cluster", None) is None:
        return False
    from distributed import LocalCluster

    return isinstance(client.cluster, LocalCluster)


def auto_scheduler(uris: Sequence[str], options: Mapping[str, Any], *, client: Any | None, scheduler: str | None,
                   workers: int | None, out: TextIO) -> tuple[str | None, dict[str, FileInfo] | None]:
    """``("synchronous", probed)`` for a default run (no client, scheduler or workers) with less
    audio than ``pipeline.in-process-below-seconds``, else the scheduler as given (with the
    headers probed, when there were few enough, ``pipeline.probe-batch``, to probe here).

    A local cluster costs about 8 s here (start, worker imports, close: 12.8 s for 1 min of
    30-s clips on 2 workers vs 4.3 s in-process; 5.4 s in-process for 20 min), which its second
    core earns back only past about 2 h of audio on this 2-core machine and past about 1 h on a
    laptop with more cores.
    """
    if client is not None or scheduler is not None or workers is not None or len(uris) > setting("probe-batch"):
        return scheduler, None
    probed = {info.uri: info for info in probe_many(uris, options)}
    seconds = sum(i.frames / i.sample_rate for i in probed.values() if not i.error and i.sample_rate)
    limit = setting("in-process-below-seconds")
    if seconds >= limit:
        return scheduler, probed
    print(f"in-process: {len(uris)} files, {seconds / 60:.1f} min of audio (a local cluster pays off above "
          f"{limit / 60:.0f} min; --workers N starts one)", file=out)
    return "synchronous", probed
