"""The numerical reference: plain librosa calls on one segment, as the store schema defines them."""

from __future__ import annotations

import warnings

import librosa
import numpy as np

from pipeline.config import FeatureConfig


def reference_segment(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Frame-level variables for ONE zero-padded segment, laid out (frames[, bins])."""
    sr, n_fft, hop = config.sr, config.n_fft, config.hop_length
    common = {"n_fft": n_fft, "hop_length": hop}
    out: dict[str, np.ndarray] = {}
    feats = set(config.features)
    if "spectrogram" in feats:
        out["spectrogram"] = librosa.amplitude_to_db(
            np.abs(librosa.stft(y, **common)), ref=1.0, top_db=None
        ).T
    if "mel" in feats:
        mel = librosa.feature.melspectrogram(
            y=y, sr=sr, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax, **common
        )
        out["mel"] = librosa.power_to_db(mel, ref=1.0, top_db=None).T
    if "mfcc" in feats:
        out["mfcc"] = librosa.feature.mfcc(
            y=y, sr=sr, n_mfcc=config.n_mfcc, n_mels=config.n_mels, fmin=config.fmin,
            fmax=config.fmax, **common
        ).T
    if "chroma" in feats:
        with warnings.catch_warnings():
            # silence has no pitch to estimate tuning from: librosa warns and uses 0
            warnings.filterwarnings("ignore", "Trying to estimate tuning", UserWarning)
            out["chroma"] = librosa.feature.chroma_stft(y=y, sr=sr, **common).T
    if "spectral" in feats:
        out["spectral_centroid"] = librosa.feature.spectral_centroid(y=y, sr=sr, **common)[0]
        out["spectral_bandwidth"] = librosa.feature.spectral_bandwidth(y=y, sr=sr, **common)[0]
        out["spectral_rolloff"] = librosa.feature.spectral_rolloff(y=y, sr=sr, **common)[0]
    if "zcr" in feats:
        out["zero_crossing_rate"] = librosa.feature.zero_crossing_rate(
            y, frame_length=n_fft, hop_length=hop
        )[0]
    if "rms" in feats:
        out["rms"] = librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop)[0]
    return out


DB_VARS = {"mel", "spectrogram"}


def assert_close(name: str, got: np.ndarray, ref: np.ndarray) -> None:
    """The store schema's tolerance for one segment of one variable."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, (name, got.shape, ref.shape)
    assert np.all(np.isfinite(got)), name
    if name in DB_VARS:
        relevant = ref >= ref.max() - 80.0
        err = np.abs(got - ref)[relevant]
        assert err.max(initial=0.0) <= 0.01, f"{name}: max dB error {err.max()}"
    else:
        tol = (1e-3 if name == "mfcc" else 1e-4) * max(np.abs(ref).max(), 1e-12)
        err = np.abs(got - ref).max(initial=0.0)
        assert err <= tol, f"{name}: max error {err} > {tol}"
