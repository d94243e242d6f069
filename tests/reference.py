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
def rolloff_ties(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Frames where librosa's cumulative energy sits within float32 rounding of the 85% threshold
    at the chosen bin or the one before: there, a change of the input in its last bits moves the
    rolloff by one bin, whoever computes it (a step function has no tolerance to offer)."""
    S = np.abs(librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length))
    total = np.cumsum(S, axis=0)
    threshold = 0.85 * total[-1]
    k = np.argmax(total >= threshold, axis=0)
    frames = np.arange(S.shape[1])

    def near(i: np.ndarray) -> np.ndarray:
        at = total[np.clip(i, 0, S.shape[0] - 1), frames]
        return np.abs(at - threshold) <= 1e-5 * np.maximum(threshold, 1e-30)

    return near(k) | near(k - 1)


def assert_segment_close(got: dict[str, np.ndarray], ref: dict[str, np.ndarray], y: np.ndarray, config: FeatureConfig) -> None:
    """Every variable of one segment within tolerance; the rolloff may move one bin at a tie."""
    for name, values in ref.items():
        g = np.asarray(got[name], dtype=np.float64)
        if name == "spectral_rolloff":
            tie = rolloff_ties(y, config) & (np.abs(g - values) <= config.sr / config.n_fft * 1.001)
            g = np.where(tie, values, g)
        assert_close(name, g, values)


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
