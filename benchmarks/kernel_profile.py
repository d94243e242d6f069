"""Where the kernels' time goes: each stage of ``compute_features``, timed alone, one thread.

    python benchmarks/kernel_profile.py [--segments N] [--features mel --n-mels 80] [--stft float64]

Prints milliseconds per 32 segments of 3 s (96 s of audio) and each stage's share, in the order
``compute_features`` runs them (batches of the ``pipeline.batch-segments`` setting). The stages are
the kernels' own functions, called on the same audio; their sum is close to, not exactly, one
``compute_features`` call of the default set (which is timed last for comparison, with the
``--features`` given: its STFT path is the one the families declare, or ``--stft``'s).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BATCH_SEGMENTS, best_of, segments

from pipeline import FeatureConfig
from pipeline.families.inputs import compute
from pipeline.features import rms as rms_kernel
from pipeline.features import summarize, zero_crossing_rate
from pipeline.filterbanks import (
    bin_moments,
    chroma_basis,
    dct_basis,
    mel_basis,
    per_segment_product,
)
from pipeline.spectrum import magnitude_spectrogram, power_to_db
from pipeline.tuning import estimate_tuning


def stages(config: FeatureConfig) -> list[tuple[str, Callable[[np.ndarray], object]]]:
    """Each stage as a function of one batch of audio; later stages reuse earlier results."""
    sr, n_fft, hop = config.sr, config.n_fft, config.hop_length
    mel_t = mel_basis(sr, n_fft, config.n_mels, config.fmin, float(config.fmax or sr / 2))
    dct_t = dct_basis(config.n_mels, config.n_mfcc)
    cache: dict[str, np.ndarray] = {}

    def spectra(y: np.ndarray) -> None:
        cache["mag"] = magnitude_spectrogram(y=y, n_fft=n_fft, hop_length=hop)

    def spectra32(y: np.ndarray) -> None:
        magnitude_spectrogram(y=y, n_fft=n_fft, hop_length=hop, precision="float32")

    def power(y: np.ndarray) -> None:
        cache["power"] = np.square(cache["mag"])

    def mel(y: np.ndarray) -> None:
        p = cache["power"]
        cache["live"] = np.full(p.shape[0], p.shape[1])
        cache["mel"] = power_to_db(S=per_segment_product(p, mel_t, cache["live"]))

    def mfcc(y: np.ndarray) -> None:
        m = cache["mel"]
        per_segment_product(np.maximum(m, m.max() - np.float32(80.0)), dct_t, cache["live"])

    def tuning(y: np.ndarray) -> None:
        estimate_tuning(S=cache["power"], sr=sr, bins_per_octave=config.n_chroma)

    def chroma(y: np.ndarray) -> None:
        p = cache["power"]
        basis = chroma_basis(sr, n_fft, 0.0, config.n_chroma)
        per_segment_product(p, basis, cache["live"])

    def moments(y: np.ndarray) -> None:
        m = cache["mag"]
        per_segment_product(m.astype(np.float64), bin_moments(m.shape[-1]), cache["live"], dtype=np.float64)

    def rolloff(y: np.ndarray) -> None:
        m = cache["mag"].reshape(-1, cache["mag"].shape[-1])
        total = np.cumsum(m, axis=-1)
        np.count_nonzero(total < np.float32(0.85) * total[:, -1:], axis=-1)

    def zcr(y: np.ndarray) -> None:
        zero_crossing_rate(y=y, frame_length=n_fft, hop_length=hop)

    def rms(y: np.ndarray) -> None:
        rms_kernel(y=y, frame_length=n_fft, hop_length=hop)

    def summaries(y: np.ndarray) -> None:
        frames = np.full(y.shape[0], config.n_frames)
        summarize(cache["mel"].reshape(y.shape[0], config.n_frames, -1), frames)

    return [
        ("STFT: frames x window, float64 rFFT, |.| (bit for bit librosa)", spectra),
        ("  instead: float32 frames x window, float32 rFFT (scipy.fft), |.|", spectra32),
        ("power = |S|^2", power),
        ("mel: one product per segment + dB", mel),
        ("mfcc: clip 80 dB + DCT, a product per segment", mfcc),
        ("chroma tuning estimate (peaks in 150-4000 Hz)", tuning),
        ("chroma filterbank products", chroma),
        ("centroid + bandwidth: float64 moments", moments),
        ("rolloff: float32 running sum", rolloff),
        ("zero-crossing rate", zcr),
        ("RMS", rms),
        ("mean/std summaries (mel shown; all variables ~3x)", summaries),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=128)
    parser.add_argument("--features", default=None, help="families of the compute_features call (default set)")
    parser.add_argument("--n-mels", type=int, default=None)
    parser.add_argument("--stft", choices=("declared", "float64", "float32"), default="declared",
                        help="the compute_features call's STFT path: the families' (default) or forced")
    args = parser.parse_args(argv)
    config = FeatureConfig()
    run_config = FeatureConfig(**{k: v for k, v in (("features", args.features), ("n_mels", args.n_mels)) if v is not None})
    # forced for a before/after figure ("float64" is what every run transformed before the float32
    # path; "float32" also where a family declares float64, which no store may do)
    precision = run_config.stft_dtype if args.stft == "declared" else args.stft
    y = segments(args.segments, config)
    batches = [y[i : i + BATCH_SEGMENTS] for i in range(0, args.segments, BATCH_SEGMENTS)]
    per32 = 32 / args.segments * 1e3
    with threadpool_limits(limits=1):
        rows = []
        for label, stage in stages(config):
            def run(stage: Callable[[np.ndarray], object] = stage) -> None:
                for batch in batches:
                    stage(batch)
            # stages depend on the cache of the previous one: run in order, best of 3 per stage
            rows.append((label, best_of(3, run) * per32))
        whole = best_of(3, lambda: [compute(y[i : i + BATCH_SEGMENTS], run_config, precision)  # type: ignore[arg-type]
                                    for i in range(0, len(y), BATCH_SEGMENTS)]) * per32
    total = sum(ms for label, ms in rows if not label.startswith(" "))
    print(f"per 32 segments of 3 s (96 s of audio), 1 thread, batches of {BATCH_SEGMENTS}:")
    for label, ms in rows:
        print(f"  {ms:6.1f} ms  {100 * ms / total:4.0f}%  {label}")
    print(f"  {total:6.1f} ms        sum of the stages (the float64 STFT's; the indented row is not in it)")
    print(f"  {whole:6.1f} ms        compute_features as called ({96 / whole * 1e3:.0f}x real time; "
          f"features {','.join(run_config.features)}, n_mels {run_config.n_mels}, {precision} STFT)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
