"""Users' own feature families: the example plugin of docs/features.md end to end, and its failures."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from pipeline import FeatureConfig, extract, open_store
from pipeline.errors import ConfigError, FamilyError, one_line
from pipeline.families import family_names
from pipeline.families.plugins import load_plugin, load_source
from pipeline.info import format_info
from pipeline.plot import plot
from pipeline.query import query, summary_variables
from pipeline.similar import similar
from pipeline.store import open_group, open_raw
from pipeline.training.train import train

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "pipeline"]


def example_plugin() -> str:
    """The plugin shown in docs/features.md (the docs' own code, so the docs cannot rot)."""
    text = (ROOT / "docs" / "features.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    source = next(b for b in blocks if "FAMILIES" in b)
    return source


@pytest.fixture(autouse=True)
def _registry_restored() -> Iterator[None]:
    """Plugins loaded in this process by a test are unregistered after it."""
    from pipeline.families import plugins, registry

    families, loaded = dict(registry._REGISTRY), dict(plugins._LOADED)
    yield
    for name in set(registry._REGISTRY) - set(families):
        del registry._REGISTRY[name]
    for name in set(plugins._LOADED) - set(loaded):
        del plugins._LOADED[name]
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "my_features.py"
    path.write_text(example_plugin())
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(5)
    t = np.arange(int(6.5 * 22050)) / 22050
    for label, i, y in (("tone", 0, 0.4 * np.sin(2 * np.pi * 330 * t)), ("tone", 1, 0.3 * np.sin(2 * np.pi * 880 * t)),
                        ("noise", 0, rng.normal(0, 0.1, t.size)), ("noise", 1, rng.normal(0, 0.05, t.size))):
        (root / label).mkdir(exist_ok=True)
        sf.write(root / label / f"{label}{i}.wav", y.astype(np.float32), 22050)
    return root


def _entropy_reference(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    power = np.abs(librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length)).astype(np.float64) ** 2
    total = power.sum(axis=0, keepdims=True)
    p = np.divide(power, total, out=np.zeros_like(power), where=total > 0)
    return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=0)


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, **kw)  # type: ignore[call-overload]


def test_the_example_plugin_end_to_end(plugin_file: Path, corpus: Path, tmp_path: Path) -> None:
    """extract (CLI, --plugin), then query without the plugin, similar, train, plot, all on it."""
    store = tmp_path / "s.zarr"
    labels = tmp_path / "labels.csv"
    rows = [f"{p},{p.parent.name},{'train' if p.stem.endswith('0') else 'test'}" for p in sorted(corpus.rglob("*.wav"))]
    labels.write_text("path,label,split\n" + "\n".join(rows) + "\n")
    proc = _run([*CLI, "extract", str(corpus), "-o", str(store), "--features", "mfcc,entropy", "--plugin", str(plugin_file),
                 "--labels", str(labels), "--no-progress", "--scheduler", "synchronous"])
    assert proc.returncode == 0, proc.stderr
    ds = open_store(str(store))
    assert ds["spectral_entropy"].dims == ("segment", "frame")
    assert ds["spectral_entropy"].attrs["family"] == "entropy"
    # the numbers are the plugin's definition, on each stored segment
    config = FeatureConfig(features="mfcc")
    for i in range(ds.sizes["segment"]):
        path = str(ds["file_path"].values[int(ds["segment_file"].values[i])])
        y, _ = librosa.load(path, sr=config.sr)
        start = round(float(ds["segment_offset"].values[i]) * config.sr)
        seg = np.zeros(config.segment_samples, dtype=np.float32)
        part = y[start : start + config.segment_samples]
        seg[: part.size] = part
        ref = _entropy_reference(seg, config)
        np.testing.assert_allclose(ds["spectral_entropy"].values[i], ref, rtol=0, atol=1e-4 * max(ref.max(), 1.0))
    # the store records the plugin: module, version, source hash
    families = open_raw(str(store)).attrs["families"]
    assert '"module": "my_features"' in families and '"plugin_version": "1.0"' in families
    assert "source_sha256" in families
    # readers need no plugin: query selects the family by name
    # readers need no plugin (none is loaded in this process yet): query selects the family by name
    table = query(str(store), vars=["entropy"])
    assert {"spectral_entropy_mean", "spectral_entropy_std"} <= set(table.columns)
    assert "entropy v1 (plugin my_features)" in format_info(str(store), check_files=False)
    # featurising an outside file the store's way needs the plugin
    outside = sorted(corpus.rglob("*.wav"))[0]
    with pytest.raises(ConfigError, match=r"entropy \(module my_features\) not registered: pass --plugin"):
        similar(str(store), audio=str(outside), k=1)
    load_plugin(str(plugin_file))
    near = similar(str(store), audio=str(outside), vars=["entropy"], k=1)
    assert near["file"].iloc[0] == str(outside)  # its own segment is its nearest neighbour
    assert len(similar(str(store), segment=0, vars=["entropy"], k=2)) == 2
    fig = tmp_path / "e.png"
    assert plot(str(store), segment=0, kinds=["entropy"], out=str(fig)) == [str(fig)]
    assert fig.stat().st_size > 5000
    # an MLP trains on the plugin's summaries with the rest
    assert "spectral_entropy_mean" in summary_variables(ds)
    metrics = train(str(store), epochs=1, batch_size=4)
    assert "spectral_entropy_mean" in metrics["variables"]


@pytest.mark.cluster
def test_the_example_plugin_on_a_real_cluster(dask_cluster: str, plugin_file: Path, corpus: Path, tmp_path: Path) -> None:
    """The workers of deploy/local/cluster.sh never saw the file: the client ships its source."""
    store = tmp_path / "cluster.zarr"
    proc = _run([*CLI, "extract", str(corpus), "-o", str(store), "--features", "mel,entropy", "--plugin", str(plugin_file),
                 "--label-from", "parent", "--no-progress", "--scheduler", dask_cluster, "--n-mels", "32"],
                cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    local = tmp_path / "local.zarr"
    load_plugin(str(plugin_file))
    extract([corpus], str(local), FeatureConfig(features="mel,entropy", n_mels=32), scheduler="synchronous",
            label_from="parent", progress=False)
    a, b = open_store(str(store)), open_store(str(local))
    for name in ("spectral_entropy", "spectral_entropy_mean", "mel_mean"):
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_another_plugin_version_is_refused(plugin_file: Path, corpus: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    base = [*CLI, "extract", str(corpus), "-o", str(store), "--features", "entropy", "--label-from", "parent",
            "--no-progress", "--scheduler", "synchronous"]
    load_plugin(str(plugin_file))
    extract([corpus], str(store), FeatureConfig(features="entropy"), scheduler="synchronous", label_from="parent",
            progress=False)
    changed = tmp_path / "my_features.py"
    changed.write_text(example_plugin().replace('version="1"', 'version="2"'))
    proc = _run([*base, "--plugin", str(changed)])
    assert proc.returncode == 2
    assert "family entropy:" in proc.stderr and "version=2 != " in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    without = _run(base)
    assert without.returncode == 2 and "a plugin's families need --plugin" in without.stderr


BAD = {
    "raises": ("raise ValueError('bad frame')", "failed: ValueError: bad frame"),
    "shape": ("out = out[:, :-1]", "returned spectral_flux of shape"),
    "nan": ("out[:] = np.nan", "non-finite values of spectral_flux"),
}


@pytest.mark.parametrize("how", list(BAD))
def test_a_failing_plugin_names_itself_the_file_and_the_segment(how: str, corpus: Path, tmp_path: Path) -> None:
    """It fails on the loud noise file only (sorted last): the chunks before it stay done."""
    code, message = BAD[how]
    plugin = tmp_path / f"bad_{how}.py"
    plugin.write_text(textwrap.dedent(f'''
        import numpy as np
        from pipeline.families import Family, Variable

        def flux(inputs, config):
            out = np.zeros((inputs.n, config.n_frames), dtype=np.float32)
            rms = np.sqrt(np.mean(np.square(inputs.waveform, dtype=np.float64), axis=-1))
            if ((rms > 0.2) & (rms < 0.25)).any():  # tone1 (0.3 / sqrt 2) only: the last file in order
                {code}
            return {{"spectral_flux": out}}

        FAMILIES = [Family(name="flux", version="1", variables=(Variable("spectral_flux", "zero", "1"),),
                           compute=flux, reference="zero", consumes=("waveform",))]
    '''))
    store = tmp_path / "s.zarr"
    if how == "raises":  # through the command line: exit 1, one line
        proc = _run([*CLI, "extract", str(corpus), "-o", str(store), "--features", "rms,flux", "--plugin", str(plugin),
                     "--label-from", "parent", "--no-progress", "--scheduler", "synchronous", "--segment-chunk", "1"])
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
    else:
        load_plugin(str(plugin))
        with pytest.raises(FamilyError) as failure:
            extract([corpus], str(store), FeatureConfig(features="rms,flux"), scheduler="synchronous",
                    label_from="parent", progress=False, segment_chunk=1)
        lines = [f"audio-pipeline: error: {one_line(failure.value)}"]
    assert f"family flux (plugin bad_{how})" in lines[0] and message in lines[0]
    assert re.search(r"tone1\.wav segment 0\b", lines[0]), lines[0]
    done = np.asarray(open_group(str(store), mode="r")["chunk_done"][:])
    assert 0 < done.sum() < done.size  # the files before it: finished, kept


@pytest.mark.parametrize(("content", "message"), [
    (None, "to be a Python file, found none"),
    ("def broken(:\n", "to load, got SyntaxError"),
    ("X = 1\n", "to define FAMILIES"),
    ("FAMILIES = [1]\n", "FAMILIES to hold pipeline.families.Family objects"),
])
def test_a_plugin_that_does_not_load_is_one_line_exit_2(content: str | None, message: str, tmp_path: Path) -> None:
    plugin = tmp_path / "p.py"
    if content is not None:
        plugin.write_text(content)
    proc = _run([*CLI, "features", "--plugin", str(plugin)])
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_features_lists_built_ins_and_plugins(plugin_file: Path) -> None:
    proc = _run([*CLI, "features", "--plugin", str(plugin_file)])
    assert proc.returncode == 0, proc.stderr
    for name in family_names():
        assert re.search(rf"^{name} \(v", proc.stdout, flags=re.M), name
    assert "entropy (v1; plugin my_features (source sha256 " in proc.stdout
    assert "spectral_entropy       (segment, frame)" in proc.stdout


def test_an_installed_entry_point_is_loaded_everywhere(tmp_path: Path) -> None:
    """A package declaring ``audio_pipeline.features`` needs no --plugin; a broken one is named."""
    site = tmp_path / "site"
    (site / "shout").mkdir(parents=True)
    (site / "shout" / "__init__.py").write_text(example_plugin().replace('name="entropy"', 'name="shout_entropy"')
                                                 .replace('"spectral_entropy"', '"shout_entropy"'))
    dist = site / "shout-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shout\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[audio_pipeline.features]\nshout = shout\n")
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    proc = _run([*CLI, "features"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert "shout_entropy (v1; plugin shout" in proc.stdout
    (site / "shout" / "__init__.py").write_text("raise ImportError('no numpy here')\n")
    broken = _run([*CLI, "features"], env=env)
    assert broken.returncode == 1
    assert "entry point shout = shout of audio_pipeline.features failed to load: ImportError: no numpy here" in broken.stderr


def test_loading_the_same_plugin_twice_is_one_registration_and_a_clash_is_refused(plugin_file: Path) -> None:
    first = load_plugin(str(plugin_file))
    assert load_plugin(str(plugin_file)) == first
    with pytest.raises(ConfigError, match="registered already"):
        load_source("other_module", example_plugin())
    with pytest.raises(ConfigError, match="variable spectral_entropy to be new, got one of family entropy"):
        load_source("other_module", example_plugin().replace('name="entropy"', 'name="entropy2"'))
