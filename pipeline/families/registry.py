"""The feature-family registry: every family declared once, everything else derived from it.

A :class:`Family` says what it stores (its :class:`Variable` s, their bins :class:`Axis` and
units), on which frames (its :class:`Framing`), what shared intermediates it consumes and how
to compute a batch of segments from them. Config validation, the store template, the arrays a
chunk task allocates, the summaries, ``query``'s family names, ``plot``'s kinds, the report,
the training lookup, ``audio-pipeline features`` and the table in ``docs/store.md`` all read
this registry. Declarations are light (numpy only): kernels import what they need when they
run, so that commands that only read a store never import librosa.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from ..spectrum import Precision
    from .inputs import Inputs

__all__ = [
    "INTERMEDIATES",
    "STFT_FRAMING",
    "Axis",
    "Family",
    "Framing",
    "Variable",
    "all_families",
    "default_names",
    "family",
    "family_names",
    "is_frame_dim",
    "iter_variables",
    "register",
    "stft_precision",
    "variable",
]

#: The shared intermediates a family may consume (:class:`~pipeline.families.inputs.Inputs`);
#: each is computed once per batch, and only if a requested family asks for it. A family may
#: also consume another family's output: ``"family:<name>"``.
INTERMEDIATES: Mapping[str, str] = {
    "waveform": "the zero-padded segments, float32 (n, samples)",
    "magnitude": "|STFT| of the config's framing, float32 (n, frames, 1 + n_fft // 2)",
    "power": "|STFT|^2, float32 (n, frames, 1 + n_fft // 2)",
    "mel_power": "mel filterbank of the power spectrum, float32 (n, frames, n_mels)",
    "mel_db": "power_to_db of mel_power (ref=1, top_db=None), float32 (n, frames, n_mels)",
}

#: how a parity test compares a variable with its reference (``pipeline.testing.assert_close``)
Tolerance = Literal["db", "relative", "coefficients"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Axis:
    """A bins axis of one or more variables.

    ``size`` gives its length from the config; ``values`` its coordinate (bin indices when
    ``None``). Axis names never equal a variable's name (``mel_band``, not ``mel``).
    """

    name: str
    size: Callable[[FeatureConfig], int]
    description: str
    units: str = "1"
    values: Callable[[FeatureConfig], np.ndarray] | None = None
    #: the coordinate's name when it is not the axis's (``mel_frequency`` on ``mel_band``)
    coord_name: str | None = None

    def coordinate(self, config: FeatureConfig) -> np.ndarray:
        """The axis's coordinate values."""
        if self.values is None:
            return np.arange(self.size(config), dtype=np.int32)
        return np.asarray(self.values(config))


@dataclass(frozen=True)
class Framing:
    """The frames of a segment a family computes on.

    Frame ``t`` is centred ``first_centre + t * hop`` samples from the segment's start. The
    frames holding real audio of a segment with ``m`` real samples (the rest zero-padding) are
    those whose centre lies within them: summaries are taken over those.
    """

    dim: str
    hop: Callable[[FeatureConfig], int]
    n_frames: Callable[[FeatureConfig], int]
    first_centre: Callable[[FeatureConfig], int]
    description: str

    def valid_frames(self, config: FeatureConfig, samples: np.ndarray) -> np.ndarray:
        """Frames with real audio for segments of ``samples`` real samples ``[shape=(n,)]``."""
        m = np.asarray(samples, dtype=np.int64)
        hop, first = self.hop(config), self.first_centre(config)
        count = np.where(m > first, (m - first - 1) // hop + 1, 1)
        return np.where(m > 0, np.clip(count, 1, self.n_frames(config)), 0).astype(np.int32)

    def times(self, config: FeatureConfig) -> np.ndarray:
        """Each frame's centre from the segment's start, in seconds ``[shape=(frames,)]``."""
        t: np.ndarray = (self.first_centre(config) + np.arange(self.n_frames(config)) * self.hop(config)) / config.sr
        return t


def _stft_frames(config: FeatureConfig) -> int:
    return config.n_frames


#: The default framing: the config's centred STFT (``n_fft``, ``hop_length``), dimension ``frame``.
STFT_FRAMING = Framing(
    dim="frame",
    hop=lambda c: c.hop_length,
    n_frames=_stft_frames,
    first_centre=lambda c: 0,
    description="centred STFT frames: n_fft window, hop_length hop, zero-padded by n_fft // 2",
)


@dataclass(frozen=True)
class Variable:
    """One stored variable of a family.

    A frame-level variable (``per_frame``) is stored ``(segment, frame[, bins])`` with
    ``<name>_mean`` and ``<name>_std`` over the segment's valid frames; a per-segment one
    (``per_frame=False``, e.g. ``tempo``) is stored ``(segment[, bins])`` without summaries.
    """

    name: str
    description: str
    units: str
    bins: Axis | None = None
    per_frame: bool = True
    tolerance: Tolerance = "relative"


@dataclass(frozen=True)
class Family:
    """A feature family: what it stores and how a batch of segments is computed.

    Parameters
    ----------
    name : str
        Lower-case identifier, given to ``--features``.
    version : str
        Changes whenever the numbers change; stored in the store's ``families`` attribute.
    variables : tuple of Variable
        What it stores, in store order.
    compute : callable ``(inputs, config) -> dict``
        ``compute(inputs, config)`` returns one float32 array per variable for the batch
        ``inputs`` (:class:`~pipeline.families.inputs.Inputs`):
        ``[shape=(n, framing.n_frames(config)[, bins])]`` per frame, ``[shape=(n[, bins])]``
        per segment. Keyword-free, no I/O.
    reference : str
        The reference definition, one line (docs, ``audio-pipeline features``).
    reference_fn : callable ``(y, config) -> dict``, optional
        The reference computed for ONE segment by the reference library (tests only: it may
        import heavy packages).
    consumes : tuple of str
        Intermediates (:data:`INTERMEDIATES`) and ``family:<name>`` it uses.
    framing : Framing
        Its frames (the config's STFT unless it has its own).
    check : callable ``(config) -> None``, optional
        Raises :class:`~pipeline.errors.ConfigError` for a config it cannot run with.
    default : bool
        In the default feature set.
    figure : {"image", "lines", None}
        How ``plot`` draws it: one image per variable with bins, lines for the rest.
    origin : mapping
        Where it came from: ``{"module": ...}`` for a built-in, plus ``version`` and
        ``source_sha256`` for a plugin (stored with the store).
    float64_stft : bool
        Its numbers need librosa's STFT bit for bit (numpy's float64 transform): chroma's
        per-segment tuning estimate is an argmax that the last bits of the power spectrum can
        tip; spectral, contrast and onset miss their tolerances on the float32 transform's
        noise floor (measured by the parity tests). A run holding such a family, or one
        consuming it (``family:<name>``), computes all its spectra that way
        (:func:`stft_precision`); every other run transforms float32 frames (about 1.5x as
        fast; within the declared tolerances of librosa).
    """

    name: str
    version: str
    variables: tuple[Variable, ...]
    compute: Callable[[Inputs, FeatureConfig], dict[str, np.ndarray]]
    reference: str
    reference_fn: Callable[[np.ndarray, FeatureConfig], dict[str, np.ndarray]] | None = None
    consumes: tuple[str, ...] = ()
    framing: Framing = STFT_FRAMING
    check: Callable[[FeatureConfig], None] | None = None
    default: bool = False
    figure: Literal["image", "lines"] | None = "image"
    origin: Mapping[str, str] = field(default_factory=dict)
    float64_stft: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"Expected a family name of lower-case letters, digits and _, got {self.name!r}")
        if not self.variables:
            raise ConfigError(f"Expected family {self.name} to declare at least one variable, got none")
        for item in self.consumes:
            if item not in INTERMEDIATES and not item.startswith("family:"):
                raise ConfigError(
                    f"Expected family {self.name} to consume intermediates out of "
                    f"{', '.join(INTERMEDIATES)} or family:<name>, got {item!r}"
                )
        if not is_frame_dim(self.framing.dim):
            raise ConfigError(f"Expected family {self.name}'s frame axis to be named frame or <name>_frame, got {self.framing.dim!r}")
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise ConfigError(f"Expected distinct variable names in family {self.name}, got {names}")

    @property
    def variable_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    def shape(self, var: Variable, config: FeatureConfig) -> tuple[int, ...]:
        """The shape of one segment of ``var``: ``(frames[, bins])`` or ``([bins])``."""
        frames = (self.framing.n_frames(config),) if var.per_frame else ()
        bins = (var.bins.size(config),) if var.bins is not None else ()
        return (*frames, *bins)

    def dims(self, var: Variable) -> tuple[str, ...]:
        """The store's dimensions of ``var``."""
        frames = (self.framing.dim,) if var.per_frame else ()
        bins = (var.bins.name,) if var.bins is not None else ()
        return ("segment", *frames, *bins)

    def describe(self) -> dict[str, Any]:
        """What the store records of this family: version and origin."""
        return {"version": self.version, **self.origin}


def is_frame_dim(dim: str) -> bool:
    """A frame axis: ``frame`` (the STFT's) or a family's own ``<name>_frame``."""
    return dim == "frame" or dim.endswith("_frame")


_REGISTRY: dict[str, Family] = {}


def register(fam: Family, *, replace: bool = False) -> Family:
    """Add ``fam`` to the registry (after the families already there) and return it.

    Raises
    ------
    ConfigError
        A family of that name is registered already (unless ``replace``), or one of its
        variables or axes clashes with another family's.
    """
    if fam.name in _REGISTRY and not replace:
        old = _REGISTRY[fam.name]
        if old.describe() == fam.describe() and old.variable_names == fam.variable_names:
            return old  # the same declaration imported twice (a plugin loaded again)
        raise ConfigError(f"Expected a new feature family name, got {fam.name!r} registered already by {old.origin.get('module', '?')}")
    taken = {v.name: f.name for f in _REGISTRY.values() if f.name != fam.name for v in f.variables}
    axes = {f.framing.dim for f in _REGISTRY.values()} | {
        v.bins.name for f in _REGISTRY.values() for v in f.variables if v.bins is not None}
    reserved = {"segment", "file", "chunk", "label", "split"}
    for var in fam.variables:
        if var.name in taken:
            raise ConfigError(f"Expected family {fam.name}'s variable {var.name} to be new, got one of family {taken[var.name]}")
        if var.name in axes | reserved or var.name.startswith(("segment_", "file_", "chunk_")):
            raise ConfigError(f"Expected family {fam.name}'s variable {var.name} not to be a dimension or coordinate name")
    _REGISTRY[fam.name] = fam
    return fam


def family(name: str) -> Family:
    """The registered family ``name``.

    Raises
    ------
    ConfigError
        No such family is registered.
    """
    _builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"Expected a feature family out of {', '.join(_REGISTRY)}, got {name!r}"
            " (a plugin's family needs --plugin)"
        ) from None


def all_families() -> tuple[Family, ...]:
    """Every registered family, in store order (built-ins first, then plugins as loaded)."""
    _builtins()
    return tuple(_REGISTRY.values())


def family_names() -> tuple[str, ...]:
    return tuple(f.name for f in all_families())


def default_names() -> tuple[str, ...]:
    """The default feature set."""
    return tuple(f.name for f in all_families() if f.default)


def variable(name: str) -> tuple[Family, Variable]:
    """The family and declaration of a stored variable ``name`` (e.g. ``spectral_rolloff``)."""
    for fam in all_families():
        for var in fam.variables:
            if var.name == name:
                return fam, var
    raise ConfigError(f"Expected a feature variable, got {name!r}")


def iter_variables(names: tuple[str, ...]) -> Iterator[tuple[Family, Variable]]:
    """``(family, variable)`` of the families ``names``, in store order."""
    for name in names:
        fam = family(name)
        for var in fam.variables:
            yield fam, var


def stft_precision(names: Iterable[str]) -> Precision:
    """The precision of the STFT a run of the families ``names`` computes its spectra in.

    ``"float64"`` (librosa's bits) when one of them, or a family one of them consumes
    (``family:<name>``, transitively), declares ``float64_stft``; ``"float32"`` otherwise.
    """
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        fam = family(name)
        if fam.float64_stft:
            return "float64"
        todo.extend(item.removeprefix("family:") for item in fam.consumes if item.startswith("family:"))
    return "float32"


_LOADED = False


def _builtins() -> None:
    """Register the built-in families, then installed packages' (entry points), once."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from . import builtin  # noqa: F401
        from .plugins import load_entry_points

        load_entry_points()
