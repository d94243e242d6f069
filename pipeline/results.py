"""What runs return and pass between processes: an extract run's report, a chunk task's report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

import numpy as np

__all__ = ["ChunkReport", "ChunkResult", "ChunkResults", "ExtractReport", "FileOutcome", "Timings", "keep_first_messages"]


class FileOutcome(TypedDict):
    """How one file's part of a chunk went (``error``/``warning``: one line, or empty)."""

    status: Literal["ok", "error"]
    error: str
    warning: str


class Timings(TypedDict):
    """Seconds of a chunk task's own time per stage."""

    decode: float
    resample: float
    compute: float
    write: float


class ChunkReport(TypedDict):
    """What a chunk task wrote (as JSON in ``chunk_report``) and returns to the client.

    ``files`` is keyed by the file's index in the store, as a string (JSON keys are strings).
    """

    chunk: int
    files: dict[str, FileOutcome]
    segments: int
    audio_seconds: float
    timings: Timings


@dataclass
class ExtractReport:
    """What one ``extract`` run did."""

    store: str
    files: int = 0
    files_ok: int = 0
    files_warned: int = 0
    files_failed: int = 0
    files_pending: int = 0
    segments: int = 0
    chunks_total: int = 0
    chunks_computed: int = 0
    chunks_skipped: int = 0
    audio_seconds: float = 0.0
    audio_seconds_computed: float = 0.0
    elapsed: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)
    warned: list[tuple[str, str]] = field(default_factory=list)
    #: summed over chunk tasks (seconds of each task's own time): decode, resample, compute, write
    timings: dict[str, float] = field(default_factory=dict)
    #: wall time: prepare (listing, probing, layout, cluster start), tasks (template included,
    #: written while the first tasks compute), finalise
    phases: dict[str, float] = field(default_factory=dict)
    #: with labels asked for (a CSV or --label-from): inputs left without a label, and the
    #: labels CSV's paths that matched no input
    unlabeled: int = 0
    unmatched_labels: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The one line ``extract`` prints when it is done."""
        speed = self.audio_seconds_computed / self.elapsed if self.elapsed > 0 else 0.0
        return (
            f"{self.files} files ({self.files_ok} ok, {self.files_warned} warned, {self.files_failed} failed"
            + (f", {self.files_pending} pending" if self.files_pending else "")
            + f"), {self.segments} segments, {self.audio_seconds / 3600:.2f} h audio; "
            f"{self.chunks_computed} of {self.chunks_total} chunks computed in {self.elapsed:.1f} s "
            f"({speed:.0f}x real time) -> {self.store}"
            + self._labels_note()
        )

    def _labels_note(self) -> str:
        parts = []
        if self.unlabeled:
            parts.append(f"{self.unlabeled} inputs without a label")
        if self.unmatched_labels:
            first = ", ".join(self.unmatched_labels[:3])
            parts.append(f"{len(self.unmatched_labels)} labels CSV rows matched no input (first: {first})")
        return "; labels: " + "; ".join(parts) if parts else ""


@dataclass(frozen=True)
class ChunkResult:
    """What a chunk task returns to the client: its report and, for a chunk it wrote whole
    (not only added families), the per-segment columns it wrote (``segment_valid``,
    ``segment_valid_frames``), so that finalising need not read them back."""

    report: ChunkReport
    start: int
    valid: np.ndarray | None = None
    valid_frames: np.ndarray | None = None


class ChunkResults:
    """A run's chunk results merged as they arrive (O(1) each): per-segment columns, per-chunk
    audio seconds, and each file's first error and warning (in chunk order, as a store's
    reports read in order give them). Sized for the layout's segments and chunks."""

    def __init__(self, n_segments: int, n_chunks: int) -> None:
        self.valid = np.zeros(n_segments, dtype=bool)
        self.valid_frames = np.zeros(n_segments, dtype=np.int32)
        #: chunks whose whole result arrived
        self.received = np.zeros(n_chunks, dtype=bool)
        self.audio_seconds = np.zeros(n_chunks, dtype=np.float64)
        #: file index -> (chunk, message): the lowest chunk's wins
        self.errors: dict[int, tuple[int, str]] = {}
        self.warnings: dict[int, tuple[int, str]] = {}

    def add(self, result: ChunkResult) -> None:
        """Merge one chunk's result (a result of added families only carries no columns: skipped)."""
        if result.valid is None or result.valid_frames is None:
            return
        report = result.report
        c = int(report["chunk"])
        stop = result.start + len(result.valid)
        self.valid[result.start : stop] = result.valid
        self.valid_frames[result.start : stop] = result.valid_frames
        self.received[c] = True
        self.audio_seconds[c] = float(report["audio_seconds"])
        keep_first_messages(report, c, self.errors, self.warnings)


def keep_first_messages(report: ChunkReport, chunk: int, errors: dict[int, tuple[int, str]],
                        warnings: dict[int, tuple[int, str]]) -> None:
    """Merge chunk ``chunk``'s per-file error and warning into ``errors`` and ``warnings``
    (file index -> (chunk, message)): a file's message from its lowest chunk wins, whatever
    order the reports come in."""
    for key, outcome in report["files"].items():
        i = int(key)
        for kept, message in ((errors, outcome["error"] if outcome["status"] == "error" else ""),
                              (warnings, outcome.get("warning", ""))):
            if message and (i not in kept or kept[i][0] > chunk):
                kept[i] = (chunk, message)
