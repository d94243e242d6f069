"""The tutorial's figures: every kind from an audio file and from a store segment, naming, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from threadpoolctl import threadpool_limits

from pipeline import FeatureConfig, extract, open_store
from pipeline.errors import InputError
from pipeline.features import compute_features
from pipeline.plot import KINDS, MAX_SECONDS, _from_audio, _from_store, output_paths, plot
from pipeline.store import as_text

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: str | Path) -> None:
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 5_000, (path, len(data))


@pytest.fixture(scope="module")
def store(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("plot") / "corpus.zarr")
    extract([corpus], path, FeatureConfig(), scheduler="synchronous", label_from="parent", progress=False)
    return path


def segment_of(store: str, name: str, offset: float) -> int:
    """The store index of the segment of file ``name`` at ``offset`` seconds."""
    ds = open_store(store)
    paths = as_text(ds["file_path"])
    for i in range(ds.sizes["segment"]):
        f = int(ds["segment_file"].values[i])
        if Path(paths[f]).name == name and float(ds["segment_offset"].values[i]) == offset:
            return int(ds["segment"].values[i])
    raise LookupError(f"no segment of {name} at {offset} s")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_from_an_audio_file(corpus: Path, tmp_path: Path, kind: str) -> None:
    out = tmp_path / f"chirp-{kind}.png"
    written = plot(str(corpus / "tones" / "chirp16k.flac"), kinds=[kind], out=str(out))
    assert written == [str(out)]
    assert_png(out)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_from_a_store_segment(store: str, tmp_path: Path, kind: str) -> None:
    segment = segment_of(store, "a440.wav", 3.0)
    out = tmp_path / f"segment-{kind}.png"
    assert plot(store, segment=segment, kinds=[kind], out=str(out)) == [str(out)]
    assert_png(out)


def test_figure_is_not_blank(store: str, tmp_path: Path) -> None:
    from matplotlib.image import imread

    out = tmp_path / "mel.png"
    plot(store, segment=segment_of(store, "white.wav", 0.0), kinds=["mel"], out=str(out))
    pixels = imread(str(out))
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 500
    assert float(pixels[..., :3].std()) > 0.05


def test_several_kinds_are_named_after_the_stem(store: str, tmp_path: Path) -> None:
    # the last, partial segment of a440.wav (7.5 s: 1.5 s of audio in the third segment)
    segment = segment_of(store, "a440.wav", 6.0)
    written = plot(store, segment=segment, kinds=list(KINDS), out=str(tmp_path / "fig.png"))
    assert written == [str(tmp_path / f"fig_{kind}.png") for kind in KINDS]
    for path in written:
        assert_png(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"fig_{kind}.png" for kind in KINDS)


def test_output_paths() -> None:
    assert output_paths("a/b.PNG", ["mel"]) == {"mel": "a/b.PNG"}
    assert output_paths("a/b.svg", ["mel", "zcr", "mel"]) == {"mel": "a/b_mel.svg", "zcr": "a/b_zcr.svg"}
    assert output_paths("b.png", "chroma") == {"chroma": "b.png"}


def test_svg_output(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "white.svg"
    written = plot(str(corpus / "noise" / "white.wav"), kinds=["spectrogram", "waveform"], out=str(out))
    assert written == [str(tmp_path / "white_spectrogram.svg"), str(tmp_path / "white_waveform.svg")]
    for path in written:
        text = Path(path).read_text()
        assert text.lstrip().startswith("<?xml") and "<svg" in text
        assert 5_000 < len(text) < 3_000_000  # rasterized meshes and envelopes keep SVGs small


def test_store_segment_draws_stored_valid_frames(store: str) -> None:
    segment = segment_of(store, "a440.wav", 6.0)
    ds = open_store(store)
    pos = int(np.flatnonzero(ds["segment"].values == segment)[0])
    valid = int(ds["segment_valid_frames"].values[pos])
    assert valid < ds.sizes["frame"]
    clip = _from_store(store, segment, ["mel", "zcr"], None)
    np.testing.assert_array_equal(clip.frames["mel"], ds["mel"].values[pos, :valid])
    np.testing.assert_array_equal(clip.frames["zero_crossing_rate"], ds["zero_crossing_rate"].values[pos, :valid])
    assert clip.y is not None and clip.y.size == round(1.5 * 22050)  # only the real audio, re-decoded
    assert clip.start == 6.0 and clip.end == pytest.approx(7.5)
    assert "a440.wav" in clip.title and f"segment {segment}" in clip.title and "tones" in clip.title
    # kinds drawn from stored arrays only do not decode the audio
    assert _from_store(store, segment, ["mel", "mfcc", "chroma"], None).y is None


def test_audio_file_uses_the_pipeline_kernels_and_the_first_30_s(tmp_path: Path) -> None:
    sr = 8000
    t = np.arange(int(31 * sr)) / sr
    path = tmp_path / "long.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), sr)
    clip = _from_audio(str(path), ["mfcc", "waveform"], sr, None)
    assert clip.y is not None and clip.y.size == int(MAX_SECONDS * sr)
    assert "first 30 s of 31.0 s" in clip.title
    # the kernels as a chunk task runs them: one BLAS thread (a segment's numbers do not depend
    # on where it ran)
    with threadpool_limits(limits=1, user_api="blas"):
        expected = compute_features(clip.y[None, :], clip.config)
    np.testing.assert_array_equal(clip.frames["mfcc"], expected["mfcc"][0])
    np.testing.assert_array_equal(clip.frames["rms"], expected["rms"][0])
    assert set(clip.frames) == {"mfcc", "rms"}
    mel_only = _from_audio(str(path), ["mel"], sr, None)
    assert set(mel_only.frames) == {"mel"} and mel_only.frames["mel"].shape[1] == FeatureConfig().n_mels


def test_audio_file_features_are_the_stores(tmp_path: Path) -> None:
    """Plot and a chunk task featurise a file with the same code: equal bits for equal config."""
    sr = 8000
    t = np.arange(int(7.3 * sr)) / sr
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "tone.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 300 * t) * np.exp(-t / 3)).astype(np.float32), sr)
    clip = _from_audio(str(path), ["mfcc", "chroma", "zcr"], sr, None)
    store = str(tmp_path / "tone.zarr")
    extract([tmp_path / "in"], store, clip.config, scheduler="synchronous", progress=False)
    ds = open_store(store)
    assert ds.sizes["segment"] == 1 and int(ds["segment_valid_frames"].values[0]) == clip.n_frames
    for name in ("mfcc", "chroma", "zero_crossing_rate"):
        np.testing.assert_array_equal(clip.frames[name], ds[name].values[0, : clip.n_frames])


def test_a_clip_shorter_than_one_hop(corpus: Path, tmp_path: Path) -> None:
    written = plot(str(corpus / "noise" / "short.wav"), kinds=["spectrogram", "zcr"], out=str(tmp_path / "s.png"))
    for path in written:
        assert_png(path)


def test_unknown_kind_and_bad_extension(corpus: Path, tmp_path: Path) -> None:
    audio = str(corpus / "tones" / "a440.wav")
    with pytest.raises(InputError, match=r"Expected figure kinds out of waveform, spectrogram, mel, mfcc, chroma, spectral, zcr, contrast, .*whisper, got 'spectrum'"):
        plot(audio, kinds=["mel", "spectrum"], out=str(tmp_path / "x.png"))
    with pytest.raises(InputError, match="at least one figure kind"):
        plot(audio, kinds=[], out=str(tmp_path / "x.png"))
    for out in ("x.jpg", "x", "x.png.pdf"):
        with pytest.raises(InputError, match=r"Expected an output path ending in \.png or \.svg"):
            plot(audio, kinds=["mel"], out=str(tmp_path / out))
    with pytest.raises(InputError, match="existing directory"):
        plot(audio, kinds=["mel"], out=str(tmp_path / "missing" / "x.png"))
    with pytest.raises(InputError, match="sr to be a positive integer"):
        plot(audio, kinds=["mel"], out=str(tmp_path / "x.png"), sr=0)
    assert list(tmp_path.iterdir()) == []


def test_invisible_segment(store: str, tmp_path: Path) -> None:
    n = open_store(store).sizes["segment"]
    for segment in (n + 100, -1):
        with pytest.raises(InputError, match=f"Expected a visible segment of .*, got {segment}"):
            plot(store, segment=segment, kinds=["mel"], out=str(tmp_path / "x.png"))
    with pytest.raises(InputError, match="integer store index"):
        plot(store, segment=True, kinds=["mel"], out=str(tmp_path / "x.png"))
    assert list(tmp_path.iterdir()) == []


def test_missing_files(corpus: Path, store: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        plot(str(tmp_path / "nope.wav"), kinds=["waveform"], out=str(tmp_path / "x.png"))
    with pytest.raises(InputError, match="is a directory"):
        plot(store, kinds=["waveform"], out=str(tmp_path / "x.png"))  # a store needs a segment
    with pytest.raises(InputError, match="Expected a feature store"):
        plot(str(corpus / "tones"), segment=0, kinds=["mel"], out=str(tmp_path / "x.png"))

    # a store whose audio file has gone: stored kinds still draw, sample kinds say why they cannot
    (tmp_path / "audio" / "tones").mkdir(parents=True)
    audio = tmp_path / "audio" / "tones" / "a440.wav"
    shutil.copy(corpus / "tones" / "a440.wav", audio)
    gone = str(tmp_path / "gone.zarr")
    extract([tmp_path / "audio"], gone, FeatureConfig(n_mels=32), scheduler="synchronous", label_from="parent",
            progress=False)
    audio.unlink()
    for kind in ("waveform", "spectrogram", "spectral", "zcr"):
        with pytest.raises(InputError, match=rf"readable for the {kind} figure, got .*a440\.wav: file not found"):
            plot(gone, segment=1, kinds=["mel", kind], out=str(tmp_path / "figs.png"))
    assert not list(tmp_path.glob("figs*"))
    assert_png(plot(gone, segment=1, kinds=["mel"], out=str(tmp_path / "mel.png"))[0])


def test_store_without_the_variables_a_kind_needs(corpus: Path, tmp_path: Path) -> None:
    path = str(tmp_path / "mel-only.zarr")
    extract([corpus / "tones"], path, FeatureConfig(features=("mel",), n_mels=32), scheduler="synchronous",
            label_from="parent", progress=False)
    with pytest.raises(InputError, match="Expected chroma in the store for the chroma figure, got features mel"):
        plot(path, segment=0, kinds=["chroma"], out=str(tmp_path / "x.png"))
    # the waveform draws without the optional RMS overlay
    assert_png(plot(path, segment=0, kinds=["waveform"], out=str(tmp_path / "w.png"))[0])


def test_a_changed_file_is_noted(corpus: Path, tmp_path: Path) -> None:
    """A store segment whose file changed since extraction says so in the title (when its
    audio is re-decoded); the stored-only kinds do not look at the file."""
    (tmp_path / "audio" / "tones").mkdir(parents=True)
    audio = tmp_path / "audio" / "tones" / "a440.wav"
    shutil.copy(corpus / "tones" / "a440.wav", audio)
    path = str(tmp_path / "s.zarr")
    extract([tmp_path / "audio"], path, FeatureConfig(n_mels=32), scheduler="synchronous", label_from="parent",
            progress=False)
    assert "changed" not in _from_store(path, 0, ["waveform"], None).title
    y, sr = sf.read(audio, dtype="float32")
    sf.write(audio, 0.5 * y, sr, subtype="FLOAT")  # same length, other bytes and size
    assert _from_store(path, 0, ["waveform"], None).title.endswith("(file changed since extraction)")
    assert "changed" not in _from_store(path, 0, ["mel"], None).title
