"""Loader throughput: the torch loader (2 workers) against a raw Zarr read of the same data.

    python benchmarks/loader.py [--store STORE] [--epochs 5]

Without --store it builds the demo corpus (1.17 h, 1,400 mel segments) in a temporary
directory and extracts it. Prints ratios first, then absolute figures; both are measured in
this run on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import zarr


def build_store(root: str) -> str:
    from pipeline import extract
    from pipeline.labels import stratified_labels
    from pipeline.synth import make_demo_corpus

    labels = stratified_labels(str(make_demo_corpus(os.path.join(root, "corpus"))))
    store = os.path.join(root, "features.zarr")
    extract([os.path.join(root, "corpus")], store, labels=labels, progress=False)
    return store


def raw_read(store: str, variable: str) -> tuple[int, float]:
    """Every chunk of one variable through zarr alone (decompression included)."""
    array = zarr.open_group(store, mode="r", use_consolidated=False)[variable]
    assert isinstance(array, zarr.Array)
    chunk = array.chunks[0]
    t0 = time.perf_counter()
    n = 0
    for start in range(0, array.shape[0], chunk):
        block = array[start : start + chunk]
        n += block.shape[0]
    return n, time.perf_counter() - t0


def loader_read(store: str, variable: str, epochs: int, workers: int, standardize: bool) -> tuple[int, float]:
    """Steady-state epochs (the first, which starts the workers, is not counted)."""
    import torch

    from pipeline.training import standardizer
    from pipeline.training.torch_data import SegmentDataset

    stats = standardizer(store, [variable], split="train") if standardize else None
    dataset = SegmentDataset(store, [variable], split=None, batch_size=64, shuffle=True, standardize=stats)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers, persistent_workers=workers > 0)
    n, seconds = 0, 0.0
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        t0 = time.perf_counter()
        count = sum(int(x.shape[0]) for x, _ in loader)
        if epoch:
            n, seconds = n + count, seconds + time.perf_counter() - t0
    return n, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store")
    parser.add_argument("--variable", default="mel")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or build_store(tmp)
        raw = [raw_read(store, args.variable) for _ in range(3)]
        n_raw, t_raw = min(raw, key=lambda r: r[1])
        n_l, t_l = loader_read(store, args.variable, args.epochs, args.workers, standardize=False)
        n_s, t_s = loader_read(store, args.variable, args.epochs, args.workers, standardize=True)
    raw_rate, loader_rate, std_rate = n_raw / t_raw, n_l / t_l, n_s / t_s
    shape = zarr.open_group(store, mode="r", use_consolidated=False)[args.variable].shape[1:] if args.store else "(130, 128)"
    print(f"loader/raw = {loader_rate / raw_rate:.2f} (target >= 0.80); "
          f"standardised loader/raw = {std_rate / raw_rate:.2f}")
    print(f"torch loader, {args.workers} workers: {loader_rate:,.0f} {args.variable} segments/s "
          f"(target >= 2,000; segment {shape}); standardised: {std_rate:,.0f}/s")
    print(f"raw zarr read, 1 process: {raw_rate:,.0f} segments/s ({n_raw} segments in {t_raw:.3f} s)")
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; numpy {np.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
