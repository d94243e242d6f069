"""Cold runs against peer libraries (issue 15): Hugging Face ``datasets`` and Lhotse.

    python benchmarks/peers.py [--corpus DIR] [--minutes 120] [--repeat 3]

The same corpus as benchmarks/cold.py (generated once into ``--corpus``); each command a fresh
process, timed from outside, imports included; ``--repeat`` runs interleaved, the median counts.

- Hugging Face ``datasets``: a Dataset of the file paths, ``.map(fn, batched=True, num_proc=2)``
  where ``fn`` loads each file with ``librosa.load(sr=22050)``, cuts 3-s segments and computes the
  tutorial's full set with librosa (benchmarks/cold.py's naive calls), one row per segment with
  declared array features, then ``save_to_disk``; against ``audio-pipeline extract`` with the
  default options (the same full set; target >= 3x).
- Lhotse: a RecordingSet of the files, ``CutSet.from_manifests``, ``compute_and_store_features``
  with ``LibrosaFbank`` (80 mel bands, sr 22,050, n_fft 2048, hop 512, 0 to 11,025 Hz, as ours),
  ``num_jobs=2``, Lhotse's default storage, the cuts written to a manifest; against
  ``audio-pipeline extract --features mel --n-mels 80`` (target >= 2x). Where they still differ:
  Lhotse computes whole 30-s cuts (1,292 frames; ours 10 segments of 3 s, 130 frames each, each
  centred with its own padding), pads by reflection (librosa's default, ours, pads with zeros),
  and stores log10 of the magnitude mel (ours: dB of the power mel, with mean and std per band).

Both peers are benchmark-only dependencies (the ``bench`` extra); one that is not installed is
skipped with a line that says so. Only meaningful on a quiet machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

from cold import NAIVE_CALLS, PARAMETERS, Runs, cli, corpus, machine, phases, run_all, said, verdict

#: what a Hugging Face user writes: fn maps a batch of paths to rows of segments' features.
#: The librosa calls are cold.py's naive loop, their results kept.
HF = """\
import sys, warnings
from pathlib import Path

import librosa
from datasets import Array2D, Dataset, Features, Value

warnings.simplefilter("ignore")  # chroma_stft warns about its tuning estimate on some segments
%(parameters)sFRAMES = 1 + SEGMENT // HOP
NAMES = %(names)r


def features(batch):
    rows = {"path": [], "offset": [], **{name: [] for name in NAMES}}
    for path in batch["path"]:
        audio, _ = librosa.load(path, sr=SR)
        for start in range(0, len(audio) - SEGMENT + 1, SEGMENT):
            y = audio[start : start + SEGMENT]
            out = [
%(calls)s            ]
            rows["path"].append(path)
            rows["offset"].append(start / SR)
            for name, value in zip(NAMES, out):
                rows[name].append(value)
    return rows


schema = Features({
    "path": Value("string"), "offset": Value("float32"),
    "mel": Array2D((N_MELS, FRAMES), "float32"), "mfcc": Array2D((N_MFCC, FRAMES), "float32"),
    "chroma": Array2D((12, FRAMES), "float32"),
    **{name: Array2D((1, FRAMES), "float32") for name in NAMES[3:]},
})
paths = [str(p) for p in sorted(Path(sys.argv[1]).rglob("*.wav"))]
ds = Dataset.from_dict({"path": paths})
out = ds.map(features, batched=True, batch_size=8, num_proc=2, remove_columns=["path"], features=schema)
out.save_to_disk(sys.argv[2])
print(f"datasets: {len(out)} segments of {len(paths)} files -> {sys.argv[2]}")
"""

#: what a Lhotse user writes for log-mel features with librosa's numbers
LHOTSE = """\
import sys
from pathlib import Path

from lhotse import CutSet, LibrosaFbank, LibrosaFbankConfig, Recording, RecordingSet

paths = sorted(Path(sys.argv[1]).rglob("*.wav"))
recordings = RecordingSet.from_recordings(Recording.from_file(p) for p in paths)
cuts = CutSet.from_manifests(recordings=recordings)
extractor = LibrosaFbank(LibrosaFbankConfig(sampling_rate=22050, fft_size=2048, hop_size=512, num_mel_bins=80,
                                            fmin=0, fmax=11025))
out = Path(sys.argv[2])
cuts = cuts.compute_and_store_features(extractor=extractor, storage_path=out / "feats", num_jobs=2)
cuts.to_file(out / "cuts.jsonl.gz")
print(f"lhotse: {len(cuts)} cuts, {sum(cut.has_features for cut in cuts)} with features -> {out}")
"""


def _hf_script() -> str:
    calls = "".join(f"                {call},\n" for _, call in NAIVE_CALLS)
    return HF % {"parameters": PARAMETERS, "names": tuple(name for name, _ in NAIVE_CALLS), "calls": calls}


def missing(module: str) -> str | None:
    """Why a peer cannot run here, or None."""
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install 'audio-feature-pipeline[bench]')"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None,
                        help="where the corpus is generated once and reused [a temporary directory]")
    parser.add_argument("--minutes", type=float, default=120.0, help="audio in 30-s clips [120]")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command; the median counts [3]")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    print(machine(), flush=True)
    skipped = {name: why for name, why in (("datasets", missing("datasets")), ("lhotse", missing("lhotse"))) if why}
    for name, why in skipped.items():
        print(f"skipped: {name}: {why}")
    with tempfile.TemporaryDirectory(prefix="peers-corpus-") as default_root, \
            tempfile.TemporaryDirectory(prefix="peers-bench-") as tmp:
        root = args.corpus or Path(default_root)
        root.mkdir(parents=True, exist_ok=True)
        data = corpus(root, args.minutes, short_seconds=10.0)
        work = Path(tmp)
        pairs = []
        if "datasets" not in skipped:
            peer = Runs("datasets.map(num_proc=2), full set", [sys.executable, "-c", _hf_script(), str(data.clips),
                                                                str(work / "hf")])
            ours = Runs("extract, full set (default)", cli("extract", str(data.clips), "-o", str(work / "full.zarr"),
                                                           "--overwrite"))
            pairs.append((peer, ours, 3.0))
        if "lhotse" not in skipped:
            peer = Runs("lhotse LibrosaFbank(80), num_jobs=2", [sys.executable, "-c", LHOTSE, str(data.clips),
                                                                 str(work / "lhotse")])
            ours = Runs("extract --features mel --n-mels 80", cli("extract", str(data.clips), "-o",
                                                                  str(work / "mel.zarr"), "--features", "mel",
                                                                  "--n-mels", "80", "--overwrite"))
            pairs.append((peer, ours, 2.0))
        if not pairs:
            print("peers: nothing to run")
            return 0
        run_all([runs for pair in pairs for runs in pair[:2]], args.repeat, work)
        print(f"\ncold runs (seconds, median of {args.repeat}; all runs in brackets; {data.minutes:g} min of audio):")
        for peer, ours, _ in pairs:
            for runs in (peer, ours):
                print(f"  {runs.listing()}")
        for runs in (runs for pair in pairs for runs in pair[:2]):  # what the last runs wrote, in their words
            print(f"  {runs.name} wrote: {said(runs, work)}")
        print()
        met = 0
        for peer, ours, target in pairs:
            v = verdict(f"{ours.name} vs {peer.name}", ours, peer.median / ours.median, target, higher=True,
                        unit="x", detail=f"{peer.median:.2f} s vs {ours.median:.2f} s", needs="")
            met += v.met
            print(v.line)
        for _, ours, _ in pairs:
            print(phases(ours))
        print(f"\npeer targets: {met} of {len(pairs)} met" + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
