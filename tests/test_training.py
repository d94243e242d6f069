"""Loaders and training: leakage-free splits, sharding without duplicates or gaps, determinism,
only complete chunks, train-only statistics, and a short training run of both models."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline import FeatureConfig, extract, open_store
from pipeline.errors import InputError
from pipeline.store import as_text, open_group
from pipeline.training import ChunkSource, iter_batches, standardizer
from pipeline.training.batches import batches_per_rank

try:
    import torch
except ImportError:  # pragma: no cover - fail loudly, never skip
    pytest.fail("torch is not installed: `make test` installs it (pinned CPU build torch==2.13.0)", pytrace=False)


def write_genres(root: Path, n_files: int = 12, seconds: float = 6.0) -> Path:
    """Two clearly different 'genres' plus labels.csv with a split column for half the files."""
    rng = np.random.default_rng(3)
    rows = ["path,label,split"]
    for i in range(n_files):
        for label in ("tone", "noise"):
            t = np.arange(int(seconds * 22050)) / 22050
            y = 0.3 * np.sin(2 * np.pi * (300 + 40 * i) * t) if label == "tone" else rng.normal(0, 0.1, t.size)
            path = root / label / f"{label}{i:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, y.astype(np.float32), 22050)
            rows.append(f"{label}/{path.name},{label},{['train', 'train', 'train', 'val', 'test'][i % 5]}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"


@pytest.fixture(scope="module")
def genre_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("genres")
    labels = write_genres(root)
    store = str(root / "store.zarr")
    extract([root], store, FeatureConfig(n_mels=32, n_mfcc=13), scheduler="synchronous", labels=str(labels),
            progress=False, segment_chunk=5)
    return store


def test_splits_are_by_file(genre_store: str) -> None:
    ds = open_store(genre_store)
    per_file: dict[int, set[str]] = {}
    for f, s in zip(ds["segment_file"].values, as_text(ds["split"]), strict=True):
        per_file.setdefault(int(f), set()).add(str(s))
    assert all(len(s) == 1 for s in per_file.values())
    assert {s for v in per_file.values() for s in v} == {"train", "val", "test"}


@pytest.mark.parametrize(("world_size", "num_workers"), [(1, 1), (2, 1), (1, 3), (2, 2), (3, 2)])
def test_ranks_and_workers_see_every_segment_exactly_once(genre_store: str, world_size: int, num_workers: int) -> None:
    """Every segment once with one rank; with more, ranks are disjoint and run equal batch counts,
    and the ``n % world_size`` segments left over are not served."""
    source = ChunkSource.build(genre_store, split="train")
    seen: list[int] = []
    counts = []
    for rank in range(world_size):
        counts.append(0)
        for worker in range(num_workers):
            for batch in iter_batches(source, ["rms_mean"], 7, True, 11, "train", epoch=1, rank=rank,
                                      world_size=world_size, worker=worker, num_workers=num_workers):
                seen.extend(batch["segment"].tolist())
                counts[rank] += 1
    assert len(seen) == len(set(seen)) == source.n_segments - source.n_segments % world_size
    assert set(seen) <= set(source.ds["segment"].values.tolist())
    assert counts == [batches_per_rank(source.n_segments, batch_size=7, world_size=world_size)] * world_size


def test_batches_are_deterministic_and_epoch_aware(genre_store: str) -> None:
    def order(seed: int, epoch: int) -> list[int]:
        return [s for b in iter_batches(genre_store, ["mfcc_mean"], 8, True, seed, "train", epoch=epoch) for s in b["segment"].tolist()]

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1)
    assert sorted(order(1, 0)) == sorted(order(1, 1))
    plain = [s for b in iter_batches(genre_store, ["mfcc_mean"], 8, False, 0, "train") for s in b["segment"].tolist()]
    assert plain == sorted(plain)


def test_batch_values_match_the_store(genre_store: str) -> None:
    ds = open_store(genre_store)
    position = {int(s): i for i, s in enumerate(ds["segment"].values)}
    classes = sorted(set(as_text(ds["label"])))
    for batch in iter_batches(genre_store, ["mel", "rms_mean"], 6, True, 3, "val"):
        for row, seg in enumerate(batch["segment"]):
            i = position[int(seg)]
            np.testing.assert_array_equal(batch["mel"][row], ds["mel"].values[i])
            assert classes[batch["label"][row]] == ds["label"].values[i]
            assert ds["split"].values[i] == "val"


def test_loaders_only_see_complete_chunks(genre_store: str, tmp_path: Path) -> None:
    import shutil

    copy = str(tmp_path / "partial.zarr")
    shutil.copytree(genre_store, copy)
    group = open_group(copy)
    group["chunk_done"][0] = 0
    chunk = int(group.attrs["segment_chunk"])
    served = {s for b in iter_batches(copy, ["rms_mean"], 4, False, 0, None) for s in b["segment"].tolist()}
    assert served and not any(s < chunk for s in served)


def test_standardisation_uses_the_train_split_only(genre_store: str) -> None:
    ds = open_store(genre_store)
    train = ds.isel(segment=np.flatnonzero(as_text(ds["split"]) == "train"))
    stats = standardizer(genre_store, ["mfcc_mean", "mel"], split="train")
    np.testing.assert_allclose(stats.mean["mfcc_mean"], train["mfcc_mean"].values.astype(np.float64).mean(axis=0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(stats.mean["mel"], train["mel"].values.astype(np.float64).mean(axis=(0, 1)), rtol=1e-5, atol=1e-4)
    everything = standardizer(genre_store, ["mfcc_mean"], split=None)
    assert not np.allclose(everything.mean["mfcc_mean"], stats.mean["mfcc_mean"])


def test_torch_dataset_shards_across_dataloader_workers(genre_store: str) -> None:
    from pipeline.training.torch_data import SegmentDataset

    ds = SegmentDataset(genre_store, ["rms_mean", "mfcc_mean"], split="train", batch_size=5, seed=2)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    labels = Counter()
    n = 0
    for x, y in loader:
        assert x.dtype == torch.float32 and x.shape[1] == 1 + 13
        labels.update(y.tolist())
        n += len(y)
    assert n == ChunkSource.build(genre_store, split="train").n_segments
    assert set(labels) == {0, 1}
    assert len(loader) == len(ds) == -(-n // 5)
    ranks = [SegmentDataset(genre_store, ["rms_mean"], split="train", batch_size=3, rank=r, world_size=3) for r in range(3)]
    batches = [[len(y) for _, y in r] for r in ranks]
    assert [len(b) for b in batches] == [len(r) for r in ranks] == [-(-(n // 3) // 3)] * 3  # equal batch counts
    assert [sum(b) for b in batches] == [n // 3] * 3  # equal rows; n % 3 left out


def test_set_epoch_reaches_persistent_workers(genre_store: str) -> None:
    from pipeline.training.torch_data import SegmentDataset

    def orders(persistent: bool) -> list[list[int]]:
        ds = SegmentDataset(genre_store, ["rms_mean"], split="train", batch_size=5, seed=2, return_segments=True)
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=persistent)
        out = []
        for epoch in (0, 1, 0):
            ds.set_epoch(epoch)
            out.append([s for *_, segments in loader for s in segments.tolist()])
        return out

    persistent = orders(True)
    assert persistent == orders(False)
    assert persistent[0] != persistent[1] and persistent[0] == persistent[2]


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_short_training_run_writes_model_and_metrics(genre_store: str, tmp_path: Path, model: str) -> None:
    from pipeline.training.train import train

    out = tmp_path / model
    metrics = train(genre_store, model=model, epochs=3 if model == "mlp" else 2, out_dir=str(out), log=lambda _: None)
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "val_accuracy", "majority_baseline", "classes", "confusion"):
        assert key in saved
    assert saved["classes"] == ["noise", "tone"]
    assert np.asarray(saved["confusion"]).sum() == metrics["segments"]["test"]
    assert (out / "model.pt").stat().st_size > 0 and (out / "confusion.png").stat().st_size > 1000
    if model == "mlp":
        assert metrics["test_accuracy"] > 0.9  # tones vs noise is easy


def test_cli_train(genre_store: str, tmp_path: Path) -> None:
    from pipeline.cli import main

    assert main(["train", genre_store, "--model", "mlp", "--epochs", "2", "-o", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "metrics.json").exists()
    assert main(["train", genre_store, "--epochs", "0"]) == 2


def test_constant_variables_standardise_to_std_one(genre_store: str) -> None:
    ds = open_store(genre_store)
    flat = ds.assign(rms_mean=ds["rms_mean"] * 0 + np.float32(0.25))
    stats = standardizer(flat, ["rms_mean", "mfcc_mean"], split="train")
    assert stats.std["rms_mean"].dtype == np.float32 and float(stats.std["rms_mean"]) == 1.0
    assert float(stats.mean["rms_mean"]) == np.float32(0.25)
    assert np.all(stats.std["mfcc_mean"] != 1.0)
    with pytest.raises(InputError, match="Expected split to be one of train, val, test, got 'dev'"):
        standardizer(ds, ["rms_mean"], split="dev")


def test_confusion_figure_leaves_the_backend_alone(tmp_path: Path) -> None:
    """The confusion matrix is drawn on its own Agg canvas: the caller's backend stays."""
    import matplotlib

    from pipeline.training.train import plot_confusion

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], str(tmp_path / "c.png"), title="t")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
