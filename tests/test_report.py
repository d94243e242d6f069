"""The HTML store report: one offline file with figures, counts, escaped text and failed files."""

from __future__ import annotations

import base64
import html
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline import FeatureConfig, extract
from pipeline.errors import InputError
from pipeline.report import MAX_PCA_SEGMENTS, write_report

IMG = '<img src="data:image/png;base64,'
ODD_LABEL = "_odd <label> & \"$x^$\""  # HTML, quotes, broken mathtext, a leading underscore


@pytest.fixture(scope="module")
def with_failure(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the corpus, a text file named bad.wav, and a label that needs escaping."""
    root = tmp_path_factory.mktemp("report")
    shutil.copytree(corpus, root / "corpus")
    (root / "corpus" / "noise" / "bad.wav").write_text("this is not audio\n")
    (root / "corpus" / ODD_LABEL).mkdir()
    shutil.copy(corpus / "noise" / "white.wav", root / "corpus" / ODD_LABEL / "w.wav")
    store = str(root / "store.zarr")
    report = extract([root / "corpus"], store, FeatureConfig(), scheduler="synchronous", label_from="parent",
                     progress=False)
    assert report.files_failed == 1
    return root, store


@pytest.fixture(scope="module")
def page(with_failure: tuple[Path, str]) -> str:
    root, store = with_failure
    out = str(root / "report.html")
    assert write_report(store, out) == out
    return Path(out).read_text(encoding="utf-8")


def test_one_offline_file(with_failure: tuple[Path, str], page: str) -> None:
    root, _ = with_failure
    assert sorted(p.name for p in root.iterdir()) == ["corpus", "report.html", "store.zarr"]
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count(IMG) >= 3
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page and "@import" not in page
    # every src is an embedded PNG
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)
    png = base64.b64decode(sources[0].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000


def test_store_config_and_counts(with_failure: tuple[Path, str], page: str) -> None:
    _, store = with_failure
    assert html.escape(store) in page
    assert "<td>n_mels</td><td>128</td>" in page
    assert '<span class="ok">complete</span>' in page
    assert "<td>segments visible</td><td>10 of 10</td>" in page  # 8 of the corpus + 2 of w.wav
    rows = dict(re.findall(r"<tr><td>([^<]*)</td>(.*?)</tr>", page))
    numbers = {label: re.findall(r'class="num">([^<]*)<', rows[label]) for label in ("noise", "tones")}
    # label: files, failed files, segments, hours, train, val, test
    assert numbers["noise"][:3] == ["3", "1", "4"]
    assert numbers["tones"][:3] == ["2", "0", "4"]
    assert re.search(r'<tr class="total"><td>total</td><td class="num">6</td><td class="num">1</td><td class="num">10</td>', page)


def test_labels_are_escaped(page: str) -> None:
    assert "tones" in page and "noise" in page
    assert html.escape(ODD_LABEL) in page
    assert ODD_LABEL not in page and "<label>" not in page


def test_failed_files_table(with_failure: tuple[Path, str], page: str) -> None:
    root, _ = with_failure
    section = page.split("<h2>Failed files</h2>", 1)[1]
    bad = html.escape(str(root / "corpus" / "noise" / "bad.wav"))
    assert f'<td class="path">{bad}</td><td>unreadable audio header: not a recognised audio format</td>' in section
    assert section.count('<td class="path">') == 1


def test_no_failures_says_none(corpus: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "clean.zarr")
    extract([corpus / "tones"], store, FeatureConfig(features=("mel", "rms"), n_mels=32), scheduler="synchronous",
            label_from="parent", progress=False)
    page = Path(write_report(store, str(tmp_path / "r.html"))).read_text()
    assert page.split("<h2>Failed files</h2>", 1)[1].lstrip().startswith("<p>none</p>")
    # only rms_mean of the box-plot features is in this store: one panel, still three figures
    assert page.count(IMG) == 3


def test_pca_subsamples_deterministically(tmp_path: Path) -> None:
    sr = 8000
    rng = np.random.default_rng(3)
    for label, y in (("a", 0.3 * np.sin(2 * np.pi * 440 * np.arange(30 * sr) / sr)),
                     ("b", rng.normal(0, 0.1, 30 * sr))):
        (tmp_path / "audio" / label).mkdir(parents=True)
        sf.write(tmp_path / "audio" / label / f"{label}.wav", y.astype(np.float32), sr)
    config = FeatureConfig(sr=sr, n_fft=64, hop_length=32, n_mels=8, n_mfcc=4, segment_seconds=0.01,
                           features=("mfcc", "zcr", "rms"))
    store = str(tmp_path / "many.zarr")
    extract([tmp_path / "audio"], store, config, scheduler="synchronous", label_from="parent", progress=False)
    first = Path(write_report(store, str(tmp_path / "one.html"))).read_text()
    second = Path(write_report(store, str(tmp_path / "two.html"))).read_text()
    assert f"Drawn: {MAX_PCA_SEGMENTS} of 6000 segments, evenly spaced." in first
    images = re.findall(r'src="([^"]*)"', first)
    assert images == re.findall(r'src="([^"]*)"', second)


def test_errors(with_failure: tuple[Path, str], tmp_path: Path) -> None:
    _, store = with_failure
    with pytest.raises(InputError, match=r"Expected a report path ending in \.html"):
        write_report(store, str(tmp_path / "report.txt"))
    with pytest.raises(InputError, match="existing directory"):
        write_report(store, str(tmp_path / "missing" / "report.html"))
    with pytest.raises(InputError, match="Expected a feature store"):
        write_report(str(tmp_path), str(tmp_path / "report.html"))
    assert list(tmp_path.iterdir()) == []
