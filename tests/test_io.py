"""Listing, manifest, decoding and resampling against librosa.load; labels and splits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from conftest import require_tool

from pipeline.decode import decode_range
from pipeline.errors import DecodeError, InputError
from pipeline.io import list_inputs, sanitize_storage_options
from pipeline.labels import hash_split, label_from_parent, read_labels_csv
from pipeline.probe import probe_file
from pipeline.schema import resampled_length


def test_list_inputs_recurses_globs_and_sorts(corpus: Path) -> None:
    found = list_inputs([corpus])
    assert found == sorted(found)
    assert {Path(p).name for p in found} == {"a440.wav", "chirp16k.flac", "white.wav", "short.wav", "pink.ogg"}
    assert list_inputs([str(corpus / "*" / "*.wav")]) == sorted(str(p) for p in corpus.glob("*/*.wav"))
    # the same file named twice is listed once
    assert len(list_inputs([corpus / "tones" / "a440.wav", corpus / "tones"])) == 2


def test_missing_inputs_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No such file or directory"):
        list_inputs([tmp_path / "nope.wav"])
    with pytest.raises(InputError, match="No files match"):
        list_inputs([str(tmp_path / "*.flac")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="No audio files"):
        list_inputs([tmp_path / "empty"])
    with pytest.raises(InputError, match="at least one input"):
        list_inputs([])


def test_glob_keeps_a_directory_named_like_audio(tmp_path: Path) -> None:
    (tmp_path / "x.wav").mkdir()
    (found,) = list_inputs([str(tmp_path / "*.wav")])
    assert probe_file(found).error == "is a directory, not an audio file"


def test_probe_reads_headers(corpus: Path) -> None:
    info = probe_file(str(corpus / "tones" / "chirp16k.flac"))
    assert (info.sample_rate, info.channels, info.frames) == (16000, 2, int(4.2 * 16000))
    assert info.error == "" and info.size > 0 and info.fingerprint.startswith(f"{info.size}-")


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file"), (b"this is not audio at all" * 10, "not a recognised audio format")],
)
def test_probe_reports_bad_files_in_words(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    assert reason in probe_file(str(path)).error


@pytest.mark.parametrize("rel", ["tones/a440.wav", "tones/chirp16k.flac", "noise/white.wav", "noise/short.wav", "noise/pink.ogg"])
@pytest.mark.parametrize("sr", [22050, 16000])
def test_whole_decode_equals_librosa_load(corpus: Path, rel: str, sr: int) -> None:
    path = str(corpus / rel)
    info = probe_file(path)
    got = decode_range(path, sr=sr, native_sr=info.sample_rate, declared_frames=info.frames)
    ref, _ = librosa.load(path, sr=sr, mono=True)
    assert got.y.shape == ref.shape == (resampled_length(info.frames, info.sample_rate, sr),)
    np.testing.assert_allclose(got.y, ref, atol=1e-6)
    assert got.warning == ""


@pytest.mark.parametrize(("native", "sr"), [(44100, 22050), (48000, 22050), (16000, 22050), (22050, 22050), (8000, 16000)])
def test_range_decode_matches_whole_file(tmp_path: Path, rng: np.random.Generator, native: int, sr: int) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, rng.normal(0, 0.2, (native * 12, 2)).astype(np.float32), native, subtype="FLOAT")
    ref, _ = librosa.load(path, sr=sr, mono=True)
    n = ref.size
    for start, stop in [(0, sr * 3), (sr * 3, sr * 6 + 17), (n - sr * 2 - 5, n), (1, 2)]:
        got = decode_range(str(path), sr=sr, native_sr=native, declared_frames=native * 12, start=start, stop=stop)
        np.testing.assert_allclose(got.y, ref[start:stop], atol=2e-6, err_msg=f"[{start}, {stop})")


@pytest.mark.parametrize(("native", "sr"), [(44100, 22050), (48000, 22050), (16000, 22050), (22050, 22050)])
def test_a_samples_bits_do_not_depend_on_the_range_that_asks_for_it(tmp_path: Path, rng: np.random.Generator,
                                                                     native: int, sr: int) -> None:
    """A long resampled file is resampled in fixed tiles: whichever range (chunk) asks for a
    sample, across tile edges or not, gets the same bits as the whole-file decode."""
    path = tmp_path / "long.wav"
    seconds = 47
    sf.write(path, rng.normal(0, 0.2, (native * seconds, 2)).astype(np.float32), native, subtype="FLOAT")
    frames = native * seconds
    whole = decode_range(str(path), sr=sr, native_sr=native, declared_frames=frames).y
    ref, _ = librosa.load(path, sr=sr, mono=True)
    np.testing.assert_allclose(whole, ref, atol=2e-6)
    n, seg = whole.size, 3 * sr
    edge = round(20 * sr)  # near the first tile's end
    for start, stop in [(0, seg), (seg, 5 * seg), (edge - 7, edge + seg), (edge, edge + 1), (edge + 3, n),
                        (n - seg - 5, n), (2 * edge - 1, 2 * edge + 1), (1, 2), (5 * seg + 11, 14 * seg)]:
        got = decode_range(str(path), sr=sr, native_sr=native, declared_frames=frames, start=start, stop=stop).y
        assert got.shape == (stop - start,), (start, stop)
        np.testing.assert_array_equal(got, whole[start:stop], err_msg=f"[{start}, {stop})")


def test_nonfinite_samples_fail(tmp_path: Path) -> None:
    y = np.zeros(4000, dtype=np.float32)
    y[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, y, 8000, subtype="FLOAT")
    with pytest.raises(DecodeError, match="non-finite"):
        decode_range(str(path), sr=8000, native_sr=8000, declared_frames=4000)


def test_truncated_wav_keeps_audio_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    sf.write(path, np.full(22050 * 4, 0.1, dtype=np.float32), 22050, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: 44 + 2 * 22050 * 2])  # header says 4 s, 2 s remain
    # the probe counts the frames the file holds, and says what its header declared
    info = probe_file(str(path))
    assert (info.frames, info.error) == (44100, "")
    assert info.warning == "truncated: the header declares 88200 frames (4.000 s), the file holds 44100 (2.000 s)"
    whole = decode_range(str(path), sr=22050, native_sr=info.sample_rate, declared_frames=info.frames)
    assert whole.warning == ""
    # a decode that is told the header's frames keeps the audio there is and says so
    cut = decode_range(str(path), sr=22050, native_sr=info.sample_rate, declared_frames=88200)
    assert cut.warning.startswith("truncated: decoded 44100 of 88200 frames")
    assert cut.y.size == whole.y.size == 22050 * 2
    np.testing.assert_array_equal(cut.y, whole.y)
    np.testing.assert_array_equal(whole.y, sf.read(path, dtype="float32")[0])


def test_mp3_and_aiff_decode(tmp_path: Path) -> None:
    require_tool("ffmpeg")
    t = np.arange(22050 * 3) / 22050
    y = (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    aiff = tmp_path / "a.aiff"
    sf.write(aiff, y, 22050)
    wav = tmp_path / "a.wav"
    sf.write(wav, y, 22050)
    mp3 = tmp_path / "a.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), str(mp3)], check=True)
    for path in (aiff, mp3):
        info = probe_file(str(path))
        assert info.error == "", info.error
        got = decode_range(str(path), sr=22050, native_sr=info.sample_rate, declared_frames=info.frames)
        ref, _ = librosa.load(path, sr=22050)
        n = min(got.y.size, ref.size)
        np.testing.assert_allclose(got.y[:n], ref[:n], atol=1e-5)


def test_labels_csv_resolves_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("path,label,split\nsub/a.wav,jazz,train\n/abs/b.wav,rock,\ns3://bk/c.wav,pop,test\n")
    table = read_labels_csv(str(tmp_path / "labels.csv"))
    assert table == {
        str(tmp_path / "sub" / "a.wav"): ("jazz", "train"),
        "/abs/b.wav": ("rock", ""),
        "s3://bk/c.wav": ("pop", "test"),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [("file,genre\na.wav,x\n", "columns path,label"), ("path,label,split\na.wav,x,holdout\n", "split in train"),
     ("path,label\na.wav,jazz\nb.wav,rock\n./a.wav,rock\n", r"one label and split per path .*'jazz', ''\) on line 2 and as \('rock', ''\) on line 4")],
)
def test_bad_labels_csv(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "l.csv").write_text(text)
    with pytest.raises(InputError, match=message):
        read_labels_csv(str(tmp_path / "l.csv"))
    with pytest.raises(InputError, match="No such labels file"):
        read_labels_csv(str(tmp_path / "missing.csv"))


def test_hash_split_is_deterministic_and_proportional() -> None:
    uris = [f"/data/genre/clip{i}.wav" for i in range(3000)]
    splits = [hash_split(u) for u in uris]
    assert splits == [hash_split(u) for u in uris]
    share = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert 0.75 < share["train"] < 0.85 and 0.07 < share["val"] < 0.13
    assert label_from_parent("s3://bucket/genres/jazz/jazz.00001.wav") == "jazz"


def test_credentials_never_go_into_storage_options() -> None:
    assert sanitize_storage_options({"endpoint_url": "http://127.0.0.1:9"}) == {"endpoint_url": "http://127.0.0.1:9"}
    with pytest.raises(InputError, match="secret"):
        sanitize_storage_options({"key": "AKIA", "secret": "s3cr3t"})
    with pytest.raises(InputError, match=r"client_kwargs\.aws_secret_access_key"):
        sanitize_storage_options({"client_kwargs": {"aws_secret_access_key": "x"}})


@pytest.mark.parametrize("channels", [1, 2])
def test_pcm16_decodes_as_libsndfile_floats(tmp_path: Path, rng: np.random.Generator, channels: int) -> None:
    """16-bit PCM is scaled by numpy; the samples are libsndfile's float conversion, bit for bit."""
    path = tmp_path / "pcm16.wav"
    ints = rng.integers(-32768, 32767, size=(30_000, channels), endpoint=True).astype(np.int16)
    ints[:2] = [[-32768] * channels, [32767] * channels]
    sf.write(path, ints, 8000, subtype="PCM_16")
    expected, _ = sf.read(path, dtype="float32", always_2d=True)
    got = decode_range(str(path), sr=8000, native_sr=8000, declared_frames=30_000).y
    np.testing.assert_array_equal(got, expected.mean(axis=1, dtype=np.float32) if channels > 1 else expected[:, 0])
