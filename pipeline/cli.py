"""The ``audio-pipeline`` command line: thin commands over the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from ._version import __version__
from .config import ALL_FEATURES, DEFAULT_FEATURES, FeatureConfig
from .console import drop_distributed_del_errors
from .errors import ConfigError, InputError, PipelineError, StorageError, StoreBusy, one_line

__all__ = ["main", "run"]

PROG = "audio-pipeline"
EXIT_USAGE = 2
#: another run holds the store (EX_TEMPFAIL): try again later
EXIT_BUSY = 75


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line on stderr and exit code 2 (argparse prints usage too)."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _add_extract_options(p: argparse.ArgumentParser) -> None:
    d = FeatureConfig()
    p.add_argument("--sr", type=int, default=d.sr, help="target sample rate [%(default)s]")
    p.add_argument("--n-fft", type=int, default=d.n_fft, help="[%(default)s]")
    p.add_argument("--hop-length", type=int, default=d.hop_length, help="[%(default)s]")
    p.add_argument("--n-mels", type=int, default=d.n_mels, help="[%(default)s]")
    p.add_argument("--n-mfcc", type=int, default=d.n_mfcc, help="[%(default)s]")
    p.add_argument("--segment-seconds", type=float, default=d.segment_seconds, help="[%(default)s]")
    p.add_argument("--segment-hop-seconds", type=float, default=None, help="[= segment]")
    p.add_argument("--features", default=",".join(DEFAULT_FEATURES),
                   help=f"comma-separated, out of {','.join(ALL_FEATURES)} [%(default)s]")
    labels = p.add_mutually_exclusive_group()
    labels.add_argument("--labels", metavar="CSV", help="CSV with columns path,label[,split]")
    labels.add_argument("--label-from", choices=["parent"], help="take labels from the parent folder")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler (tcp://...), or 'synchronous'")
    where.add_argument("--workers", type=int, help="size of the local cluster [cores]")
    p.add_argument("--storage-options", metavar="JSON", help="fsspec options (no credentials: use the env)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--strict", action="store_true", help="exit 1 if any file failed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--split-fractions", metavar="TRAIN,VAL,TEST", default="0.8,0.1,0.1",
                   help="hash split by file when the labels CSV has no split column [%(default)s]")
    p.add_argument("--segment-chunk", type=int, metavar="N", help="segments per chunk [about 16 MiB of the largest variable]")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Audio corpora into labeled xarray/Zarr feature stores, on Dask.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("extract", help="featurise audio into a store (resumes an existing one)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, directories, globs or URLs")
    p.add_argument("-o", "--output", required=True, metavar="STORE", help="Zarr store path or URL")
    _add_extract_options(p)
    p = sub.add_parser("info", help="schema, config, counts, completeness of a store")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--storage-options", metavar="JSON")
    p.add_argument("--no-check-files", action="store_true", help="do not stat the inputs for changes")
    p = sub.add_parser("demo", help="build the demo corpus, extract it, print info")
    p.add_argument("directory", nargs="?", default="demo", metavar="DIR", help="[%(default)s]")
    p.add_argument("--clips", type=int, default=20, help="clips per genre [%(default)s]")
    p.add_argument("--seconds", type=float, default=30.0, help="clip length [%(default)s]")
    p.add_argument("--workers", type=int, help="size of the local cluster [cores]")
    p.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler, or 'synchronous'")
    p.add_argument("--mlp-epochs", type=int, default=20, help="[%(default)s]")
    p.add_argument("--cnn-epochs", type=int, default=6, help="[%(default)s]")
    p.add_argument("--no-train", action="store_true", help="stop after extract and info")
    p = sub.add_parser("query", help="the GTZAN-style table: one row per segment, summary features + file, offset, label")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--label", action="append", help="keep this label (repeatable)")
    p.add_argument("--split", choices=["train", "val", "test"])
    p.add_argument("--file", metavar="GLOB", help="keep files whose path or name matches")
    p.add_argument("--vars", metavar="V,...", help="variables, e.g. mfcc,rms or mfcc_mean [all summaries]")
    p.add_argument("-o", "--output", metavar="OUT", help="write .parquet or .csv instead of printing")
    p.add_argument("--limit", type=int, default=20, help="rows to print [%(default)s]")
    p.add_argument("--storage-options", metavar="JSON")
    p = sub.add_parser("similar", help="nearest segments by summary features (cosine on standardised vectors)")
    p.add_argument("store", metavar="STORE")
    p.add_argument("audio", nargs="?", metavar="AUDIO_FILE", help="an outside file, featurised with the store's config")
    p.add_argument("--segment", type=int, metavar="N", help="a segment of the store (its index)")
    p.add_argument("-k", type=int, default=10, help="neighbours [%(default)s]")
    p.add_argument("--vars", metavar="V,...")
    p.add_argument("--storage-options", metavar="JSON")
    p = sub.add_parser("plot", help="the tutorial's figures, from an audio file or a store segment")
    p.add_argument("source", metavar="AUDIO_FILE|STORE", help="an audio file, or a store with --segment")
    p.add_argument("--segment", type=int, metavar="N", help="a segment of the store (its index)")
    p.add_argument("--kind", default="waveform,spectrogram,mel,mfcc,chroma,spectral,zcr",
                   help="comma-separated figure kinds [%(default)s]")
    p.add_argument("-o", "--output", required=True, metavar="FIG.png", help=".png or .svg; several kinds add _KIND")
    p.add_argument("--storage-options", metavar="JSON")
    p = sub.add_parser("report", help="a static HTML page about a store (works offline)")
    p.add_argument("store", metavar="STORE")
    p.add_argument("-o", "--output", required=True, metavar="REPORT.html")
    p.add_argument("--storage-options", metavar="JSON")
    p = sub.add_parser("train", help="train the tutorial's MLP (summary features) or CNN (mel) on a store")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    p.add_argument("--epochs", type=int, default=20, help="[%(default)s]")
    p.add_argument("--batch-size", type=int, default=64, help="[%(default)s]")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate [%(default)s]")
    p.add_argument("--seed", type=int, default=0, help="[%(default)s]")
    p.add_argument("--loader-workers", type=int, default=0, help="DataLoader worker processes [%(default)s]")
    p.add_argument("-o", "--output", metavar="MODEL_DIR", help="write model.pt, metrics.json, confusion.png")
    p.add_argument("--storage-options", metavar="JSON")
    return parser


def _storage_options(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"Expected --storage-options to be a JSON object, got invalid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise InputError(f"Expected --storage-options to be a JSON object, got {type(value).__name__}")
    return value


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or any(v < 0 for v in values) or sum(values) <= 0:
        raise ConfigError(f"Expected --split-fractions as three non-negative numbers like 0.8,0.1,0.1, got {text!r}")
    return (values[0], values[1], values[2])


def _config(args: argparse.Namespace) -> FeatureConfig:
    return FeatureConfig(
        sr=args.sr, n_fft=args.n_fft, hop_length=args.hop_length, n_mels=args.n_mels, n_mfcc=args.n_mfcc,
        segment_seconds=args.segment_seconds, segment_hop_seconds=args.segment_hop_seconds,
        features=args.features,
    )


def cmd_extract(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"Expected --workers >= 1, got {args.workers}")
    if args.segment_chunk is not None and args.segment_chunk < 1:
        raise ConfigError(f"Expected --segment-chunk >= 1, got {args.segment_chunk}")
    options = _storage_options(args.storage_options)
    fractions = _fractions(args.split_fractions)
    from .graph import extract  # without the kernels: extract refuses bad input before they load

    report = extract(
        args.inputs, args.output, config, scheduler=args.scheduler, workers=args.workers,
        labels=args.labels, label_from=args.label_from, storage_options=options,
        overwrite=args.overwrite, progress=not args.no_progress, out=sys.stderr,
        segment_chunk=args.segment_chunk, split_fractions=fractions,
    )
    for uri, reason in report.failed:
        print(f"failed: {uri}: {reason}", file=sys.stderr)
    for uri, reason in report.warned:
        print(f"warning: {uri}: {reason}", file=sys.stderr)
    print(report.summary())
    return 1 if args.strict and report.files_failed else 0


def changed_files(ds: Any, storage_options: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Files whose fingerprint (size + mtime/ETag) differs from the one stored: (path, what)."""
    from .io import fingerprint
    from .store import as_text

    out = []
    for path, stored in zip(as_text(ds["file_path"]), as_text(ds["file_fingerprint"]), strict=True):
        if not stored:
            continue
        now = fingerprint(str(path), storage_options)
        if now != stored:
            out.append((str(path), "missing now" if not now else f"fingerprint {stored} -> {now}"))
    return out


def format_info(url: str, storage_options: dict[str, Any] | None = None, *, check_files: bool = True) -> str:
    """The ``info`` text of a store."""
    from .store import as_text, completeness, open_raw, store_versions, visible_segments

    ds = open_raw(url, storage_options)
    comp = completeness(ds)
    config = {k: ds.attrs.get(k) for k in FeatureConfig().to_dict() if k in ds.attrs}
    lines = [f"store: {url}"]
    lines.append(
        f"complete: {comp.chunks_done}/{comp.chunks_total} chunks ({100 * comp.fraction:.0f}%), "
        f"{comp.segments_visible} of {comp.segments_total} segments visible"
    )
    lines.append("config: " + " ".join(f"{k}={v}" for k, v in config.items()))
    versions = store_versions(ds.attrs)
    lines.append("versions: " + " ".join(f"{k}={v}" for k, v in versions.items()))
    lines.append(f"created: {ds.attrs.get('created')}  updated: {ds.attrs.get('updated')}")
    lines.append("dims: " + " ".join(f"{k}={v}" for k, v in ds.sizes.items()))
    lines.append("variables:")
    for name, var in ds.data_vars.items():
        lines.append(f"  {name:<26} ({', '.join(map(str, var.dims))}) {var.dtype} [{var.attrs.get('units', '')}]")
    status = as_text(ds["file_status"])
    duration = np.asarray(ds["file_duration"].values, dtype=np.float64)
    warning = as_text(ds["file_warning"])
    ok = status == "ok"
    lines.append(
        f"files: {status.size} ({int(ok.sum())} ok, {int((ok & (warning != '')).sum())} warned, "
        f"{int((status == 'error').sum())} failed, {int((status == 'pending').sum())} pending); "
        f"audio {duration[ok].sum() / 3600:.3f} h"
    )
    visible = visible_segments(ds)
    seg_labels = as_text(ds["label"])[visible]
    seg_split = as_text(ds["split"])[visible]
    file_labels = as_text(ds["file_label"])
    lines.append(f"  {'label':<16}{'files':>7}{'segments':>10}{'hours':>9}{'train':>8}{'val':>6}{'test':>6}")
    for label in sorted(set(file_labels[ok]) | set(seg_labels)):
        sel = ok & (file_labels == label)
        segs = seg_labels == label
        splits = [int((segs & (seg_split == s)).sum()) for s in ("train", "val", "test")]
        lines.append(
            f"  {label or '(none)':<16}{int(sel.sum()):>7}{int(segs.sum()):>10}{duration[sel].sum() / 3600:>9.3f}"
            + "".join(f"{n:>{w}}" for n, w in zip(splits, (8, 6, 6), strict=True))
        )
    paths = as_text(ds["file_path"])
    errors = as_text(ds["file_error"])
    failed = np.flatnonzero(status == "error")
    if failed.size:
        lines.append("failed files:")
        lines.extend(f"  {paths[i]}: {errors[i]}" for i in failed)
    warned = np.flatnonzero(warning != "")
    if warned.size:
        lines.append("warnings:")
        lines.extend(f"  {paths[i]}: {warning[i]}" for i in warned)
    if check_files:
        changed = changed_files(ds, storage_options)
        lines.append(f"changed since extraction: {len(changed)} files" + (" (re-extract them with --overwrite)" if changed else ""))
        lines.extend(f"  {path}: {what}" for path, what in changed)
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    print(format_info(args.store, _storage_options(args.storage_options), check_files=not args.no_check_files))
    return 0


def stratified_labels(csv_path: str, *, every: int = 10) -> str:
    """Rewrite a ``path,label`` CSV with a split column: per label, 8 of every 10 files train,
    1 val, 1 test (in file order), so every split holds every label. Returns the new CSV."""
    import csv

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    seen: dict[str, int] = {}
    out_path = os.path.join(os.path.dirname(csv_path), "labels_split.csv")
    with open(out_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        for row in sorted(rows, key=lambda r: (r["label"], r["path"])):
            i = seen.get(row["label"], 0)
            seen[row["label"]] = i + 1
            k = i % every
            writer.writerow([row["path"], row["label"], "test" if k == every - 1 else "val" if k == every - 2 else "train"])
    return out_path


def cmd_demo(args: argparse.Namespace) -> int:
    from .graph import extract
    from .testing import make_demo_corpus

    root = os.path.abspath(args.directory)
    corpus = os.path.join(root, "corpus")
    store = os.path.join(root, "features.zarr")
    t0 = time.perf_counter()
    if args.clips < 3:
        raise ConfigError(f"Expected --clips >= 3 (a train, a val and a test file per label), got {args.clips}")
    csv_path = make_demo_corpus(corpus, n_per_genre=args.clips, seconds=args.seconds)
    labels = stratified_labels(str(csv_path), every=min(10, args.clips))
    print(f"demo corpus: {corpus} ({time.perf_counter() - t0:.1f} s to generate); labels and splits: {labels}")
    report = extract(
        [corpus], store, FeatureConfig(), scheduler=args.scheduler, workers=args.workers,
        labels=labels, overwrite=True, out=sys.stderr,
    )
    print(report.summary())
    print()
    print(format_info(store))
    from .query import query

    table = query(store, vars=["mfcc_mean", "spectral_centroid_mean", "rms_mean"])
    print(f"\nquery (the GTZAN-style table, {len(table)} rows x {table.shape[1]} columns; first 5 rows, 8 columns):")
    print(table.iloc[:5, :8].to_string())
    from .plot import KINDS, plot
    from .report import write_report

    first_jazz = int(table.index[table["label"] == "jazz"][0]) if (table["label"] == "jazz").any() else int(table.index[0])
    os.makedirs(os.path.join(root, "figures"), exist_ok=True)
    figures = plot(store, kinds=list(KINDS), out=os.path.join(root, "figures", "segment.png"), segment=first_jazz)
    report_path = write_report(store, os.path.join(root, "report.html"))
    print(f"\nfigures of segment {first_jazz}: {os.path.dirname(figures[0])}/ ({', '.join(os.path.basename(f) for f in figures)})")
    print(f"report: {report_path}")
    if args.no_train:
        return 0
    try:
        from .training.train import train
    except ImportError as exc:
        print(f"skipping training: {exc}")
        return 0
    results = {}
    for model, epochs in (("mlp", args.mlp_epochs), ("cnn", args.cnn_epochs)):
        print(f"\n== {model} ==")
        metrics = train(store, model=model, epochs=epochs, out_dir=os.path.join(root, f"model-{model}"))
        results[model] = metrics
    print()
    for model, metrics in results.items():
        print(f"{model}: test accuracy {metrics['test_accuracy']:.3f} (chance {1 / len(metrics['classes']):.3f}, "
              f"majority baseline {metrics['majority_baseline']:.3f}) -> {os.path.join(root, 'model-' + model)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    try:
        from .training.train import train
    except ImportError as exc:
        raise InputError(str(exc)) from exc
    if args.epochs < 1:
        raise ConfigError(f"Expected --epochs >= 1, got {args.epochs}")
    train(args.store, model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
          seed=args.seed, out_dir=args.output, num_workers=args.loader_workers,
          storage_options=_storage_options(args.storage_options))
    return 0


def _list(text: str | None) -> list[str] | None:
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


def cmd_query(args: argparse.Namespace) -> int:
    import pandas as pd

    from .query import query, write_table

    table = query(args.store, labels=args.label, split=args.split, file_glob=args.file, vars=_list(args.vars),
                  storage_options=_storage_options(args.storage_options))
    if args.output:
        write_table(table, args.output)
        print(f"wrote {len(table)} rows x {table.shape[1]} columns to {args.output}")
        return 0
    with pd.option_context("display.max_columns", 12, "display.width", 200):
        print(table.head(args.limit).to_string(max_cols=12))
    if len(table) > args.limit:
        print(f"... {len(table)} rows x {table.shape[1]} columns (first {args.limit} shown; -o OUT.csv/.parquet writes all)")
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    from .query import similar

    if (args.audio is None) == (args.segment is None):
        raise InputError("Expected exactly one of AUDIO_FILE or --segment N")
    table = similar(args.store, segment=args.segment, audio=args.audio, k=args.k, vars=_list(args.vars),
                    storage_options=_storage_options(args.storage_options))
    print(table.to_string(index=False))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .plot import plot

    written = plot(args.source, kinds=_list(args.kind) or [], out=args.output, segment=args.segment,
                   storage_options=_storage_options(args.storage_options))
    for path in written:
        print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(write_report(args.store, args.output, storage_options=_storage_options(args.storage_options)))
    return 0


COMMANDS = {"extract": cmd_extract, "plot": cmd_plot, "report": cmd_report, "info": cmd_info, "demo": cmd_demo, "train": cmd_train,
            "query": cmd_query, "similar": cmd_similar}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        drop_distributed_del_errors()
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except StoreBusy as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BUSY
    except StorageError as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    except PipelineError as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if os.environ.get("PIPELINE_DEBUG"):
            raise
        print(f"{PROG}: error: {type(exc).__name__}: {one_line(exc)} (PIPELINE_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def run() -> None:
    """The console script: :func:`main`, then, after a failure or Ctrl-C, a quiet exit.

    The one line :func:`main` printed is the last word: what the interpreter's shutdown would
    still print (a client's ``__del__`` on a closed event loop, an atexit callback, a worker's
    log) goes nowhere.
    """
    code = main()
    if code != 0:
        _silence_stderr()
    raise SystemExit(code)


def _silence_stderr() -> None:
    import logging

    sys.stderr.flush()
    sys.unraisablehook = lambda _: None
    logging.disable(logging.CRITICAL)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
