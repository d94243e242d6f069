"""Two runs into one store: the second refuses with one line naming the first; stale claims expire."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_resume_append import assert_same_content, write_clips

from pipeline import FeatureConfig, extract, open_store
from pipeline.errors import StoreBusy
from pipeline.lock import Claim, StoreLock, lock_path

CONFIG = FeatureConfig(features=("mel", "rms"), n_mels=32)


def _cmd(corpus: Path, store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "extract", str(corpus), "-o", str(store), "--features", "mel,rms",
            "--n-mels", "32", "--label-from", "parent", "--no-progress", "--scheduler", "synchronous",
            "--segment-chunk", "2", *extra]


def _run_here(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """A command in this process, where no second process is what the test is about: its exit
    code, stdout and stderr."""
    from pipeline.cli import main

    capsys.readouterr()
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def _plant(store: Path, **fields: object) -> None:
    now = time.time()
    claim = {"run": "f" * 32, "host": socket.gethostname(), "pid": os.getpid(), "started": now, "renewed": now} | fields
    Path(lock_path(str(store))).write_text(json.dumps(claim))


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    root = tmp_path / "clips"
    write_clips(root, [f"c{i}" for i in range(6)], seconds=4.0)
    return root


def test_a_live_claim_refuses_a_second_run_in_one_line(clips: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.zarr"
    with StoreLock(str(store)) as claim:
        proc = subprocess.run(_cmd(clips, store), capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 75, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "is being written by another run" in lines[0] and f"pid {os.getpid()} " in lines[0]
        assert claim.claim.run[:8] in lines[0]
        assert not store.exists(), "the refused run touched the store"
    assert not Path(lock_path(str(store))).exists(), "the claim outlived its block"
    # released: the same command now runs
    code, _, err = _run_here(_cmd(clips, store)[3:], capsys)
    assert code == 0, err
    assert not Path(lock_path(str(store))).exists()


def test_two_runs_started_at_once_leave_a_correct_store(clips: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Two real processes race for a new store: one writes it, the other refuses (or, if they
    did not overlap, finds it complete); the store equals a one-shot run and `info` reads it."""
    store = tmp_path / "raced.zarr"
    procs = [subprocess.Popen(_cmd(clips, store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, 75]), results
    computed = 0
    for code, out, err in results:
        if code == 75:
            assert len(err.strip().splitlines()) == 1 and "being written by another run" in err, err
        else:
            computed += int(out.split(" of ", 1)[0].rsplit(" ", 1)[1])
    total = open_store(str(store)).sizes["chunk"]
    assert computed == total, f"chunks computed twice: {results}"
    code, _, err = _run_here(["info", str(store)], capsys)
    assert code == 0, err
    clean = tmp_path / "clean.zarr"
    extract([clips], str(clean), CONFIG, scheduler="synchronous", label_from="parent", progress=False, segment_chunk=2)
    assert_same_content(open_store(str(store)), open_store(str(clean)))


def test_a_claim_left_by_a_dead_process_on_this_host_expires_at_once(clips: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    store = tmp_path / "s.zarr"
    _plant(store, pid=dead.pid)
    code, _, err = _run_here(_cmd(clips, store)[3:], capsys)
    assert code == 0, err
    assert f"took over a stale claim on the store (run ffffffff, pid {dead.pid} " in err


def test_another_hosts_claim_expires_after_its_ttl(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _plant(store, host="elsewhere.invalid", pid=1, renewed=time.time() - 5)
    with pytest.raises(StoreBusy, match=r"pid 1 on elsewhere.invalid, .* renewed 5 s ago"):
        StoreLock(str(store), ttl=60).acquire()
    with StoreLock(str(store), ttl=4) as lock:  # 5 s without renewal: expired for a 4 s ttl
        assert lock.taken_over is not None and lock.taken_over.host == "elsewhere.invalid"
        held = Claim.from_bytes(Path(lock_path(str(store))).read_bytes())
        assert held == lock.claim


def test_an_unreadable_claim_counts_as_expired(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    Path(lock_path(str(store))).write_bytes(b"{half a cla")
    with StoreLock(str(store)) as lock:
        assert lock.taken_over is not None and lock.taken_over.run == "unreadable"


def test_a_live_run_renews_its_claim_and_learns_when_it_is_taken_over(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    lock = StoreLock(str(store), ttl=0.4).acquire()
    try:
        first = lock.claim.renewed
        deadline = time.monotonic() + 10
        while lock.claim.renewed == first and time.monotonic() < deadline:
            time.sleep(0.02)
        stored = Claim.from_bytes(Path(lock_path(str(store))).read_bytes())
        assert stored is not None and stored.run == lock.claim.run and stored.renewed > first
        lock.check()  # still ours
        _plant(store, run="e" * 32, host="other.invalid", pid=2)  # taken over while we stalled
        while lock.lost is None and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(StoreBusy, match="was taken over by another run"):
            lock.check()
    finally:
        lock.release()
    # release leaves the other run's claim alone
    assert Claim.from_bytes(Path(lock_path(str(store))).read_bytes()).run == "e" * 32  # type: ignore[union-attr]


def test_a_run_killed_before_its_template_existed_is_resumed(clips: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.zarr"
    cmd = _cmd(clips, store)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    lock = Path(lock_path(str(store)))
    deadline = time.monotonic() + 120
    while not lock.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert lock.exists(), "the run ended before it could be killed"
    code, _, err = _run_here(cmd[3:], capsys)
    assert code == 0, err
    assert "took over a stale claim" in err
    clean = tmp_path / "clean.zarr"
    extract([clips], str(clean), CONFIG, scheduler="synchronous", label_from="parent", progress=False, segment_chunk=2)
    assert_same_content(open_store(str(store)), open_store(str(clean)))
    assert np.asarray(open_store(str(store))["segment_valid"].values).all()


@pytest.mark.s3
def test_s3_claims_are_conditional_writes(s3_bucket: tuple[str, dict[str, object]]) -> None:
    """On S3 the claim is a PUT with If-None-Match: * (moto enforces it like S3)."""
    bucket, options = s3_bucket
    url = f"s3://{bucket}/features.zarr"
    with StoreLock(url, options) as first:
        with pytest.raises(StoreBusy, match=f"pid {os.getpid()} "):
            StoreLock(url, options).acquire()
        assert first.lost is None
    with StoreLock(url, options) as again:
        assert again.taken_over is None
