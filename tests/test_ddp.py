"""DDP sharding: every rank runs the same number of batches per epoch, whatever the number of
DataLoader workers and the rows per chunk, and no segment reaches two ranks.

The arithmetic is checked over many combinations in pure numpy; then a real 2-rank ``torchrun``
(gloo, CPU, 127.0.0.1) all-reduces once per batch, which hangs or pairs up the wrong calls when
ranks run unequal batch counts. This file is also that per-rank script (``__main__`` below).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import xarray as xr

from pipeline import FeatureConfig, extract
from pipeline.errors import InputError
from pipeline.training.batches import (
    ChunkSource,
    batches_per_rank,
    iter_batches,
    rows_per_rank,
    shard_rows,
)

#: visible rows of the split in each chunk
LAYOUTS: dict[str, list[int]] = {
    "ten uneven chunks": [1, 4, 3, 1, 4, 2, 3, 3, 3, 1],
    "one chunk": [37],
    "fewer rows than ranks": [1, 1],
    "mixed": [9, 1, 8, 2, 7, 3, 6, 4, 9, 1, 2, 5],
    "random": np.random.default_rng(4).integers(1, 10, 23).tolist(),
}
WORLD_SIZES = (1, 2, 3, 4)
NUM_WORKERS = (0, 1, 2, 3)  # as passed to DataLoader: 0 is one in-process "worker"


def plan(sizes: list[int], *, world_size: int, num_workers: int, batch_size: int, drop_last: bool,
         shuffle: bool = True, epoch: int = 0) -> dict[int, list[list[int]]]:
    """{rank: [rows read by each worker]}, rows numbered by their position in the store."""
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    out: dict[int, list[list[int]]] = {}
    for rank in range(world_size):
        out[rank] = []
        for worker in range(max(num_workers, 1)):
            pieces = shard_rows(sizes, seed=3, epoch=epoch, shuffle=shuffle, batch_size=batch_size, rank=rank,
                                world_size=world_size, worker=worker, num_workers=max(num_workers, 1),
                                drop_last=drop_last)
            out[rank].append([int(offsets[run]) + i for run, lo, hi in pieces for i in range(lo, hi)])
    return out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sharding_arithmetic_gives_equal_batch_counts_and_disjoint_ranks(layout: str) -> None:
    sizes = LAYOUTS[layout]
    n = sum(sizes)
    for world_size, num_workers, batch_size, drop_last, (shuffle, epoch) in itertools.product(
        WORLD_SIZES, NUM_WORKERS, (1, 2, 3, 5, 8, 64), (False, True), ((True, 0), (True, 1), (False, 0)),
    ):
        case = f"{world_size=} {num_workers=} {batch_size=} {drop_last=} {shuffle=} {epoch=}"
        expected = batches_per_rank(n, batch_size=batch_size, world_size=world_size, drop_last=drop_last)
        dealt = plan(sizes, world_size=world_size, num_workers=num_workers, batch_size=batch_size,
                     drop_last=drop_last, shuffle=shuffle, epoch=epoch)
        served = [row for workers in dealt.values() for rows in workers for row in rows]
        assert len(served) == len(set(served)), case  # no row dealt twice: ranks and workers disjoint
        for workers in dealt.values():
            # a worker yields ceil(rows / batch_size) batches; the rank yields their sum
            assert sum(-(-len(rows) // batch_size) for rows in workers) == expected, case
            assert sum(len(rows) for rows in workers) == (expected * batch_size if drop_last else rows_per_rank(n, world_size)), case
            partial = [rows for rows in workers if len(rows) % batch_size]
            assert len(partial) <= (0 if drop_last else 1), case  # only the rank's last batch is partial
        if not drop_last:
            assert len(served) == n - n % world_size, case  # fewer than world_size rows left out
        if world_size == 1 and not drop_last:
            assert sorted(served) == list(range(n)), case  # one rank: every row once
    assert plan(sizes, world_size=2, num_workers=2, batch_size=3, drop_last=False) == plan(
        sizes, world_size=2, num_workers=2, batch_size=3, drop_last=False)


def test_sharding_rejects_bad_arguments() -> None:
    base = {"seed": 0, "epoch": 0, "shuffle": True, "batch_size": 2}
    for bad in ({"rank": 2, "world_size": 2}, {"worker": 1, "num_workers": 1}, {"batch_size": 0}, {"world_size": 0}):
        with pytest.raises(InputError):
            shard_rows([3, 4], **(base | bad))
    with pytest.raises(InputError):
        shard_rows([3, -1], **base)
    with pytest.raises(InputError):
        batches_per_rank(10, batch_size=2, world_size=0)


def memory_store(sizes: list[int], chunk: int = 10) -> xr.Dataset:
    """An in-memory store-like dataset: ``sizes[c]`` train rows in chunk ``c``, interleaved with
    val rows and invisible (unlabelled) ones; ``x`` holds each row's segment index."""
    segment = np.arange(len(sizes) * chunk)
    split = np.full(segment.size, "val", dtype=object)
    label = np.where(segment % 3 == 0, "a", "b").astype(object)
    for c, k in enumerate(sizes):
        rows = c * chunk + np.arange(chunk)[(c % 2) :: 2] if k <= chunk // 2 else c * chunk + np.arange(k)
        split[rows[:k]] = "train"
    label[(split == "val") & (segment % 4 == 1)] = ""
    return xr.Dataset({"x": ("segment", segment.astype(np.float64))},
                      coords={"segment": segment, "label": ("segment", label), "split": ("segment", split)},
                      attrs={"segment_chunk": chunk})


@pytest.mark.parametrize("layout", ["ten uneven chunks", "mixed", "fewer rows than ranks"])
def test_iter_batches_gives_every_rank_the_same_batches_for_any_workers(layout: str) -> None:
    source = ChunkSource.build(memory_store(LAYOUTS[layout]), split="train")
    assert [stop - start for _, start, stop in source.runs] == LAYOUTS[layout]
    n = source.n_segments
    for world_size, num_workers, batch_size, drop_last in itertools.product(WORLD_SIZES, NUM_WORKERS, (1, 3, 8), (False, True)):
        case = f"{world_size=} {num_workers=} {batch_size=} {drop_last=}"
        sizes, served = [], []
        for rank in range(world_size):
            batches = [b["segment"] for worker in range(max(num_workers, 1))
                       for b in iter_batches(source, ["x"], batch_size, True, 5, "train", epoch=2, rank=rank,
                                             world_size=world_size, worker=worker, num_workers=max(num_workers, 1),
                                             buffer_chunks=2, drop_last=drop_last)]
            sizes.append([len(b) for b in batches])
            served.append({int(s) for b in batches for s in b})
        expected = batches_per_rank(n, batch_size=batch_size, world_size=world_size, drop_last=drop_last)
        assert [len(s) for s in sizes] == [expected] * world_size, case
        # every batch is full but one per rank, the same size on every rank (none with drop_last)
        rows = rows_per_rank(n, world_size)
        last = [] if drop_last or not rows % batch_size else [rows % batch_size]
        assert sizes == [[batch_size] * (expected - len(last)) + last] * world_size, case
        assert sum(map(len, served)) == len(set().union(*served)), case  # ranks disjoint
        if world_size == 1 and not drop_last:
            assert served[0] == set(source.ds["segment"].values.tolist()), case


def test_iter_batches_is_deterministic_per_epoch_with_ranks_and_workers() -> None:
    source = ChunkSource.build(memory_store(LAYOUTS["mixed"]), split="train")

    def order(epoch: int) -> list[list[int]]:
        return [[int(s) for w in range(2) for b in iter_batches(source, ["x"], 4, True, 9, "train", epoch=epoch, rank=r,
                                                                world_size=2, worker=w, num_workers=2) for s in b["segment"]]
                for r in range(2)]

    assert order(0) == order(0)
    assert order(0) != order(1)  # set_epoch reshuffles: other rows and another order per rank


# -- a real torchrun: 2 CPU ranks, gloo, 127.0.0.1 ----------------------------------------------
DDP_BATCH = 5
DDP_EPOCHS = 2
DDP_WORKERS = (2, 0)


@pytest.fixture(scope="module")
def ddp_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """About 11 chunks of 4 segments; the train split has 1 to 4 rows in 10 of them (25 rows)."""
    root = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(5)
    seconds = [3, 9, 6, 12, 3, 6, 9, 3, 12, 6, 3, 9, 6, 3, 12, 3, 6, 9]
    splits = ["train", "val", "train", "train", "test", "train", "val", "train", "train", "test", "train", "train",
              "val", "train", "train", "val", "train", "test"]
    labels: dict[str, tuple[str, str]] = {}
    for i, (length, split) in enumerate(zip(seconds, splits, strict=True)):
        label = ("tone", "noise")[i % 2]
        t = np.arange(length * 22050) / 22050
        y = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) if label == "tone" else rng.normal(0, 0.1, t.size)
        path = root / "audio" / f"f{i:02d}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, y.astype(np.float32), 22050)
        labels[str(path)] = (label, split)
    store = str(root / "store.zarr")
    extract([str(root / "audio")], store, FeatureConfig(n_mels=16, n_mfcc=8, features=("mel", "rms")), scheduler="synchronous",
            labels=labels, progress=False, segment_chunk=4)
    return store


@pytest.mark.slow
def test_torchrun_two_ranks_run_equal_batches(ddp_store: str, tmp_path: Path) -> None:
    from conftest import free_port

    source = ChunkSource.build(ddp_store, split="train")
    sizes = [stop - start for _, start, stop in source.runs]
    assert len(sizes) >= 10 and len(set(sizes)) > 2 and source.n_segments % 2  # uneven, and one row left over
    torchrun = Path(sys.executable).parent / "torchrun"
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "PYTHONWARNINGS": "ignore"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*launcher, "--nproc_per_node=2", "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
         __file__, ddp_store, str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, f"torchrun failed after {seconds:.0f} s:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    runs = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    expected = batches_per_rank(source.n_segments, batch_size=DDP_BATCH, world_size=2)
    for num_workers in DDP_WORKERS:
        orders = []
        for epoch in range(DDP_EPOCHS):
            ranks = [r["runs"][f"{num_workers}/{epoch}"] for r in runs]
            assert [r["batches"] for r in ranks] == [expected, expected], (num_workers, epoch, ranks)
            assert [r["len"] for r in ranks] == [expected, expected]
            assert [r["mismatched"] for r in ranks] == [0, 0]  # every all_reduce paired with the same batch
            ids = [set(r["segments"]) for r in ranks]
            assert len(ids[0]) == len(ids[1]) == rows_per_rank(source.n_segments, 2)
            assert not ids[0] & ids[1]  # ranks disjoint
            assert ids[0] | ids[1] <= set(source.ds["segment"].values.tolist())
            # the same rows as iter_batches computes in this process, for each rank
            for rank in (0, 1):
                local = {int(s) for w in range(max(num_workers, 1))
                         for b in iter_batches(source, ["rms_mean"], DDP_BATCH, True, 7, "train", epoch=epoch, rank=rank,
                                               world_size=2, worker=w, num_workers=max(num_workers, 1))
                         for s in b["segment"]}
                assert ids[rank] == local
            orders.append(ranks[0]["segments"])
        assert orders[0] != orders[1]  # set_epoch reshuffled, through persistent workers too


def _rank_main(store: str, out_dir: str) -> None:
    """One torchrun rank: iterate the loader, all-reducing once per batch, and record what it saw."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    from pipeline.training.torch_data import SegmentDataset

    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    rank, world_size = dist.get_rank(), dist.get_world_size()
    record: dict[str, object] = {"rank": rank, "world_size": world_size, "runs": {}}
    runs: dict[str, object] = {}
    for num_workers in DDP_WORKERS:
        dataset = SegmentDataset(store, ["mel"], split="train", batch_size=DDP_BATCH, seed=7, return_segments=True)
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers,
                                             persistent_workers=num_workers > 0)
        for epoch in range(DDP_EPOCHS):
            dataset.set_epoch(epoch)
            batches, mismatched, segments = 0, 0, []
            for x, _, segment in loader:
                step = torch.tensor([num_workers, epoch, batches, x.shape[0]], dtype=torch.int64)
                total = step.clone()
                dist.all_reduce(total)  # a rank without this batch hangs here, or answers another call
                mismatched += int(not torch.equal(total, step * world_size))
                segments.extend(int(s) for s in segment)
                batches += 1
            runs[f"{num_workers}/{epoch}"] = {"batches": batches, "len": len(loader), "mismatched": mismatched,
                                              "segments": segments}
    record["runs"] = runs
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(record))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    _rank_main(*sys.argv[1:3])
