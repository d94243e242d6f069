"""The nearest-neighbour index kept in the store: equal to exact search, grown by appends, never
half-written, on S3 too."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import xarray as xr

import pipeline.index as index_module
from pipeline import FeatureConfig, extract, open_store
from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.index import build_index, index_state, load_index
from pipeline.info import format_info
from pipeline.query import compute_arrays, segment_ids, summary_matrix
from pipeline.similar import similar
from pipeline.store import open_group

CONFIG = FeatureConfig(features=("mfcc", "chroma", "rms"), n_mels=40, segment_seconds=1.0)


def _clips(root: Path, names: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i, name in enumerate(names):
        path = root / ("a" if i % 2 else "b") / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(4.5 * 22050)) / 22050
        f = 150.0 + 90.0 * i + 40.0 * seed
        y = 0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * (0.5 + i) * t)) + rng.normal(0, 0.03, t.size)
        sf.write(path, y.astype(np.float32), 22050)


def _extract(corpus: Path, store: str, **kw: object) -> None:
    extract([str(corpus)], store, CONFIG, scheduler="synchronous", label_from="parent", progress=False,
            segment_chunk=4, **kw)  # type: ignore[arg-type]


def _brute_force(store: str, query: int, k: int, mean: np.ndarray, std: np.ndarray,
                 options: dict[str, object] | None = None) -> tuple[list[int], np.ndarray]:
    """Cosine neighbours of segment ``query`` over every visible segment, in numpy."""
    ds = open_store(store, options)
    ids = segment_ids(ds)
    (m,) = compute_arrays(summary_matrix(ds, None).astype(np.float64))
    z = (np.asarray(m) - mean) / std
    pos = int(np.flatnonzero(ids == query)[0])
    sims = z @ z[pos] / (np.linalg.norm(z, axis=1) * np.linalg.norm(z[pos]))
    dist = np.clip(1.0 - sims, 0.0, 2.0)
    dist[pos] = np.inf
    order = np.lexsort((ids, dist))[:k]
    return [int(i) for i in ids[order]], dist[order]


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, Path]:
    corpus = tmp_path / "corpus"
    _clips(corpus, [f"c{i}" for i in range(6)], seed=1)
    path = str(tmp_path / "s.zarr")
    _extract(corpus, path)
    return path, corpus


def test_the_index_answers_as_exact_search_does(store: tuple[str, Path]) -> None:
    path, _ = store
    state = build_index(path)
    ds = open_store(path)
    assert state.fresh and state.manifest.rows == ds.sizes["segment"] == 30
    for query in (0, 7, 23):
        by_index = similar(path, segment=query, k=5, index_only=True)
        by_exact = similar(path, segment=query, k=5, exact=True)
        assert list(by_index["segment"]) == list(by_exact["segment"])
        np.testing.assert_allclose(by_index["distance"], by_exact["distance"], atol=2e-6)
    # the store is still plain Zarr for xarray: the index is a subgroup it does not open
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = xr.open_zarr(path)
    assert not any(name.startswith(("graph", "segments")) for name in plain.variables)
    assert "index default: 30 segments" in format_info(path, check_files=False)


def test_an_append_is_searched_exactly_until_index_adds_only_the_new_rows(store: tuple[str, Path]) -> None:
    path, corpus = store
    first = build_index(path).manifest
    _clips(corpus, ["d0", "d1"], seed=2)
    _extract(corpus, path)
    state = index_state(path)
    assert state is not None and state.missing == 10 and not state.fresh
    assert "stale: 10 visible segments not in it (run index)" in format_info(path, check_files=False)
    mean, std = first.stats()
    # the stale index plus an exact search of the new rows: the brute force with its statistics
    for query in (2, 33):
        got = similar(path, segment=query, k=6)
        expected, distances = _brute_force(path, query, 6, mean, std)
        assert list(got["segment"]) == expected
        np.testing.assert_allclose(got["distance"], distances, atol=2e-6)
    with pytest.raises(InputError, match="to hold every visible segment, got 30 of 40"):
        similar(path, segment=2, k=3, index_only=True)
    graph_before, _, held_before = load_index(path)  # type: ignore[misc]
    grown = build_index(path)
    assert grown.fresh and grown.manifest.rows == 40 and grown.manifest.created == first.created
    assert grown.manifest.mean == first.mean  # statistics frozen at the first build
    graph, manifest, held = load_index(path)  # type: ignore[misc]
    # the old rows kept their vectors; the new ones are what a build with those statistics makes
    np.testing.assert_array_equal(graph.get(held_before.astype(np.uint64)), graph_before.get(held_before.astype(np.uint64)))
    ds = open_store(path)
    ids = segment_ids(ds)
    (m,) = compute_arrays(summary_matrix(ds, None).astype(np.float64))
    expected_vectors = ((np.asarray(m) - mean) / std).astype(np.float32)
    np.testing.assert_allclose(graph.get(ids.astype(np.uint64)), expected_vectors, rtol=1e-6, atol=1e-6)
    assert list(held) == sorted(ids.tolist())
    got = similar(path, segment=33, k=6, index_only=True)
    assert list(got["segment"]) == _brute_force(path, 33, 6, mean, std)[0]
    # only one build's arrays are left
    group = open_group(path, mode="r")["index/default"]
    assert sorted(group.array_keys()) == [f"graph_{manifest.build}", f"segments_{manifest.build}"]


def test_an_interrupted_build_leaves_the_previous_index(store: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    path, corpus = store
    old = build_index(path).manifest
    _clips(corpus, ["d0"], seed=3)
    _extract(corpus, path)

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as Ctrl-C (or a kill) after the new arrays, before the manifest

    monkeypatch.setattr(index_module, "_commit", killed)
    with pytest.raises(KeyboardInterrupt):
        build_index(path)
    monkeypatch.undo()
    _, manifest, held = load_index(path)  # type: ignore[misc]
    assert manifest.build == old.build and manifest.rows == 30 == held.size
    orphans = [k for k in open_group(path, mode="r")["index/default"].array_keys() if old.build not in k]
    assert len(orphans) == 2  # the new build's arrays, never named by the manifest
    got = similar(path, segment=3, k=4)
    assert list(got["segment"]) == _brute_force(path, 3, 4, *old.stats())[0]
    state = build_index(path)
    assert state.fresh
    assert all(state.manifest.build in k for k in open_group(path, mode="r")["index/default"].array_keys())


def test_index_errors_are_one_line(store: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = store
    with pytest.raises(InputError, match="Expected an index 'default' of the store"):
        similar(path, segment=0, index_only=True)
    build_index(path, vars=["mfcc"], name="timbre")
    with pytest.raises(InputError, match=r"Expected the variables of index timbre \(mfcc_mean, mfcc_std\), got"):
        build_index(path, vars=["rms"], name="timbre")
    with pytest.raises(InputError, match="Expected an index name"):
        build_index(path, name="../x")
    # an index of other variables is not used for a query of all of them (exact search instead)
    assert list(similar(path, segment=1, k=3)["segment"]) == list(similar(path, segment=1, k=3, exact=True)["segment"])
    assert list(similar(path, segment=1, k=3, vars=["mfcc"], index="timbre", index_only=True)["segment"]) == \
        list(similar(path, segment=1, k=3, vars=["mfcc"], exact=True)["segment"])
    build_index(path, vars=["mfcc"])  # a default index of other variables than a query of all of them
    assert list(similar(path, segment=1, k=3)["segment"]) == list(similar(path, segment=1, k=3, exact=True)["segment"])
    with pytest.raises(InputError, match=r"Expected the variables of index default \(mfcc_mean, mfcc_std\)"):
        similar(path, segment=1, k=3, index_only=True)
    # the commands (in this process: pipeline.cli.main is what the console script runs)
    assert main(["similar", path, "--segment", "0", "--index-only", "--index", "nope"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Expected an index 'nope' of the store" in err
    assert main(["index", path, "--name", "all"]) == 0
    assert "index all: 30 segments of 30 visible" in capsys.readouterr().out


def test_an_s3_store_is_indexed_and_answers(s3_bucket: tuple[str, dict[str, object]], tmp_path: Path) -> None:
    bucket, options = s3_bucket
    corpus = tmp_path / "corpus"
    _clips(corpus, [f"c{i}" for i in range(2)], seed=4)
    path = f"s3://{bucket}/s.zarr"
    _extract(corpus, path, storage_options=options)
    state = build_index(path, storage_options=options)
    assert state.fresh and state.manifest.rows == 10
    got = similar(path, segment=5, k=3, storage_options=options, index_only=True)
    assert list(got["segment"]) == _brute_force(path, 5, 3, *state.manifest.stats(), options=options)[0]
