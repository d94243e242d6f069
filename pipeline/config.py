"""Frozen configuration dataclasses, their validation, and their dict round trip."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from .errors import ConfigError
from .families.registry import default_names, family, family_names, stft_precision

__all__ = [
    "ALL_FEATURES",
    "DEFAULT_FEATURES",
    "FeatureConfig",
    "parse_features",
    "stft_frames",
]

#: The built-in feature families, in store order (``audio-pipeline features`` lists them with
#: plugins'); declared in :mod:`pipeline.families`.
ALL_FEATURES: tuple[str, ...] = family_names()
#: The default feature set: the classic tutorial's families.
DEFAULT_FEATURES: tuple[str, ...] = default_names()


def stft_frames(n_samples: int, n_fft: int, hop_length: int) -> int:
    """Frames of a ``center=True`` STFT of ``n_samples``: padded by ``n_fft // 2`` on both sides."""
    return 1 + (n_samples + 2 * (n_fft // 2) - n_fft) // hop_length


def parse_features(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Parse ``"mel,mfcc"`` or a sequence into a canonical (registry-ordered), de-duplicated tuple."""
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(item).strip().lower() for item in items if str(item).strip()]
    known = family_names()
    if not names:
        raise ConfigError(f"Expected at least one feature out of {', '.join(known)}, got none")
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ConfigError(
            f"Expected features out of {', '.join(known)}, got unknown {', '.join(unknown)}"
            " (a plugin's families need --plugin)"
        )
    return tuple(name for name in known if name in names)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigError(f"Expected {name} to be a positive integer, got {value!r}")
    if value <= 0:
        raise ConfigError(f"Expected {name} to be a positive integer, got {value!r}")
    return int(value)


def _positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"Expected {name} to be a positive number, got {value!r}")
    if value <= 0:
        raise ConfigError(f"Expected {name} to be a positive number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that determines the numbers in a store.

    Two stores made with equal configs hold equal arrays for equal audio. The config is
    stored in the store's attributes (:meth:`to_dict`) and is all that is needed to
    featurise a new file the same way (:meth:`from_dict`).
    """

    sr: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    n_mfcc: int = 20
    segment_seconds: float = 3.0
    segment_hop_seconds: float | None = None
    features: tuple[str, ...] = DEFAULT_FEATURES
    window: str = "hann"
    center: bool = True
    pad_mode: str = "constant"
    fmin: float = 0.0
    fmax: float | None = None
    n_chroma: int = field(default=12, repr=False)
    #: the STFT's arithmetic, ``"float64"`` (librosa's bits) or ``"float32"`` (about 1.5x as
    #: fast, within every family's tolerance of librosa where no family of ``features``
    #: declares ``float64_stft``); by default the faster one ``features`` allow. Stored with
    #: the store: a store's spectra are all computed one way (stores from before it: float64).
    stft_dtype: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sr", _positive_int("sr", self.sr))
        object.__setattr__(self, "n_fft", _positive_int("n_fft", self.n_fft))
        object.__setattr__(self, "hop_length", _positive_int("hop_length", self.hop_length))
        object.__setattr__(self, "n_mels", _positive_int("n_mels", self.n_mels))
        object.__setattr__(self, "n_mfcc", _positive_int("n_mfcc", self.n_mfcc))
        object.__setattr__(self, "n_chroma", _positive_int("n_chroma", self.n_chroma))
        seg = _positive_float("segment_seconds", self.segment_seconds)
        object.__setattr__(self, "segment_seconds", seg)
        hop = seg if self.segment_hop_seconds is None else self.segment_hop_seconds
        object.__setattr__(
            self, "segment_hop_seconds", _positive_float("segment_hop_seconds", hop)
        )
        object.__setattr__(self, "features", parse_features(self.features))
        if self.n_fft < 16:
            raise ConfigError(f"Expected n_fft >= 16, got {self.n_fft}")
        if self.n_mfcc > self.n_mels:
            raise ConfigError(f"Expected n_mfcc <= n_mels ({self.n_mels}), got {self.n_mfcc}")
        if self.segment_samples < self.n_fft // 2 + 1:
            raise ConfigError(
                f"Expected segment_seconds to hold at least n_fft/2 samples, got {seg} s"
            )
        if self.window != "hann":
            raise ConfigError(f"Expected window 'hann', got {self.window!r}")
        if self.center is not True:
            raise ConfigError(f"Expected center=True, got {self.center!r}")
        if self.pad_mode != "constant":
            raise ConfigError(f"Expected pad_mode 'constant', got {self.pad_mode!r}")
        fmin = float(self.fmin)
        if not math.isfinite(fmin) or fmin < 0:
            raise ConfigError(f"Expected fmin >= 0, got {self.fmin!r}")
        object.__setattr__(self, "fmin", fmin)
        fmax = self.sr / 2.0 if self.fmax is None else _positive_float("fmax", self.fmax)
        if not fmin < fmax <= self.sr / 2.0:
            raise ConfigError(f"Expected fmin < fmax <= sr/2 ({self.sr / 2}), got fmax={fmax}")
        object.__setattr__(self, "fmax", float(fmax))
        for name in self.features:
            check = family(name).check
            if check is not None:
                check(self)
        needed = stft_precision(self.features)
        dtype = needed if self.stft_dtype is None else self.stft_dtype
        if dtype not in ("float32", "float64"):
            raise ConfigError(f"Expected stft_dtype 'float32' or 'float64', got {self.stft_dtype!r}")
        if dtype == "float32" and needed == "float64":
            which = ", ".join(n for n in self.features if stft_precision((n,)) == "float64")
            raise ConfigError(f"Expected stft_dtype 'float64' with {which} (their numbers need librosa's float64 STFT), "
                              "got 'float32'")
        object.__setattr__(self, "stft_dtype", dtype)

    # -- derived sizes -------------------------------------------------------------------
    @property
    def segment_samples(self) -> int:
        """Samples per segment at ``sr``."""
        return round(self.segment_seconds * self.sr)

    @property
    def segment_hop_samples(self) -> int:
        """Samples between segment starts at ``sr``."""
        hop = self.segment_hop_seconds
        return round((self.segment_seconds if hop is None else hop) * self.sr)

    @property
    def n_frames(self) -> int:
        """STFT frames per segment."""
        return stft_frames(self.segment_samples, self.n_fft, self.hop_length)

    @property
    def n_freq(self) -> int:
        """Linear-frequency bins of the STFT."""
        return 1 + self.n_fft // 2

    def valid_frames(self, n_samples: int) -> int:
        """Frames holding real audio when a segment has ``n_samples`` real samples."""
        return int(self.valid_frames_of(np.asarray(n_samples)))

    def valid_frames_of(self, n_samples: np.ndarray) -> np.ndarray:
        """:meth:`valid_frames` of each of ``n_samples`` (real samples per segment)."""
        n = np.asarray(n_samples, dtype=np.int64)
        return np.where(n > 0, np.minimum(self.n_frames, 1 + n // self.hop_length), 0)

    @property
    def variables(self) -> tuple[str, ...]:
        """Every data variable this config's families produce, in store order (no summaries)."""
        return tuple(v.name for name in self.features for v in family(name).variables)

    @property
    def frame_variables(self) -> tuple[str, ...]:
        """The frame-level ones of :attr:`variables` (each has ``_mean`` and ``_std`` summaries)."""
        return tuple(v.name for name in self.features for v in family(name).variables if v.per_frame)

    # -- dict round trip ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict of every field (features as a list)."""
        data = asdict(self)
        data["features"] = list(self.features)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Build a config from :meth:`to_dict` output (or store attributes); extra keys are ignored."""
        names = {f.name for f in fields(cls)}
        # numpy scalars and arrays (attributes read back from netCDF) as plain Python values
        kwargs = {key: value.tolist() if hasattr(value, "tolist") else value for key, value in data.items() if key in names}
        for f in fields(cls):  # store attributes hold bools as 0/1 (netCDF has no bool)
            if isinstance(f.default, bool) and isinstance(kwargs.get(f.name), int):
                kwargs[f.name] = bool(kwargs[f.name])
        # a store made before the STFT's arithmetic was a choice computed it in float64
        kwargs.setdefault("stft_dtype", "float64")
        if "features" in kwargs and not isinstance(kwargs["features"], str):
            kwargs["features"] = tuple(kwargs["features"])
        return cls(**kwargs)

    def differences(self, other: FeatureConfig) -> list[str]:
        """Human-readable ``name: a != b`` for every field that differs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{key}: {mine[key]!r} != {theirs[key]!r}" for key in mine if mine[key] != theirs[key]]
