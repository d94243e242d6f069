"""Tests for :mod:`pipeline.testing`: the librosa reference and the ``assert_*`` functions.

Each assertion passes on equal inputs and raises ``AssertionError`` on each kind of
difference it is there to catch (one test case per kind).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import librosa
import numpy as np
import numpy.typing as npt
import pytest
import xarray as xr

from pipeline.config import FeatureConfig
from pipeline.families import all_families
from pipeline.synth import noise, tone
from pipeline.testing import (
    assert_close,
    assert_segment_close,
    assert_stores_equal,
    reference_segment,
)

Array = npt.NDArray[Any]
#: the tutorial's families (the rest have their own parity tests)
CONFIG = FeatureConfig(features=("spectrogram", "mel", "mfcc", "chroma", "spectral", "zcr", "rms"), segment_seconds=0.5,
                       n_mels=32, fmin=30.0, fmax=8000.0)
#: variables compared in dB (or log) units, as their families declare
DB_VARS = frozenset(v.name for f in all_families() for v in f.variables if v.tolerance == "db")
BIN_HZ = CONFIG.sr / CONFIG.n_fft  # one STFT bin of spectral_rolloff, in Hz
SPECTRAL = FeatureConfig(features=("spectral",), segment_seconds=0.5)


def half_tone() -> Array:
    """A segment whose first half is a tone and whose second half is zero padding."""
    y = np.zeros(CONFIG.segment_samples, dtype=np.float32)
    half = CONFIG.segment_samples // 2
    y[:half] = tone(freq=440.0, seconds=half / CONFIG.sr, sr=CONFIG.sr)[:half]
    return y


# --------------------------------------------------------------------------- reference_segment


def test_reference_segment_is_the_plain_librosa_calls() -> None:
    y = noise(seconds=CONFIG.segment_seconds, sr=CONFIG.sr, seed=1)
    y[CONFIG.segment_samples // 2 :] = 0.0  # zero padding: over 80 dB below the noise
    ref = reference_segment(y, CONFIG)
    assert set(ref) == set(CONFIG.frame_variables)
    kw: dict[str, Any] = {"n_fft": CONFIG.n_fft, "hop_length": CONFIG.hop_length}
    sr = CONFIG.sr
    mel_kw: dict[str, Any] = {"n_mels": CONFIG.n_mels, "fmin": CONFIG.fmin, "fmax": CONFIG.fmax, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = {
            "spectrogram": librosa.amplitude_to_db(np.abs(librosa.stft(y, **kw)), ref=1.0, top_db=None).T,
            "mel": librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, **mel_kw), ref=1.0, top_db=None).T,
            "mfcc": librosa.feature.mfcc(y=y, sr=sr, n_mfcc=CONFIG.n_mfcc, **mel_kw).T,
            "chroma": librosa.feature.chroma_stft(y=y, sr=sr, **kw).T,
            "spectral_centroid": librosa.feature.spectral_centroid(y=y, sr=sr, **kw)[0],
            "spectral_bandwidth": librosa.feature.spectral_bandwidth(y=y, sr=sr, **kw)[0],
            "spectral_rolloff": librosa.feature.spectral_rolloff(y=y, sr=sr, **kw)[0],
            "zero_crossing_rate": librosa.feature.zero_crossing_rate(
                y, frame_length=CONFIG.n_fft, hop_length=CONFIG.hop_length)[0],
            "rms": librosa.feature.rms(y=y, frame_length=CONFIG.n_fft, hop_length=CONFIG.hop_length)[0],
        }
    for name, values in expected.items():
        assert ref[name].shape[0] == CONFIG.n_frames, name
        np.testing.assert_array_equal(ref[name], values, err_msg=name)


def test_reference_segment_computes_only_the_configured_families() -> None:
    config = FeatureConfig(features=("spectral", "rms"), segment_seconds=0.5)
    ref = reference_segment(half_tone(), config)
    assert list(ref) == ["spectral_centroid", "spectral_bandwidth", "spectral_rolloff", "rms"]


def test_reference_segment_of_silence_has_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = reference_segment(np.zeros(CONFIG.segment_samples, dtype=np.float32), CONFIG)
    assert set(ref) == set(CONFIG.frame_variables)
    assert all(np.isfinite(values).all() for values in ref.values())


# --------------------------------------------------------------------------- assert_close


def test_db_vars_are_the_db_variables() -> None:
    assert {"mel", "spectrogram"} <= DB_VARS
    assert not {"mfcc", "chroma", "rms", "spectral_rolloff"} & DB_VARS


@pytest.mark.parametrize("name", ["mel", "spectrogram", "mfcc", "chroma", "rms", "spectral_rolloff"])
def test_assert_close_passes_on_equal_values(name: str) -> None:
    ref = np.linspace(-60.0, 3.0, 40).reshape(8, 5)
    assert_close(name, ref.copy(), ref)
    assert_close(name, ref.astype(np.float32), ref.astype(np.float32))


def test_assert_close_shape_difference() -> None:
    ref = np.ones((8, 5))
    with pytest.raises(AssertionError, match=r"Expected rms of shape \(8, 5\), got \(5, 8\)"):
        assert_close("rms", np.ones((5, 8)), ref)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_assert_close_non_finite_value(bad: float) -> None:
    ref = np.ones(10)
    got = ref.copy()
    got[3] = bad
    with pytest.raises(AssertionError, match="Expected finite values of rms, got 1 non-finite"):
        assert_close("rms", got, ref)


@pytest.mark.parametrize("name", sorted(DB_VARS))
def test_assert_close_db_error_over_001_db(name: str) -> None:
    ref = np.linspace(-70.0, 0.0, 50)
    assert_close(name, ref + 0.0099, ref)  # within 0.01 dB, though far over 1e-4 of max |ref|
    with pytest.raises(AssertionError, match=rf"Expected {name} within 0\.01 dB, got a max dB error of 0\.0"):
        assert_close(name, ref + 0.011, ref)


def test_assert_close_db_error_below_the_80_db_window_is_ignored() -> None:
    ref = np.array([0.0, -10.0, -79.9, -80.1, -200.0])
    got = ref + np.array([0.0, 0.0, 0.0, 5.0, 50.0])  # large errors only below max - 80 dB
    assert_close("mel", got, ref)
    got[2] += 0.02  # but not within the window
    with pytest.raises(AssertionError, match=r"within 0\.01 dB"):
        assert_close("mel", got, ref)


def test_assert_close_relative_error_over_1e4_of_max_ref() -> None:
    ref = np.array([0.0, 0.5, -2.0, 1.0])  # max |ref| = 2: tolerance 2e-4
    assert_close("rms", ref + 1.9e-4, ref)
    with pytest.raises(AssertionError, match=r"Expected rms within 0\.0002, got a max error of 0\.0002"):
        assert_close("rms", ref + 2.1e-4, ref)


def test_assert_close_mfcc_allows_1e3_of_max_ref() -> None:
    ref = np.array([[-300.0, 20.0], [5.0, 0.0]])  # tolerance 0.3 for mfcc, 0.03 otherwise
    got = ref + 0.29
    assert_close("mfcc", got, ref)
    with pytest.raises(AssertionError, match="Expected chroma within"):
        assert_close("chroma", got, ref)
    with pytest.raises(AssertionError, match="Expected mfcc within"):
        assert_close("mfcc", ref + 0.31, ref)


def test_assert_close_all_zero_reference_has_a_floor() -> None:
    ref = np.zeros(6)
    assert_close("zero_crossing_rate", ref + 1e-17, ref)  # 1e-4 * 1e-12 floor, not zero tolerance
    with pytest.raises(AssertionError, match="Expected zero_crossing_rate within"):
        assert_close("zero_crossing_rate", ref + 1e-15, ref)


# --------------------------------------------------------------------------- assert_segment_close


def test_assert_segment_close_passes_on_the_reference_itself() -> None:
    y = half_tone()
    ref = reference_segment(y, CONFIG)
    assert_segment_close({name: v.astype(np.float32) for name, v in ref.items()}, ref, y, CONFIG)


def test_assert_segment_close_missing_variable() -> None:
    y = half_tone()
    ref = reference_segment(y, CONFIG)
    got = dict(ref)
    del got["chroma"]
    with pytest.raises(AssertionError, match="Expected variable chroma in the computed segment, got"):
        assert_segment_close(got, ref, y, CONFIG)


@pytest.mark.parametrize("name", CONFIG.frame_variables)
def test_assert_segment_close_catches_each_variable(name: str) -> None:
    y = half_tone()
    ref = reference_segment(y, CONFIG)
    got = dict(ref)
    values = ref[name].copy()
    values[2] += 1.0 + 0.05 * np.abs(values).max()  # frame 2 holds the tone: no rolloff tie there
    got[name] = values
    with pytest.raises(AssertionError, match=f"Expected {name} within"):
        assert_segment_close(got, ref, y, CONFIG)


def _rolloff_case(shift: Callable[[Array], Array]) -> tuple[dict[str, Array], dict[str, Array], Array]:
    y = half_tone()
    ref = reference_segment(y, SPECTRAL)
    got = dict(ref)
    got["spectral_rolloff"] = shift(ref["spectral_rolloff"].copy())
    return got, ref, y


def test_assert_segment_close_rolloff_may_move_one_bin_at_a_tie() -> None:
    # the zero-padded frames sit exactly on the 85% threshold (all cumulative energies are 0)
    def at_tail(r: Array) -> Array:
        r[-3:] += BIN_HZ
        return r

    got, ref, y = _rolloff_case(at_tail)
    assert_segment_close(got, ref, y, SPECTRAL)


def test_assert_segment_close_rolloff_may_not_move_two_bins_at_a_tie() -> None:
    def at_tail(r: Array) -> Array:
        r[-3:] += 2 * BIN_HZ
        return r

    got, ref, y = _rolloff_case(at_tail)
    with pytest.raises(AssertionError, match="Expected spectral_rolloff within"):
        assert_segment_close(got, ref, y, SPECTRAL)


def test_assert_segment_close_rolloff_may_not_move_one_bin_off_a_tie() -> None:
    def in_tone(r: Array) -> Array:
        r[2] += BIN_HZ
        return r

    got, ref, y = _rolloff_case(in_tone)
    with pytest.raises(AssertionError, match="Expected spectral_rolloff within"):
        assert_segment_close(got, ref, y, SPECTRAL)


# --------------------------------------------------------------------------- assert_stores_equal


def _report(chunk: int, seconds: float) -> str:
    return json.dumps({"chunk": chunk, "files_ok": 2, "timings": {"decode": seconds}})


def make_store() -> xr.Dataset:
    """A small dataset laid out like a feature store (NaN, ints, text, chunk reports)."""
    mel = np.arange(24, dtype=np.float32).reshape(4, 3, 2)
    mel[1, 0, 0] = np.nan
    return xr.Dataset(
        {
            "mel": (("segment", "frame", "mel_bin"), mel, {"units": "dB"}),
            "segment_file": ("segment", np.array([0, 0, 1, 1], dtype=np.int32)),
            "label": ("segment", np.array(["a", "a", None, "b"], dtype=object)),
            "chunk_report": ("chunk", np.array([_report(0, 1.5), ""], dtype=object)),
        },
        coords={"file_path": ("file", np.array(["x.wav", "y.wav"], dtype=object)),
                "mel_bin": ("mel_bin", np.array([0, 1], dtype=np.int64))},
        attrs={"created": "2026-12-02T13:00:00", "versions": "{}"},
    )


def test_assert_stores_equal_passes_on_equal_stores() -> None:
    a, b = make_store(), make_store()
    assert_stores_equal(a, b)
    b.attrs["created"] = "2026-12-03T09:00:00"  # what a run records about itself is not compared
    b["chunk_report"].values[0] = _report(0, 99.0)
    assert_stores_equal(a, b)


Change = Callable[[xr.Dataset], xr.Dataset]


def _set(name: str, index: tuple[int, ...], value: object) -> Change:
    def change(ds: xr.Dataset) -> xr.Dataset:
        values = ds[name].values.copy()
        values[index] = value
        return ds.assign({name: (ds[name].dims, values, ds[name].attrs)})
    return change


def _recoord(name: str, values: Array) -> Change:
    return lambda ds: ds.assign_coords({name: (ds[name].dims, values)})


DIFFERENCES: dict[str, tuple[Change, str]] = {
    "extra data variable": (lambda ds: ds.assign(rms=("segment", np.zeros(4, np.float32))),
                            r"Expected the same data variables, got \['rms'\] in one store only"),
    "missing coordinate": (lambda ds: ds.drop_vars("file_path"),
                           r"Expected the same coordinates, got \['file_path'\] in one store only"),
    "dtype": (lambda ds: ds.assign(mel=ds["mel"].astype(np.float64)), "mel identical in both stores, got dtype float32 != float64"),
    "dims": (lambda ds: ds.assign(segment_file=("seg", ds["segment_file"].values)), "segment_file identical in both stores, got dims"),
    "shape": (lambda ds: ds.isel(segment=slice(0, 3)), "identical in both stores, got dims"),
    "variable attributes": (lambda ds: ds.assign(mel=ds["mel"].assign_attrs(units="dBFS")), "mel identical in both stores, got attributes"),
    "one float value": (_set("mel", (3, 2, 1), np.float32(23.000002)), "mel identical in both stores, got 1 of 24 values differ"),
    "NaN against a number": (_set("mel", (1, 0, 0), np.float32(0.0)), "mel identical in both stores, got 1 of 24 values differ"),
    "a number against NaN": (_set("mel", (0, 0, 0), np.nan), "mel identical in both stores, got 1 of 24 values differ"),
    "one integer value": (_set("segment_file", (3,), 2), "segment_file identical in both stores, got 1 of 4 values differ"),
    "one text value": (_set("label", (0,), "b"), "label identical in both stores, got 1 of 4 values differ"),
    "None against text": (_set("label", (2,), "c"), "label identical in both stores, got 1 of 4 values differ"),
    "a coordinate value": (_recoord("file_path", np.array(["x.wav", "z.wav"], dtype=object)),
                           "file_path identical in both stores, got 1 of 2 values differ"),
    "a chunk report (not its timings)": (_set("chunk_report", (1,), _report(1, 1.5)),
                                         r"Expected equal chunk reports \(timings aside\), got different ones"),
}


@pytest.mark.parametrize("kind", list(DIFFERENCES))
def test_assert_stores_equal_catches_each_kind_of_difference(kind: str) -> None:
    change, message = DIFFERENCES[kind]
    a, b = make_store(), change(make_store())
    with pytest.raises(AssertionError, match=message):
        assert_stores_equal(a, b)
    with pytest.raises(AssertionError):
        assert_stores_equal(b, a)
