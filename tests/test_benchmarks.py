"""The cold and peer benchmarks run end to end at a tiny size, so that they cannot rot.

Nothing here looks at a figure: a target may be met or not on this machine (one minute of audio
cannot pay for a cluster's start). What is checked is that every command ran, every target got
its verdict, and a missed one its breakdown and, with ``--profile``, its client's profile.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
VERDICT = re.compile(r"^(?P<name>[^\n]+): [\d.]+(x| s) \(target [^)]*\): (?P<met>MET|NOT MET); ", re.MULTILINE)

pytestmark = pytest.mark.slow


def bench(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_cold_benchmark_gives_every_target_a_verdict(tmp_path: Path) -> None:
    out = bench("cold.py", "--corpus", str(tmp_path / "corpus"), "--minutes", "1", "--repeat", "1", "--profile")
    assert out.startswith("machine: ") and "load average" in out
    verdicts = {m["name"]: m["met"] for m in VERDICT.finditer(out)}
    assert list(verdicts) == ["extract --workers 1 vs the naive loop", "default workers vs --workers 1",
                              "4 short files end to end", "info"], out
    missed = [name for name, met in verdicts.items() if met == "NOT MET"]
    assert f"cold targets: {4 - len(missed)} of 4 met" in out
    # every extract's wall time split into its phases, from the run's own report
    for name in ("extract --workers 1", "extract (default workers)", "extract of 4 short files"):
        assert re.search(rf"phases of {re.escape(name)} \(median run, [\d.]+ s\): start\+imports\+exit [\d.]+ s, "
                         r"prepare [\d.]+ s, tasks [\d.]+ s, cluster close [\d.]+ s, finalise [\d.]+ s; task time: "
                         r"decode \d+%", out), out
    # a missed target says what it would take and where its client's time goes
    for name in missed:
        assert f"NOT MET: {name}. It would take " in out
    assert out.count("cProfile of the client process of ") == len(missed)
    assert out.count("the package's functions, top 10 by cumulative seconds:") == len(missed)
    # each command did the work it is timed for: 2 clips of 30 s (20 segments), 4 short files
    assert "the naive loop computed: naive loop: 20 segments" in out
    assert out.count(" said: 2 files (2 ok, 0 warned, 0 failed), 20 segments") == 2, out
    assert " said: 4 files (4 ok, 0 warned, 0 failed)" in out


def test_cold_benchmark_corpus_is_written_once(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from cold import corpus
    finally:
        sys.path.remove(str(BENCHMARKS))
    first = corpus(tmp_path, 1.0, short_seconds=2.0)
    files = sorted(first.clips.rglob("*.wav")) + sorted(first.short.rglob("*.wav"))
    assert len(files) == 2 + 4
    stamps = [f.stat().st_mtime_ns for f in files]
    again = corpus(tmp_path, 1.0, short_seconds=2.0)
    assert again == first
    assert [f.stat().st_mtime_ns for f in files] == stamps  # reused, not rewritten


def test_peers_benchmark_runs_both_peers(tmp_path: Path) -> None:
    absent = [name for name in ("datasets", "lhotse") if importlib.util.find_spec(name) is None]
    if absent:
        pytest.skip(f"peer benchmark needs {' and '.join(absent)}: pip install 'audio-feature-pipeline[bench]'")
    out = bench("peers.py", "--corpus", str(tmp_path / "corpus"), "--minutes", "1", "--repeat", "1")
    verdicts = [m["name"] for m in VERDICT.finditer(out)]
    assert verdicts == ["extract, full set (default) vs datasets.map(num_proc=2), full set",
                        "extract --features mel --n-mels 80 vs lhotse LibrosaFbank(80), num_jobs=2"], out
    # each peer did the work it is timed for: 2 clips of 30 s, 10 segments each
    assert "wrote: datasets: 20 segments of 2 files -> " in out
    assert "wrote: lhotse: 2 cuts, 2 with features -> " in out
    assert out.count(" wrote: 2 files (2 ok, 0 warned, 0 failed), 20 segments") == 2, out
    assert "peer targets: " in out and "skipped" not in out
