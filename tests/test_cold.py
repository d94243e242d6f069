"""The cold command: what each command imports, and a local cluster started in the background
(closed on every path, its workers deaf to Ctrl-C, its per-worker store cache never stale)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import psutil
import pytest

from pipeline import FeatureConfig, InputError, extract, open_store

#: modules a light command must not import: the kernels' (librosa, numba), the cluster's, PyTorch
HEAVY = ("librosa", "numba", "distributed", "torch")

#: runs the command line in a fresh interpreter, then prints the heavy modules it imported
_RUNNER = """
import json, sys
from pipeline.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)), file=sys.stderr)
"""


def _imports(modules: tuple[str, ...], *argv: str) -> tuple[list[str], str]:
    """Which of ``modules`` the command line imported, and what it wrote to stderr."""
    proc = subprocess.run([sys.executable, "-c", _RUNNER.format(heavy=modules), *argv],
                          capture_output=True, text=True, timeout=120, check=False)
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    assert last.startswith("["), proc.stderr
    return list(json.loads(last)), proc.stderr


def _heavy_imports(*argv: str) -> list[str]:
    return _imports(HEAVY, *argv)[0]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    from test_resume_append import write_clips

    root = tmp_path_factory.mktemp("cold")
    write_clips(root / "clips", ["a", "b"], seconds=4.0)
    store = str(root / "s.zarr")
    extract([root / "clips"], store, FeatureConfig(features=("rms", "mfcc")), scheduler="synchronous",
            label_from="parent", progress=False)
    return store


@pytest.mark.parametrize("argv", [["--help"], ["query", "--help"], ["info", "--help"], ["extract", "--help"]])
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    assert _heavy_imports(*argv) == []


def test_info_imports_nothing_heavy(small_store: str) -> None:
    assert _heavy_imports("info", small_store) == []


def test_an_in_process_extract_imports_no_cluster_and_no_xarray(tmp_path: Path) -> None:
    """A run too small for worker processes computes here: it imports no distributed (0.6 s),
    not even through dask looking for a client (an axis of strings, chroma's pitch_class, was
    one), and writes its new store through zarr alone: no xarray, pandas or dask.array (1.2 s)."""
    from test_resume_append import write_clips

    write_clips(tmp_path / "clips", ["a", "b"], seconds=4.0)
    imported, said = _imports((*HEAVY, "xarray", "pandas", "dask.array"), "extract", str(tmp_path / "clips"),
                              "-o", str(tmp_path / "s.zarr"), "--no-progress", "--features", "chroma,rms")
    assert "in-process: 2 files" in said, said
    assert imported == [], said
    assert open_store(str(tmp_path / "s.zarr")).sizes["segment"] > 0


def test_info_reads_through_zarr_alone(small_store: str) -> None:
    """info reads the store without xarray, pandas or Dask (1 s of imports): pipeline.peek."""
    proc = subprocess.run([sys.executable, "-c", _RUNNER.format(heavy=("xarray", "pandas", "dask")), "info", small_store],
                          capture_output=True, text=True, timeout=120, check=False)
    assert "complete: " in proc.stdout, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def _children() -> set[int]:
    """This process's child processes, but multiprocessing's resource tracker (it lives as long
    as the process that started it, by design)."""
    out = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                out.add(child.pid)
        except psutil.Error:
            continue
    return out


def test_the_cluster_is_closed_when_listing_fails_while_it_starts(tmp_path: Path) -> None:
    """URLs are listed while the asked-for cluster starts; a listing that fails (nothing there)
    reports its one error, and the cluster it started (its worker processes seen running) is
    closed before extract returns."""
    before = _children()
    seen: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.update(_children() - before)
            stop.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.raises(InputError, match="No such file or directory: memory://"):
            extract(["memory://nothing-here/clip.wav"], str(tmp_path / "s.zarr"), workers=1, progress=False,
                    out=io.StringIO())
    finally:
        stop.set()
        watcher.join()
    assert seen, "no worker process was started: the cluster did not start while listing"
    assert not {pid for pid in seen if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE}
    assert _children() - before == set()


#: starts a local cluster in the background (as extract does; with argv "warm", from the fork
#: server the command line warms) and prints, per worker, its blocked and ignored signal masks,
#: whether its parent is the fork server, and its BLAS threads; then this process's OMP_NUM_THREADS
_SIGNAL_MASKS = """
import io, os, sys
from multiprocessing import forkserver
from pathlib import Path
from pipeline.cluster import place, warm_workers

def masks(pid):
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return [int(next(x.split()[1] for x in lines if x.startswith(k)), 16) for k in ("SigBlk:", "SigIgn:")]

def facts():
    from threadpoolctl import threadpool_info
    blas = max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1)
    return os.getpid(), os.getppid(), blas

if __name__ == "__main__":
    if sys.argv[1:] == ["warm"]:
        assert warm_workers()
    own = os.environ.get("OMP_NUM_THREADS", "-")
    with place(None, None, 2, io.StringIO()) as where:
        client = where.client()
        server = forkserver._forkserver._forkserver_pid
        for pid, ppid, blas in client.run(facts).values():
            print(*masks(pid), int(ppid == server), blas)
    print(own)
"""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("warm", [False, True], ids=["spawned", "forked-from-warm-server"])
def test_workers_started_in_the_background_ignore_ctrl_c(tmp_path: Path, warm: bool) -> None:
    """The cluster starts in a thread (which cannot set signal handlers): its worker processes
    still start with SIGINT blocked, so that Ctrl-C reaches the extract's process alone. Run
    from a process that takes SIGINT (a background job, as a test run may be, ignores it).

    The command line's workers are forked from a fork server it starts at once with their
    imports (cluster.warm_workers): they too block SIGINT, and start with the environment Dask's
    nanny gives a spawned worker before its interpreter starts (one BLAS thread: read as the
    BLAS library loads), which the command's own process keeps out of.
    """
    script = tmp_path / "masks.py"
    script.write_text(_SIGNAL_MASKS)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    proc = subprocess.run([sys.executable, str(script), *(["warm"] if warm else [])], capture_output=True, text=True,
                          timeout=120, check=False, preexec_fn=_default_sigint, env=env)
    assert proc.returncode == 0, proc.stderr
    *workers, own = proc.stdout.splitlines()
    rows = [line.split() for line in workers]
    assert len(rows) == 2, proc.stdout
    for blocked, ignored, forked, blas in rows:
        assert (int(blocked) | int(ignored)) & (1 << (signal.SIGINT - 1)), f"the worker would take SIGINT: {rows}"
        assert forked == ("1" if warm else "0"), rows
        assert blas == "1", rows
    assert own == "-"


def test_a_long_lived_worker_never_writes_through_a_stale_store(tmp_path: Path) -> None:
    """Workers keep the store open for a run's tasks: a second run on the same workers, which
    rewrites the same store (--overwrite) with another layout, must open it afresh."""
    from distributed import Client, LocalCluster
    from test_resume_append import write_clips

    write_clips(tmp_path / "clips", ["a", "b", "c"], seconds=4.0)
    store = str(tmp_path / "s.zarr")
    first, second = FeatureConfig(features=("mel",), n_mels=32), FeatureConfig(features=("mel",), n_mels=48)
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster, set_as_default=False) as client:
        extract([tmp_path / "clips"], store, first, client=client, progress=False, segment_chunk=2)
        report = extract([tmp_path / "clips"], store, second, client=client, progress=False, segment_chunk=2,
                         overwrite=True)
    assert report.files_ok == 3
    here = str(tmp_path / "here.zarr")
    extract([tmp_path / "clips"], here, second, scheduler="synchronous", progress=False, segment_chunk=2)
    a, b = open_store(store), open_store(here)
    assert a["mel"].shape == b["mel"].shape and a["mel"].shape[-1] == 48
    np.testing.assert_array_equal(a["mel"].values, b["mel"].values)


#: the console script with main() replaced: a code, an escaping exception, or a long output
_RUN_WITH = """
import sys
from pipeline import cli
what = sys.argv.pop(1)
if what == "code":
    cli.main = lambda: 3
elif what == "raise":
    def boom():
        raise RuntimeError("boom")
    cli.main = boom
elif what == "long":
    def long():
        for i in range(20000):
            print(i)
        return 0
    cli.main = long
cli.run()
"""


@pytest.mark.parametrize(("what", "code"), [("code", 3), ("raise", 1), ("long", 0), ("--version", 0), ("usage", 2)])
def test_the_console_script_ends_at_once_with_its_code_and_all_its_output(what: str, code: int) -> None:
    """run() skips the interpreter's teardown (os._exit once every exit handler ran): the exit
    code is still main's (1 for an escaping exception, argparse's for --version and usage
    errors), and output written to a pipe is all there."""
    argv = {"--version": ["none", "--version"], "usage": ["none", "extract"]}.get(what, [what])
    proc = subprocess.run([sys.executable, "-c", _RUN_WITH, *argv], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == code, proc.stderr
    if what == "long":
        lines = proc.stdout.splitlines()
        assert lines == [str(i) for i in range(20000)]
    if what == "raise":
        assert "RuntimeError: boom" in proc.stderr
    if what == "--version":
        assert proc.stdout.startswith("audio-pipeline ")
