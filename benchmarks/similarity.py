"""Approximate nearest neighbours for the similarity index: usearch HNSW against faiss HNSW.

    python benchmarks/similarity.py            # 1,000,000 x 128 float32 (see docs/similarity.md)
    python benchmarks/similarity.py --quick    # 100,000 x 128, about a minute
    python benchmarks/similarity.py --n 500000
    python benchmarks/similarity.py --demo DIR # label precision@10 on the demo store: summaries vs CNN embedding

Synthetic data with a fixed seed: 1,000 Gaussian clusters in 128 dimensions, z-scored per column
with the statistics of the indexed rows, compared by cosine distance (what `audio-pipeline similar`
does on standardised segment summaries). N rows are indexed, N/10 more are appended afterwards and
1,000 held-out rows of the same distribution are the queries. The reference is exact search
(faiss IndexFlatIP on L2-normalised rows). Build and batch search use 2 threads; latency is one
query at a time on one thread. Prints ratios first where there is a reference; asserts on nothing.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
from usearch.index import Index

DIM = 128
CLUSTERS = 1_000
QUERIES = 1_000
K = 10
THREADS = 2
EFS = (16, 32, 64, 128, 256)
TARGET_RECALL = 0.95
MiB = 1024 * 1024


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base n rows, appended n // 10 rows, QUERIES held-out rows), float32, z-scored per column."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIM), dtype=np.float32)
    total = n + n // 10 + QUERIES
    labels = rng.integers(0, CLUSTERS, size=total)
    x = rng.standard_normal((total, DIM), dtype=np.float32)
    x *= 0.5
    x += centres[labels]
    base = x[:n]
    mean = base.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = base.std(axis=0, dtype=np.float64).astype(np.float32)
    x -= mean
    x /= std
    return x[:n], x[n : n + n // 10], x[n + n // 10 :]


def normalised(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out.astype(np.float32, copy=False)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def median_ms(search_one: Callable[[np.ndarray], Any], queries: np.ndarray) -> float:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        search_one(q)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


@dataclass
class Result:
    name: str
    param: str
    build_s: float
    peak_mib: float
    size_bytes: int
    recalls: dict[int, float]
    chosen: int
    latency_ms: float
    add_s: float
    rebuild_s: float
    recall_after_add: float
    save_s: float
    load_s: float


class Usearch:
    name = "usearch"
    param = "expansion_search"

    def build(self, x: np.ndarray, start: int = 0) -> Index:
        index = Index(ndim=DIM, metric="cos", dtype="f32")
        self.add(index, x, start)
        return index

    def add(self, index: Index, x: np.ndarray, start: int) -> None:
        index.add(np.arange(start, start + len(x), dtype=np.uint64), x, threads=THREADS)

    def search(self, index: Index, q: np.ndarray, ef: int, threads: int) -> np.ndarray:
        index.expansion_search = ef  # type: ignore[misc]  # the setter carries no annotation
        keys: np.ndarray = index.search(q, K, threads=threads).keys
        return keys

    def dumps(self, index: Index) -> bytes:
        data = index.save()
        assert data is not None
        return bytes(data)

    def loads(self, data: bytes) -> Index:
        index = Index.restore(data)
        assert index is not None
        return index


class FaissHNSW:
    name = "faiss-hnsw"
    param = "efSearch"

    def build(self, x: np.ndarray, start: int = 0) -> Any:
        faiss.omp_set_num_threads(THREADS)
        index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        index.add(normalised(x))
        return index

    def add(self, index: Any, x: np.ndarray, start: int) -> None:
        faiss.omp_set_num_threads(THREADS)
        index.add(normalised(x))

    def search(self, index: Any, q: np.ndarray, ef: int, threads: int) -> np.ndarray:
        faiss.omp_set_num_threads(threads)
        index.hnsw.efSearch = ef
        _, ids = index.search(normalised(q.reshape(-1, DIM)), K)
        out: np.ndarray = ids
        return out

    def dumps(self, index: Any) -> bytes:
        return bytes(faiss.serialize_index(index).tobytes())

    def loads(self, data: bytes) -> Any:
        return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))


def exact(base: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, Any]:
    faiss.omp_set_num_threads(THREADS)
    index = faiss.IndexFlatIP(DIM)
    index.add(normalised(base))
    _, ids = index.search(normalised(queries), K)
    return ids, index


def run(lib: Usearch | FaissHNSW, base: np.ndarray, extra: np.ndarray, queries: np.ndarray,
        truth: np.ndarray, truth_all: np.ndarray) -> Result:
    reset_peak()
    before = rss_kib("VmRSS")
    index, build_s = timed(lambda: lib.build(base))
    peak_mib = (rss_kib("VmHWM") - before) / 1024
    recalls = {ef: recall(lib.search(index, queries, ef, THREADS), truth) for ef in EFS}
    chosen = next((ef for ef in EFS if recalls[ef] >= TARGET_RECALL), EFS[-1])
    latency = median_ms(lambda q: lib.search(index, q, chosen, 1), queries)
    data, save_s = timed(lambda: lib.dumps(index))
    restored, load_s = timed(lambda: lib.loads(data))
    _, add_s = timed(lambda: lib.add(restored, extra, len(base)))
    after = recall(lib.search(restored, queries, chosen, THREADS), truth_all)
    _, rebuild_s = timed(lambda: lib.build(np.concatenate([base, extra])))
    return Result(lib.name, lib.param, build_s, peak_mib, len(data), recalls, chosen, latency,
                  add_s, rebuild_s, after, save_s, load_s)


def label_precision(vectors: np.ndarray, labels: np.ndarray, queries: np.ndarray, pool: np.ndarray, k: int = K) -> float:
    """Mean share of each query row's ``k`` nearest ``pool`` rows (cosine on z-scored columns)
    that carry the query's label."""
    z = (vectors - vectors.mean(axis=0)) / np.where(vectors.std(axis=0) > 1e-12, vectors.std(axis=0), 1.0)
    z = normalised(z.astype(np.float32))
    sims = z[queries] @ z[pool].T
    nearest = pool[np.argsort(-sims, axis=1, kind="stable")[:, :k]]
    return float(np.mean(labels[nearest] == labels[queries][:, None]))


def demo_precision(directory: str) -> None:
    """Label precision@10 on the demo store: summary vectors vs the CNN's learned embedding.

    Builds the demo (``audio-pipeline demo DIRECTORY``: corpus, store, both models) unless
    ``DIRECTORY/features.zarr`` and ``DIRECTORY/model-cnn`` exist, embeds the store with the
    CNN, then asks, for every test-split segment, how many of its 10 nearest train-split
    segments (other files: splits are by file, and the CNN never saw the test files) share its
    label.
    """
    import os

    from pipeline.demo import run_demo
    from pipeline.embed import embed
    from pipeline.query import compute_arrays, summary_matrix, summary_variables
    from pipeline.store import as_text, open_store

    store, model = os.path.join(directory, "features.zarr"), os.path.join(directory, "model-cnn")
    if not (os.path.isdir(store) and os.path.isdir(model)):
        run_demo(directory)
    (result, embed_s) = timed(lambda: embed(store, model, name="cnn_embedding", log=lambda _: None))
    ds = open_store(store)
    labels, splits = as_text(ds["label"]), as_text(ds["split"])
    queries, pool = np.flatnonzero(splits == "test"), np.flatnonzero(splits == "train")
    chance = float(np.mean([np.mean(labels[pool] == label) for label in labels[queries]]))
    print(f"demo store {store}: {ds.sizes['segment']:,} segments, {len(set(labels))} labels; "
          f"{queries.size} test-split queries against {pool.size} train-split segments; "
          f"embed computed {result.computed} chunks in {embed_s:.1f} s")
    for title, vars in (("summary vectors (every *_mean/*_std)", None), ("CNN embedding (cnn_embedding)", ["cnn_embedding"])):
        names = summary_variables(ds, vars)
        (matrix,) = compute_arrays(summary_matrix(ds, names))
        p = label_precision(np.asarray(matrix, dtype=np.float64), labels, queries, pool)
        print(f"  label precision@{K} {p:.3f} ({p / chance:.1f}x chance {chance:.3f}): {title}, {matrix.shape[1]} dims")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 vectors")
    parser.add_argument("--n", type=int, default=None, help="indexed vectors (default 1,000,000)")
    parser.add_argument("--demo", metavar="DIR", help="instead: label precision@10 on the demo store in DIR "
                        "(built there if missing), summary vectors vs the CNN's embedding")
    args = parser.parse_args()
    if args.demo:
        demo_precision(args.demo)
        return
    n = args.n or (100_000 if args.quick else 1_000_000)

    (base, extra, queries), gen_s = timed(lambda: make_data(n))
    print(f"{n:,} x {DIM} float32 base, +{len(extra):,} appended, {QUERIES:,} held-out queries, "
          f"{CLUSTERS:,} clusters (generated in {gen_s:.1f} s); {platform.processor() or platform.machine()}, "
          f"faiss {faiss.__version__}, threads {THREADS} (latency: 1)")

    (truth, flat), flat_s = timed(lambda: exact(base, queries))
    faiss.omp_set_num_threads(1)
    flat_ms = median_ms(lambda q: flat.search(normalised(q.reshape(1, DIM)), K), queries[:100])
    flat_size = len(faiss.serialize_index(flat))
    truth_all, _ = exact(np.concatenate([base, extra]), queries)

    results = [run(lib, base, extra, queries, truth, truth_all) for lib in (Usearch(), FaissHNSW())]

    print(f"\n{'exact (faiss IndexFlatIP)':28s} build+1,000 queries {flat_s:.1f} s, "
          f"latency {flat_ms:.2f} ms/query (1 thread, median of 100), size {flat_size / MiB:.0f} MiB")
    for r in results:
        rs = ", ".join(f"{ef}: {v:.3f}" for ef, v in r.recalls.items())
        reached = "" if r.recalls[r.chosen] >= TARGET_RECALL else f" (never reached {TARGET_RECALL})"
        print(f"\n{r.name}")
        print(f"  recall@10          {r.recalls[r.chosen]:.3f} at {r.param}={r.chosen}{reached}; sweep {rs}")
        print(f"  latency            {flat_ms / r.latency_ms:.0f}x faster than exact: "
              f"{r.latency_ms:.3f} ms/query vs {flat_ms:.2f} ms (1 thread, median of {QUERIES:,})")
        print(f"  build              {r.build_s:.1f} s for {n:,} ({n / r.build_s:,.0f} vectors/s, "
              f"{THREADS} threads); peak RSS +{r.peak_mib:.0f} MiB; "
              f"serialized {r.size_bytes / MiB:.0f} MiB ({r.size_bytes / (n * DIM * 4):.2f}x raw f32)")
        print(f"  incremental add    {r.rebuild_s / r.add_s:.1f}x faster than rebuild: "
              f"+{len(extra):,} to the restored index {r.add_s:.1f} s vs rebuild of "
              f"{n + len(extra):,} {r.rebuild_s:.1f} s; recall@10 after add {r.recall_after_add:.3f}")
        print(f"  round trip         save {r.save_s:.2f} s + restore {r.load_s:.2f} s "
              f"({r.size_bytes / MiB / (r.save_s + r.load_s):.0f} MiB/s, bytes in memory)")


if __name__ == "__main__":
    main()
