"""`embed`: a trained model's penultimate layer, written into the store as a resumable family."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import xarray as xr
from test_training import write_genres

from pipeline import FeatureConfig, extract, open_store
from pipeline.cli import main as cli_main
from pipeline.embed import embed, stored_embedder
from pipeline.errors import ConfigMismatch, InputError
from pipeline.index import build_index
from pipeline.info import format_info
from pipeline.query import query, summary_variables
from pipeline.similar import similar
from pipeline.store import completeness, open_group, open_raw
from pipeline.training.embedder import Embedder, load_model_dir
from pipeline.training.train import train

try:
    import torch
except ImportError:  # pragma: no cover - fail loudly, never skip
    pytest.fail("torch is not installed: `make test` installs it (pinned CPU build torch==2.13.0)", pytrace=False)

CONFIG = FeatureConfig(n_mels=32, n_mfcc=13)


def _extract(root: Path, store: Path, labels: Path) -> None:
    extract([root], str(store), CONFIG, scheduler="synchronous", labels=str(labels), progress=False, segment_chunk=5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A store of two 'genres' (12 files, 2 segments each: 5 chunks) and a CNN trained on it."""
    root = tmp_path_factory.mktemp("embed")
    labels = write_genres(root)
    store = root / "store.zarr"
    _extract(root, store, labels)
    model = root / "cnn"
    train(str(store), model="cnn", epochs=2, out_dir=str(model), log=lambda _: None)
    return root, store, model


def _copy(store: Path, tmp_path: Path, name: str = "copy.zarr") -> Path:
    out = tmp_path / name
    shutil.copytree(store, out)
    return out


def _reference(store: Path, model: Path) -> np.ndarray:
    """The penultimate layer, computed here with torch from open_store's mel and model.json."""
    spec = json.loads((model / "model.json").read_text())
    stats = spec["standardize"]["mel"]
    net = torch.nn.Sequential(*list(_net(model, len(spec["classes"])))[:-1]).eval()
    mel = open_store(str(store))["mel"].values
    x = (mel - np.asarray(stats["mean"], np.float32)) / np.asarray(stats["std"], np.float32)
    with torch.no_grad():
        return np.asarray(net(torch.from_numpy(x[:, None].astype(np.float32))).numpy())


def _net(model: Path, n_classes: int) -> torch.nn.Sequential:
    from pipeline.training.models import cnn

    net = cnn(n_classes)
    net.load_state_dict(torch.load(model / "model.pt", weights_only=True))
    return net


def _flags(store: Path, name: str) -> list[int]:
    return [int(v) for v in np.asarray(open_group(str(store), mode="r")[name][:])]


def test_embed_writes_the_penultimate_layer_of_every_visible_segment(trained: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, original, model = trained
    store = _copy(original, tmp_path)
    result = embed(str(store), str(model), log=lambda _: None)
    assert (result.dim, result.computed, result.chunks_done) == (64, result.chunks_total, result.chunks_total)
    ds = open_store(str(store))
    assert ds["embedding"].dims == ("segment", "embedding_dim") and ds["embedding"].dtype == np.float32
    np.testing.assert_allclose(ds["embedding"].values, _reference(store, model), rtol=1e-5, atol=1e-5)
    assert _flags(store, "chunk_done_embedding") == [1] * result.chunks_total
    families = json.loads(ds.attrs["families"])["embedding"]
    assert families["kind"] == "embedding" and families["flag"] == "chunk_done_embedding"
    assert families["model_sha256"] == load_model_dir(str(model)).sha256
    assert "embedding" not in list(ds.attrs["features"])  # not computed from audio: extract leaves it alone
    # plain xarray reads it; defaults leave it out of what describes the audio (query, mlp inputs)
    plain = xr.open_zarr(store)
    assert plain["embedding"].attrs["family"] == "embedding"
    assert not any(v.startswith("embedding") for v in summary_variables(ds))
    assert list(query(str(store), vars=["embedding"]).filter(like="embedding").columns)[:2] == ["embedding_0", "embedding_1"]
    assert f"embedding v{families['version']} (embedding of a cnn) {result.chunks_total}/{result.chunks_total}" in format_info(str(store))
    # the model kept in the store is the model: same vectors
    kept = stored_embedder(str(store), "embedding")
    mel = ds["mel"].values[:7]
    np.testing.assert_array_equal(kept({"mel": mel}), Embedder(load_model_dir(str(model)))({"mel": mel}))
    # a second run computes nothing
    again = embed(str(store), str(model), log=lambda _: None)
    assert again.computed == 0


def test_similar_and_index_on_the_embedding(trained: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, original, model = trained
    store = _copy(original, tmp_path)
    embed(str(store), str(model), log=lambda _: None)
    exact = similar(str(store), segment=3, k=5, vars=["embedding"], exact=True)
    vectors = open_store(str(store))["embedding"].values.astype(np.float64)
    z = (vectors - vectors.mean(0)) / vectors.std(0)
    cos = 1 - (z @ z[3]) / (np.linalg.norm(z, axis=1) * np.linalg.norm(z[3]))
    cos[3] = np.inf
    np.testing.assert_array_equal(exact["segment"].to_numpy(), np.argsort(cos, kind="stable")[:5])
    state = build_index(str(store), vars=["embedding"], name="learned")
    assert state.manifest.variables == ["embedding"] and state.manifest.rows == vectors.shape[0]
    indexed = similar(str(store), segment=3, k=5, vars=["embedding"], index="learned", index_only=True)
    assert indexed["segment"].tolist() == exact["segment"].tolist()
    # an outside file is embedded by the store's own model: a file of the store is its own neighbour
    ds = open_store(str(store))
    first = str(ds["file_path"].values[0])
    mine = np.flatnonzero(ds["segment_file"].values == 0)
    outside = similar(str(store), audio=first, k=len(mine), vars=["embedding"], exact=True)
    assert set(outside["segment"].tolist()) == set(ds["segment"].values[mine].tolist())
    assert root.exists()


def test_embed_killed_midway_resumes_and_equals_a_one_shot_run(trained: tuple[Path, Path, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _, original, model = trained
    oneshot = _copy(original, tmp_path, "oneshot.zarr")
    embed(str(oneshot), str(model), log=lambda _: None)
    store = _copy(original, tmp_path, "killed.zarr")
    env = {**os.environ, "DASK_PIPELINE__CRASH_AFTER_CHUNKS": "2"}
    cmd = [sys.executable, "-m", "pipeline", "embed", str(store), "--model", str(model)]
    killed = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert sum(_flags(store, "chunk_done_embedding")) == 2
    partial = open_store(str(store))  # never shown half-written
    assert "embedding" not in partial.data_vars and partial.attrs["incomplete_families"] == ["embedding"]
    assert completeness(open_raw(str(store))).families["embedding"] == 2
    capsys.readouterr()
    code = cli_main(cmd[3:])  # the rerun needs no process of its own
    done = capsys.readouterr()
    assert code == 0, done.err
    n_chunks = len(_flags(store, "chunk_done"))
    assert f"computed {n_chunks - 2} chunks this run, {n_chunks} of {n_chunks} done" in done.out
    a, b = open_raw(str(store)), open_raw(str(oneshot))
    xr.testing.assert_identical(a["embedding"].load(), b["embedding"].load())
    assert a.attrs["families"] == b.attrs["families"]


def test_appended_files_get_the_embedding_on_the_next_run(trained: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, original, model = trained
    store = _copy(original, tmp_path)
    embed(str(store), str(model), log=lambda _: None)
    before = open_raw(str(store))["embedding"].values.copy()
    n_before = len(_flags(store, "chunk_done"))
    labels = root / "labels.csv"
    extra = tmp_path / "more" / "tone"
    extra.mkdir(parents=True)
    t = np.arange(int(6.0 * 22050)) / 22050
    for i in range(3):
        sf.write(extra / f"late{i}.wav", (0.3 * np.sin(2 * np.pi * (350 + 30 * i) * t)).astype(np.float32), 22050)
    extract([root, extra.parent], str(store), CONFIG, scheduler="synchronous", labels=str(labels),
            label_from="parent", progress=False, segment_chunk=5)
    n_after = len(_flags(store, "chunk_done"))
    assert n_after > n_before and sum(_flags(store, "chunk_done_embedding")) == n_before
    hidden = open_store(str(store))
    assert "embedding" not in hidden.data_vars and hidden.attrs["incomplete_families"] == ["embedding"]
    result = embed(str(store), str(model), log=lambda _: None)
    assert result.computed == n_after - n_before
    after = open_raw(str(store))["embedding"].values
    np.testing.assert_array_equal(after[: before.shape[0]], before)  # old rows untouched
    np.testing.assert_allclose(open_store(str(store))["embedding"].values, _reference(store, model), rtol=1e-5, atol=1e-5)


def test_bad_models_and_names_are_refused_before_touching_the_store(trained: tuple[Path, Path, Path], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _, original, model = trained
    store = _copy(original, tmp_path)
    with pytest.raises(InputError, match="Expected a model directory"):
        embed(str(store), str(tmp_path / "nothing"))
    with pytest.raises(InputError, match="not a feature family"):
        embed(str(store), str(model), name="mel")
    with pytest.raises(InputError, match="letters, digits"):
        embed(str(store), str(model), name="1st")
    spec = json.loads((model / "model.json").read_text())
    moved = tmp_path / "n_mels_64"
    shutil.copytree(model, moved)
    spec["feature_config"]["n_mels"] = 64
    (moved / "model.json").write_text(json.dumps(spec))
    with pytest.raises(ConfigMismatch, match="n_mels=64 != 32"):
        embed(str(store), str(moved))
    untouched = open_raw(str(store))
    assert "embedding" not in untouched.variables and "embedding" not in untouched.attrs["families"]
    # another model into the same name: refused, unless --overwrite
    embed(str(store), str(model), log=lambda _: None)
    retrained = tmp_path / "retrained"
    train(str(store), model="cnn", epochs=1, seed=5, out_dir=str(retrained), log=lambda _: None)
    with pytest.raises(ConfigMismatch, match="holds embedding embedding of another model"):
        embed(str(store), str(retrained))
    result = embed(str(store), str(retrained), overwrite=True, log=lambda _: None)
    assert result.computed == result.chunks_total
    assert json.loads(open_raw(str(store)).attrs["families"])["embedding"]["model_sha256"] == load_model_dir(str(retrained)).sha256
    # the CLI: one line, exit 2
    assert cli_main(["embed", str(store), "--model", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Expected a model directory" in err[0]
