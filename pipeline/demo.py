"""``audio-pipeline demo``: generate the demo corpus, extract it, then query, plot, report and train on it."""

from __future__ import annotations

import os
import sys
import time

from .config import FeatureConfig
from .errors import ConfigError
from .info import format_info
from .labels import stratified_labels

__all__ = ["run_demo"]


def run_demo(directory: str, *, clips: int = 20, seconds: float = 30.0, scheduler: str | None = None,
             workers: int | None = None, mlp_epochs: int = 20, cnn_epochs: int = 6, train: bool = True) -> None:
    """Build ``directory/corpus`` (``clips`` synthetic clips per genre), extract it into
    ``directory/features.zarr`` and show every command on it; prints as it goes.

    Parameters
    ----------
    directory : str
        Where the corpus, the store, the figures, the report and the models go.
    clips : int >= 3
        Clips per genre (a train, a val and a test file per label at least).
    seconds : float > 0
        Length of each clip.
    scheduler, workers
        As for :func:`pipeline.extract`.
    mlp_epochs, cnn_epochs : int
        Training epochs of the two models.
    train : bool
        Train the models (needs the ``train`` extra: PyTorch); without it, stops after the report.

    Raises
    ------
    ConfigError
        ``clips`` below 3.
    """
    from .graph import extract
    from .synth import make_demo_corpus

    if clips < 3:
        raise ConfigError(f"Expected --clips >= 3 (a train, a val and a test file per label), got {clips}")
    root = os.path.abspath(directory)
    corpus = os.path.join(root, "corpus")
    store = os.path.join(root, "features.zarr")
    t0 = time.perf_counter()
    csv_path = make_demo_corpus(corpus, n_per_genre=clips, seconds=seconds)
    labels = stratified_labels(str(csv_path), every=min(10, clips))
    print(f"demo corpus: {corpus} ({time.perf_counter() - t0:.1f} s to generate); labels and splits: {labels}")
    report = extract([corpus], store, FeatureConfig(), scheduler=scheduler, workers=workers, labels=labels,
                     overwrite=True, out=sys.stderr)
    print(report.summary())
    print()
    print(format_info(store))
    _show(store, root)
    if not train:
        return
    try:
        from .training.train import train as train_model
    except ImportError as exc:
        print(f"skipping training: {exc}")
        return
    results = {}
    for model, epochs in (("mlp", mlp_epochs), ("cnn", cnn_epochs)):
        print(f"\n== {model} ==")
        results[model] = train_model(store, model=model, epochs=epochs, out_dir=os.path.join(root, f"model-{model}"))
    print()
    for model, metrics in results.items():
        print(f"{model}: test accuracy {metrics['test_accuracy']:.3f} (chance {1 / len(metrics['classes']):.3f}, "
              f"majority baseline {metrics['majority_baseline']:.3f}) -> {os.path.join(root, 'model-' + model)}")


def _show(store: str, root: str) -> None:
    """The query table's first rows, every figure of one segment, and the report."""
    from .plot import KINDS, plot
    from .query import query
    from .report import write_report

    table = query(store, vars=["mfcc_mean", "spectral_centroid_mean", "rms_mean"])
    print(f"\nquery (the GTZAN-style table, {len(table)} rows x {table.shape[1]} columns; first 5 rows, 8 columns):")
    print(table.iloc[:5, :8].to_string())
    jazz = table["label"] == "jazz"
    first_jazz = int(table.index[jazz][0]) if jazz.any() else int(table.index[0])
    os.makedirs(os.path.join(root, "figures"), exist_ok=True)
    figures = plot(store, kinds=list(KINDS), out=os.path.join(root, "figures", "segment.png"), segment=first_jazz)
    report_path = write_report(store, os.path.join(root, "report.html"))
    print(f"\nfigures of segment {first_jazz}: {os.path.dirname(figures[0])}/ ({', '.join(os.path.basename(f) for f in figures)})")
    print(f"report: {report_path}")
