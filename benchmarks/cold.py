"""Cold CLI benchmarks (issue 15): each command a fresh process, timed from outside like `time`.

    python benchmarks/cold.py [--corpus DIR] [--minutes 120] [--repeat 3] [--profile]

Against references measured in the same run, on the same corpus (2 h of 30-s 22,050 Hz clips
by default, generated once into ``--corpus`` and reused):

- ``extract --workers 1`` against the tutorial's naive librosa loop in one process (>= 5x);
- ``extract`` with the default workers against ``--workers 1`` (>= 1.7x);
- ``extract`` of 4 short files, default options (< 3 s);
- ``info`` on the store the default extract wrote (< 1 s).

Process start, imports, cluster start and close all count: what a user's ``time`` shows. The
audio and the Python modules are in the page cache after the first run (cold process, warm
disk). Each command runs ``--repeat`` times, interleaved; the median counts and all are printed.
Only meaningful on a quiet machine: the load average is printed at the start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SR = 22050
CLIP_SECONDS = 30.0
SHORT_FILES = 4

#: ``audio-pipeline`` exactly as the console script runs it, plus the run's report written as
#: JSON to $COLD_BENCH_REPORT when ``extract`` prints its summary (the CLI prints no phases)
CLI = """\
import json, os, sys
from pipeline.results import ExtractReport

_summary = ExtractReport.summary


def _summary_and_dump(self):
    path = os.environ.get("COLD_BENCH_REPORT")
    if path:
        with open(path, "w") as out:
            json.dump({"elapsed": self.elapsed, "phases": self.phases, "timings": self.timings,
                       "audio_seconds": self.audio_seconds_computed}, out)
    return _summary(self)


ExtractReport.summary = _summary_and_dump
sys.argv[0] = "audio-pipeline"
from pipeline.cli import run

run()
"""

#: the tutorial's features, one librosa call each (each computing its own STFT): benchmarks/run.py's
#: ``naive_librosa`` with the default FeatureConfig, on a 3-s segment ``y``
NAIVE_CALLS = (
    ("mel", "librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, n_mels=N_MELS, **kw), ref=1.0, top_db=None)"),
    ("mfcc", "librosa.feature.mfcc(y=y, sr=SR, n_mfcc=N_MFCC, n_mels=N_MELS, **kw)"),
    ("chroma", "librosa.feature.chroma_stft(y=y, sr=SR, **kw)"),
    ("spectral_centroid", "librosa.feature.spectral_centroid(y=y, sr=SR, **kw)"),
    ("spectral_bandwidth", "librosa.feature.spectral_bandwidth(y=y, sr=SR, **kw)"),
    ("spectral_rolloff", "librosa.feature.spectral_rolloff(y=y, sr=SR, **kw)"),
    ("zero_crossing_rate", "librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP)"),
    ("rms", "librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP)"),
)

#: the parameters both scripts below start with (the default FeatureConfig's)
PARAMETERS = """\
SR, N_FFT, HOP, N_MELS, N_MFCC, SEGMENT = 22050, 2048, 512, 128, 20, 3 * 22050
kw = {"n_fft": N_FFT, "hop_length": HOP}
"""

#: the tutorial's loop in one process: librosa.load each file, cut 3-s segments, the calls above.
#: A script, so that its imports count as the CLI's do.
NAIVE = """\
import sys, warnings
from pathlib import Path

import librosa

warnings.simplefilter("ignore")  # chroma_stft warns about its tuning estimate on some segments
""" + PARAMETERS + """\
segments = 0
for path in sorted(Path(sys.argv[1]).rglob("*.wav")):
    audio, _ = librosa.load(path, sr=SR)
    for start in range(0, len(audio) - SEGMENT + 1, SEGMENT):
        y = audio[start : start + SEGMENT]
""" + "".join(f"        {call}\n" for _, call in NAIVE_CALLS) + """\
        segments += 1
print(f"naive loop: {segments} segments")
"""


# --- the machine ---------------------------------------------------------------------------------

def machine() -> str:
    """CPU model, cores and the load average: printed first by both benchmarks."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return (f"machine: {model}, {os.cpu_count()} cores; load average {load} (1, 5, 15 min). "
            "Cold timings are only meaningful on a quiet machine (load well below 1).")


# --- the corpus ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Corpus:
    clips: Path  #: ``minutes`` of 30-s clips, <genre>/<genre>.<i>.wav
    short: Path  #: 4 short files
    minutes: float


def _write_clips(root: Path, n: int, seconds: float) -> None:
    import soundfile as sf

    from pipeline.synth import GENRES, genre_clip

    for i in range(n):
        genre = GENRES[i % len(GENRES)]
        path = root / genre / f"{genre}.{i:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, genre_clip(genre, seconds=seconds, sr=SR, seed=i), SR, subtype="PCM_16")


def _cached(root: Path, n: int, seconds: float) -> Path:
    """``n`` clips of ``seconds`` under ``root``, written once: a marker written last says so."""
    marker = root / ".complete.json"
    want = {"files": n, "seconds": seconds, "sr": SR}
    with contextlib.suppress(OSError, ValueError):
        if json.loads(marker.read_text()) == want:
            return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    _write_clips(root, n, seconds)
    marker.write_text(json.dumps(want))
    return root


def corpus(directory: Path, minutes: float, short_seconds: float) -> Corpus:
    """The benchmark corpus in ``directory`` (generated on first use, then reused)."""
    n = max(1, round(minutes * 60 / CLIP_SECONDS))
    t0 = time.perf_counter()
    clips = _cached(directory / f"clips-{n}x{CLIP_SECONDS:g}s", n, CLIP_SECONDS)
    short = _cached(directory / f"short-{SHORT_FILES}x{short_seconds:g}s", SHORT_FILES, short_seconds)
    took = time.perf_counter() - t0
    print(f"corpus: {n} clips of {CLIP_SECONDS:g} s ({n * CLIP_SECONDS / 60:g} min) at {SR} Hz in {clips}; "
          f"{SHORT_FILES} files of {short_seconds:g} s in {short}" + (f" (written in {took:.0f} s)" if took > 1 else ""))
    return Corpus(clips, short, n * CLIP_SECONDS / 60)


# --- running a command cold ----------------------------------------------------------------------

@dataclass
class Runs:
    """One command's timed runs: wall seconds from outside, and extract's reports if any."""

    name: str
    argv: list[str]
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  #: CPU seconds of each run, the same order
    reports: list[dict[str, object]] = field(default_factory=list)

    @property
    def middle(self) -> int:
        """The median run's index (the upper one of an even count: a run that happened)."""
        return sorted(range(len(self.seconds)), key=self.seconds.__getitem__)[len(self.seconds) // 2]

    @property
    def median(self) -> float:
        return self.seconds[self.middle]

    def all(self) -> str:
        return ", ".join(f"{s:.2f}" for s in self.seconds)

    def listing(self) -> str:
        """Median and all runs, and the median run's CPU time (in cores: CPU over wall)."""
        i = self.middle
        return (f"{self.name}: {self.median:.2f} s [{self.all()}]; CPU {self.cpu[i]:.1f} s "
                f"({self.cpu[i] / self.seconds[i]:.2f} cores)")

    def median_report(self) -> dict[str, object] | None:
        """The report of the run whose wall time is the median."""
        return self.reports[self.middle] if self.reports else None


def cli(*args: str) -> list[str]:
    """``audio-pipeline ARGS`` as a fresh process (the console script's code, see ``CLI``)."""
    return [sys.executable, "-c", CLI, *args]


def timed(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds of ``argv`` as a fresh process, start to exit, like `time`, and its CPU
    seconds (user + system, with the children it waited for: a local cluster's workers);
    stdout and stderr to ``log``. A failed command stops the benchmark with its last lines."""
    with log.open("w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - t0
        proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"error: {' '.join([*argv[:1], '...', *list(argv[-4:])])} exited {code}:\n{tail}")
    return took, usage.ru_utime + usage.ru_stime


def run_all(commands: Sequence[Runs], repeat: int, work: Path) -> None:
    """Each command ``repeat`` times, interleaved (noise spreads over all of them alike)."""
    for i in range(repeat):
        for runs in commands:
            report = work / "report.json"
            report.unlink(missing_ok=True)
            env = {**os.environ, "COLD_BENCH_REPORT": str(report)}
            wall, cpu = timed(runs.argv, work / f"{runs.name}.log", env)
            runs.seconds.append(wall)
            runs.cpu.append(cpu)
            if report.exists():
                runs.reports.append(json.loads(report.read_text()))
            print(f"  run {i + 1}/{repeat}: {runs.name} {runs.seconds[-1]:.2f} s", flush=True)


def said(runs: Runs, work: Path, needle: str = " -> ") -> str:
    """The last line of ``runs``' last log that holds ``needle`` (extract's summary has " -> ")."""
    lines = [line for line in (work / f"{runs.name}.log").read_text().splitlines() if needle in line]
    return lines[-1] if lines else "nothing"


def phases(runs: Runs) -> str:
    """Where an extract's wall time went (its median run): outside the extract call (process
    start, imports, exit), prepare (listing, probing, layout, cluster start), tasks, the
    cluster's close, finalise; and the tasks' own time per stage."""
    report = runs.median_report()
    if report is None:
        return ""
    elapsed = float(report["elapsed"])  # type: ignore[arg-type]
    wall = runs.median
    ph = {k: float(v) for k, v in report["phases"].items()}  # type: ignore[attr-defined]
    parts = [f"start+imports+exit {wall - elapsed:.2f} s", f"prepare {ph.get('prepare', 0.0):.2f} s",
             f"tasks {ph.get('tasks', 0.0):.2f} s",
             f"cluster close {max(elapsed - sum(ph.values()), 0.0):.2f} s", f"finalise {ph.get('finalise', 0.0):.2f} s"]
    timings = {k: float(v) for k, v in report["timings"].items()}  # type: ignore[attr-defined]
    total = sum(timings.values()) or 1.0
    stages = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in timings.items())
    return f"    phases of {runs.name} (median run, {wall:.2f} s): " + ", ".join(parts) + f"; task time: {stages}"


def profile(argv: Sequence[str], work: Path, top: int = 10) -> str:
    """cProfile of the client process of ``argv`` (a ``cli(...)`` command): its imports, the
    package's own functions by cumulative time, and every function by own time (top ``top``)."""
    import pstats

    script = work / "cli_entry.py"
    script.write_text(CLI)
    out = work / "client.prof"
    timed([sys.executable, "-m", "cProfile", "-o", str(out), str(script), *argv[3:]], work / "profile.log")
    stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    rows = [(key, tt, ct) for key, (_, _, tt, ct, _) in stats.items()]
    total = max(ct for _, _, ct in rows)
    imports = sum(ct for (path, _, name), _, ct in rows if name == "_find_and_load" and "importlib" in path)

    def where(key: tuple[str, int, str]) -> str:
        path, line, name = key
        return f"{Path(path).parent.name}/{Path(path).name}:{line}({name})" if line else name

    package = sorted((r for r in rows if f"{os.sep}pipeline{os.sep}" in r[0][0]), key=lambda r: -r[2])[:top]
    own = sorted(rows, key=lambda r: -r[1])[:top]
    lines = [f"      under the profiler: {total:.2f} s in all, imports {imports:.2f} s "
             "(cProfile slows imports more than the rest)",
             f"      the package's functions, top {top} by cumulative seconds:"]
    lines += [f"        {ct:7.3f}  {where(key)}" for key, _, ct in package]
    lines.append(f"      all functions, top {top} by own seconds:")
    lines += [f"        {tt:7.3f}  {where(key)}" for key, tt, _ in own]
    return "\n".join(lines)


# --- the targets ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    name: str
    runs: Runs  #: the command measured against the target
    met: bool
    line: str
    needs: str  #: what it would take, when not met


def verdict(name: str, runs: Runs, value: float, target: float, *, higher: bool, unit: str, detail: str, needs: str) -> Verdict:
    met = value >= target if higher else value <= target
    shown = f"{value:.2f}{unit}"
    goal = f"{'>=' if higher else '<'} {target:g}{unit}"
    return Verdict(name, runs, met, f"{name}: {shown} (target {goal}): {'MET' if met else 'NOT MET'}; {detail}", needs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None,
                        help="where the corpus is generated once and reused [a temporary directory]")
    parser.add_argument("--minutes", type=float, default=120.0, help="audio in 30-s clips [120]")
    parser.add_argument("--short-seconds", type=float, default=10.0, help="length of each of the 4 short files [10]")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command; the median counts [3]")
    parser.add_argument("--profile", action="store_true", help="for a target not met: a cProfile of its client")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    print(machine(), flush=True)
    with _directory(args.corpus) as root, tempfile.TemporaryDirectory(prefix="cold-bench-") as tmp:
        data = corpus(root, args.minutes, args.short_seconds)
        work = Path(tmp)
        store = str(work / "default.zarr")
        naive = Runs("naive loop", [sys.executable, "-c", NAIVE, str(data.clips)])
        one = Runs("extract --workers 1", cli("extract", str(data.clips), "-o", str(work / "one.zarr"),
                                               "--workers", "1", "--overwrite"))
        default = Runs("extract (default workers)", cli("extract", str(data.clips), "-o", store, "--overwrite"))
        short = Runs(f"extract of {SHORT_FILES} short files", cli("extract", str(data.short), "-o",
                                                                   str(work / "short.zarr"), "--overwrite"))
        info = Runs("info", cli("info", store))
        commands = [naive, one, default, short, info]
        run_all(commands, args.repeat, work)
        print(f"\ncold runs (seconds, median of {args.repeat}; all runs in brackets; {data.minutes:g} min of audio):")
        for runs in commands:
            print(f"  {runs.listing()}")
        print(f"  the naive loop computed: {said(naive, work, 'naive loop: ')}")
        for runs in (one, default, short):
            print(f"  {runs.name} said: {said(runs, work)}")
        fixed = {r.name: _fixed(r) for r in (one, default, short)}
        verdicts = [
            verdict("extract --workers 1 vs the naive loop", one, naive.median / one.median, 5.0, higher=True, unit="x",
                    detail=f"naive {naive.median:.2f} s, extract {one.median:.2f} s",
                    needs=f"extract --workers 1 in {naive.median / 5:.2f} s; its fixed costs (all but the tasks) "
                          f"are {fixed[one.name]:.2f} s"),
            verdict("default workers vs --workers 1", default, one.median / default.median, 1.7, higher=True, unit="x",
                    detail=f"--workers 1 {one.median:.2f} s, default {default.median:.2f} s",
                    needs=f"the default extract in {one.median / 1.7:.2f} s; its fixed costs are "
                          f"{fixed[default.name]:.2f} s, and 2 workers share 2 cores with the client"),
            verdict(f"{SHORT_FILES} short files end to end", short, short.median, 3.0, higher=False, unit=" s",
                    detail=f"{SHORT_FILES} x {args.short_seconds:g} s, default options",
                    needs=f"{short.median - 3.0:.2f} s less of fixed costs ({fixed[short.name]:.2f} s of them)"),
            verdict("info", info, info.median, 1.0, higher=False, unit=" s", detail="on the default extract's store",
                    needs="a lighter import and read path for info (the profile shows which)"),
        ]
        print()
        for v in verdicts:
            print(v.line)
        for runs in (one, default, short):
            print(phases(runs))
        missed = [v for v in verdicts if not v.met]
        for v in missed:
            print(f"\nNOT MET: {v.name}. It would take {v.needs}.")
            if args.profile:
                print(f"    cProfile of the client process of {v.runs.name}:")
                print(profile(v.runs.argv, work))
        print(f"\ncold targets: {len(verdicts) - len(missed)} of {len(verdicts)} met"
              + ("" if not missed or args.profile else " (--profile shows where a missed one's client spends its time)"))
    return 0


def _fixed(runs: Runs) -> float:
    """Seconds of the median run outside its tasks: start, imports, prepare, close, finalise."""
    report = runs.median_report()
    if report is None:
        return runs.median
    return runs.median - float(report["phases"].get("tasks", 0.0))  # type: ignore[attr-defined]


@contextlib.contextmanager
def _directory(path: Path | None) -> Iterator[Path]:
    """``path`` (created if need be, kept), or a temporary directory removed at the end."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="cold-corpus-") as tmp:
        yield Path(tmp)


if __name__ == "__main__":
    sys.exit(main())
