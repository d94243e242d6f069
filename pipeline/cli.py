"""The ``audio-pipeline`` command line: thin commands over the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ._version import __version__
from .config import DEFAULT_FEATURES, FeatureConfig
from .console import drop_distributed_del_errors
from .errors import (
    ConfigError,
    FamilyError,
    InputError,
    PipelineError,
    StorageError,
    StoreBusy,
    ToolError,
    one_line,
)
from .schema import SPLITS

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
                   help="comma-separated families (audio-pipeline features lists them) [%(default)s]")
    p.add_argument("--stft-dtype", choices=["float32", "float64"],
                   help="the STFT's arithmetic: float64 is librosa's bits, float32 about 1.5x as fast "
                        "(within tolerance) [float32 unless a family needs float64, as chroma does]")
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
    _add_plugin_option(p)


def _add_plugin_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="load feature families from a .py file or a module (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Audio corpora into labeled xarray/Zarr feature stores, on Dask.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("extract", help="featurise audio into a store (resumes an existing one)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, directories, globs or URLs")
    p.add_argument("-o", "--output", required=True, metavar="STORE", help="Zarr store path or URL")
    _add_extract_options(p)
    p = sub.add_parser("features", help="the feature families available: variables, dims, reference")
    _add_plugin_option(p)
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
    p.add_argument("--split", choices=SPLITS)
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
    how = p.add_mutually_exclusive_group()
    how.add_argument("--exact", action="store_true", help="compare with every segment, whatever index there is")
    how.add_argument("--index-only", action="store_true", help="refuse unless the index holds every segment")
    p.add_argument("--index", default="default", metavar="NAME", help="the index to use [%(default)s]")
    _add_plugin_option(p)
    p = sub.add_parser("index", help="build or grow the store's nearest-neighbour index (used by similar)")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--vars", metavar="V,...", help="per-segment vectors to index [every summary variable]")
    p.add_argument("--name", default="default", help="the index's name in the store [%(default)s]")
    p.add_argument("--rebuild", action="store_true", help="build from scratch (new standardisation statistics)")
    p.add_argument("--storage-options", metavar="JSON")
    p = sub.add_parser("embed", help="write a trained model's per-segment embedding into the store (resumable)")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--model", required=True, metavar="MODEL_DIR", help="a directory written by `train -o`")
    p.add_argument("--name", default="embedding", help="the variable's name [%(default)s]")
    p.add_argument("--overwrite", action="store_true", help="replace an embedding of that name made by another model")
    p.add_argument("--storage-options", metavar="JSON")
    p = sub.add_parser("plot", help="the tutorial's figures, from an audio file or a store segment")
    p.add_argument("source", metavar="AUDIO_FILE|STORE", help="an audio file, or a store with --segment")
    p.add_argument("--segment", type=int, metavar="N", help="a segment of the store (its index)")
    p.add_argument("--kind", default="waveform,spectrogram,mel,mfcc,chroma,spectral,zcr",
                   help="comma-separated figure kinds [%(default)s]")
    p.add_argument("-o", "--output", required=True, metavar="FIG.png", help=".png or .svg; several kinds add _KIND")
    p.add_argument("--storage-options", metavar="JSON")
    _add_plugin_option(p)
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
    from .labels import check_split_fractions

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise ConfigError(f"Expected --split-fractions as three non-negative numbers like 0.8,0.1,0.1, got {text!r}") from exc
    return check_split_fractions(values, what="--split-fractions")


def _config(args: argparse.Namespace) -> FeatureConfig:
    return FeatureConfig(
        sr=args.sr, n_fft=args.n_fft, hop_length=args.hop_length, n_mels=args.n_mels, n_mfcc=args.n_mfcc,
        segment_seconds=args.segment_seconds, segment_hop_seconds=args.segment_hop_seconds,
        features=args.features, stft_dtype=args.stft_dtype,
    )


def cmd_extract(args: argparse.Namespace) -> int:
    if _console and args.scheduler is None:
        # the workers' imports start now, on another core, while this process imports its own
        from .cluster import warm_workers

        warm_workers()
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


def cmd_features(args: argparse.Namespace) -> int:
    from .families.listing import format_families

    print(format_families())
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .info import format_info

    print(format_info(args.store, _storage_options(args.storage_options), check_files=not args.no_check_files))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.directory, clips=args.clips, seconds=args.seconds, scheduler=args.scheduler, workers=args.workers,
             mlp_epochs=args.mlp_epochs, cnn_epochs=args.cnn_epochs, train=not args.no_train)
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
    from .similar import similar

    if (args.audio is None) == (args.segment is None):
        raise InputError("Expected exactly one of AUDIO_FILE or --segment N")
    table = similar(args.store, segment=args.segment, audio=args.audio, k=args.k, vars=_list(args.vars),
                    storage_options=_storage_options(args.storage_options), exact=args.exact, index=args.index,
                    index_only=args.index_only)
    print(table.to_string(index=False))
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from .index import build_index

    state = build_index(args.store, vars=_list(args.vars), name=args.name, rebuild=args.rebuild,
                        storage_options=_storage_options(args.storage_options))
    m = state.manifest
    print(f"index {m.name}: {m.rows} segments of {state.visible} visible, {len(m.mean)} dims "
          f"({len(m.variables)} variables), {m.metric}, {m.library} {m.library_version}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from .embed import embed

    try:
        result = embed(args.store, args.model, name=args.name, overwrite=args.overwrite,
                       storage_options=_storage_options(args.storage_options))
    except ImportError as exc:  # the train extra (PyTorch) is missing
        raise InputError(str(exc)) from exc
    print(result.summary())
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


#: running as the ``audio-pipeline`` command (:func:`run`), not called from Python
_console = False

COMMANDS = {"index": cmd_index, "embed": cmd_embed, "features": cmd_features, "extract": cmd_extract, "plot": cmd_plot, "report": cmd_report, "info": cmd_info, "demo": cmd_demo, "train": cmd_train,
            "query": cmd_query, "similar": cmd_similar}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        drop_distributed_del_errors()
        if getattr(args, "plugin", None):
            from .families.plugins import load_plugin

            for spec in args.plugin:
                load_plugin(spec)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except PipelineError as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return _exit_code(exc)
    except Exception as exc:
        if os.environ.get("PIPELINE_DEBUG"):
            raise
        print(f"{PROG}: error: {type(exc).__name__}: {one_line(exc)} (PIPELINE_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def _exit_code(exc: PipelineError) -> int:
    """75 for a busy store (try later), 1 for a failure of storage, of an external tool or of a
    family's kernel, 2 for bad input or config."""
    if isinstance(exc, StoreBusy):
        return EXIT_BUSY
    return 1 if isinstance(exc, StorageError | ToolError | FamilyError) else EXIT_USAGE


def run() -> None:
    """The console script: :func:`main`, then, after a failure or Ctrl-C, a quiet exit.

    The one line :func:`main` printed is the last word: what the interpreter's shutdown would
    still print (a client's ``__del__`` on a closed event loop, an atexit callback, a worker's
    log) goes nowhere.

    Once every exit handler has run (the libraries' own: logging's flush, multiprocessing's,
    Dask's), the process ends at once with its exit code, skipping the interpreter's teardown
    of its modules and objects: about 0.6 s after an extract here, spent on nothing a finished
    command needs (its files are closed, its cluster closed, its output flushed).
    """
    global _console
    _console = True
    status = [1]  # an exception escaping main (PIPELINE_DEBUG=1) exits with 1
    import atexit

    atexit.register(_end_now, status)  # first registered: runs after every other handler
    try:
        code = main()
    except SystemExit as exc:  # argparse: --help, --version (0), a usage error (2)
        status[0] = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        raise
    status[0] = code
    if code != 0:
        _silence_stderr()
    raise SystemExit(code)


def _end_now(status: list[int]) -> None:
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that went away (| head), a closed stream
            stream.flush()
    os._exit(status[0])


def _silence_stderr() -> None:
    import logging

    sys.stderr.flush()
    sys.unraisablehook = lambda _: None
    logging.disable(logging.CRITICAL)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
