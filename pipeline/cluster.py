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

__all__ = ["Place", "Runner", "auto_scheduler", "cluster", "owns_cluster", "place", "warm_workers"]

#: what a local cluster's worker processes import as they start (their Dask preload)
WORKER_PRELOAD = "pipeline.chunk"
#: what a worker imports as it sets itself up (:func:`pipeline.chunk.dask_setup`): the kernels,
#: the region writes, the store
WORKER_MODULES = ("pipeline.featurize", "pipeline.regions", "pipeline.store")
#: the worker processes' imports, done once in the fork server (:func:`warm_workers`)
_WORKER_IMPORTS = ("distributed", WORKER_PRELOAD, *WORKER_MODULES)
_warm = False


def warm_workers() -> bool:
    """Start, now, the fork server that this process's local cluster will fork its worker
    processes from, with the workers' imports (distributed, the kernels: about 1.2 s) done
    once, in it, on another core while this process goes on; False where there is no fork
    server (Windows) or it cannot start.

    A worker spawned afresh starts a Python interpreter and imports all of that itself, after
    the cluster's scheduler is up: about 2.5 s before the first task on this machine, paid once
    per worker, each on a core the run needs. Forked from the warm server, it is up in a
    fraction of that. The server lives as long as this process (it ends when this process
    does), so the command line uses it; a library caller's cluster spawns its workers as Dask
    does by default. SIGINT is blocked in the server and so in every worker forked from it
    (see :meth:`Place._start_local`).
    """
    global _warm
    if _warm:
        return True
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    from multiprocessing import forkserver, resource_tracker

    resource_tracker.ensure_running()  # it unblocks SIGINT in the thread that starts it: first
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(_WORKER_IMPORTS))
    # the server's environment is its workers': Dask's nanny sets some variables before a
    # worker's interpreter starts (one BLAS thread, malloc trimming), the server gets them
    environ = _pre_spawn_environ()
    saved = {key: os.environ.get(key) for key in environ}
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        os.environ.update(environ)
        forkserver.ensure_running()
    except OSError:
        return False
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    _warm = True
    return True


def _pre_spawn_environ() -> dict[str, str]:
    """``distributed.nanny.pre-spawn-environ`` without importing distributed (0.5 s): the
    user's Dask config where it sets it, else distributed's defaults from its YAML file."""
    import importlib.util
    from pathlib import Path

    import dask.config
    import yaml

    try:
        spec = importlib.util.find_spec("distributed")
        path = Path(spec.origin if spec and spec.origin else "").parent / "distributed.yaml"
        defaults = yaml.safe_load(path.read_text())["distributed"]["nanny"]["pre-spawn-environ"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        defaults = {}
    value = dask.config.get("distributed.nanny.pre-spawn-environ", default=defaults)
    return {str(k): str(v) for k, v in (value or {}).items()}


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


class Place:
    """Where a run's tasks go: a distributed client, or this process (``client() is None``).

    A local cluster starts in a background thread as soon as the run knows it needs one, so
    that its scheduler, worker processes and their imports (pipeline.chunk, preloaded) overlap
    this process's listing, probing and layout; :meth:`client` waits for it. :meth:`close`
    closes whatever was started here, on every path (a start still under way is waited for:
    a half-built cluster has no clean cancel).
    """

    def __init__(self, client: Any | None = None, *, workers: int | None = None, out: TextIO | None = None) -> None:
        self._client = client
        self._local: Any | None = None
        self._error: BaseException | None = None
        self._owned = False
        self._out = out
        self._thread: threading.Thread | None = None
        self._closing: threading.Thread | None = None
        if workers is not None:
            self._owned = True
            self._workers = workers
            # not a daemon: a run that ends (or fails) while the cluster starts waits for it, then closes it
            self._thread = threading.Thread(target=self._start_local, name="pipeline-cluster-start")
            self._thread.start()

    @property
    def starting(self) -> bool:
        """A local cluster is still starting (its client not ready yet)."""
        return self._thread is not None and self._thread.is_alive()

    def _start_local(self) -> None:
        # SIGINT blocked in this thread: the cluster's event-loop thread and the threads that
        # spawn worker processes descend from it and inherit the mask, and a blocked signal
        # stays blocked across fork and exec. Ctrl-C (sent to the whole process group) then
        # reaches only the main thread of this process, which says one line and closes the
        # cluster, instead of every worker printing its KeyboardInterrupt. (signal.signal,
        # which the main thread alone may call, is not needed.)
        # multiprocessing's resource tracker, started with the first worker, unblocks SIGINT in
        # the thread that starts it: started first, before the mask.
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            import dask.config
            from distributed import Client, LocalCluster

            if _warm:  # distributed's own forkserver set-up would import its optional packages here
                import distributed.utils

                distributed.utils._forkserver_preload_set = True
            method = "forkserver" if _warm else dask.config.get("distributed.worker.multiprocessing-method")
            # everything on loopback: the dashboard would otherwise listen on all interfaces.
            # Worker logs stay quiet below CRITICAL: a failing task is reported once, by this
            # process, in one line. Workers import the kernels as they start (preload).
            with dask.config.set({"distributed.worker.multiprocessing-method": method}):
                self._local = LocalCluster(
                    n_workers=self._workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL, preload=[WORKER_PRELOAD],
                )
            self._client = Client(self._local, set_as_default=False)
        except BaseException as exc:  # reported by client(), in the caller's thread
            self._error = exc

    def client(self) -> Any | None:
        """The distributed client (None: this process), once a starting cluster is up.

        Raises
        ------
        SchedulerError
            The local cluster could not start.
        """
        if self._thread is not None:
            self._thread.join()
            if self._error is not None:
                raise SchedulerError(f"Cannot start a local cluster of {self._workers} workers: "
                                     f"{one_line(self._error)}") from self._error
            if self._out is not None:
                _print_dashboard(self._client, self._out)
                self._out = None
        return self._client

    def close_in_background(self) -> None:
        """Start closing what was started here (about 0.4 s for a local cluster) while this
        thread goes on (the run's finalisation); :meth:`close` waits for it."""
        if self._owned and self._closing is None:
            self._closing = threading.Thread(target=self._close, name="pipeline-cluster-close")
            self._closing.start()

    def close(self) -> None:
        """Close the client and local cluster started here (nothing for a given client)."""
        if self._closing is not None:
            self._closing.join()
        self._close()

    def _close(self) -> None:
        if not self._owned:
            return
        if self._thread is not None:
            self._thread.join()
        client, local, self._client, self._local = self._client, self._local, None, None
        try:
            if client is not None:
                client.close()
        finally:
            if local is not None:
                local.close()


@contextlib.contextmanager
def place(client: Any | None, scheduler: str | None, workers: int | None, out: TextIO) -> Iterator[Place]:
    """Where tasks run (see :func:`cluster`), without waiting for a local cluster to start:
    :meth:`Place.client` waits. Closes what it started, whatever happens meanwhile."""
    if client is not None:
        yield Place(client)
        return
    if scheduler == "synchronous":
        yield Place(None)
        return
    if scheduler:
        from distributed import Client

        try:
            own = Client(scheduler, timeout=f"{setting('connect-timeout')}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(f"Cannot reach the Dask scheduler at {scheduler}: {one_line(exc)}") from exc
        try:
            _print_dashboard(own, out)
            yield Place(own)
        finally:
            own.close()
        return
    started = Place(workers=workers or max(1, os.cpu_count() or 1), out=out)
    try:
        yield started
    finally:
        started.close()


@contextlib.contextmanager
def cluster(client: Any | None, scheduler: str | None, workers: int | None, out: TextIO) -> Iterator[Any | None]:
    """Yield a distributed client (given, connected to ``scheduler``, or a new local cluster of
    ``workers`` processes) or None for ``scheduler="synchronous"``; closes what it started."""
    with place(client, scheduler, workers, out) as where:
        yield where.client()


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
