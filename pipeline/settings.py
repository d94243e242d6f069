"""Runtime knobs, in one place: Dask's config under ``pipeline.*``.

They change how a run goes, never the numbers it stores (those are the :class:`FeatureConfig`'s,
kept in the store). Set them like any Dask setting::

    dask.config.set({"pipeline.batch-segments": 16})        # in Python
    DASK_PIPELINE__PROBE_BATCH=256 audio-pipeline extract ...  # in the environment
    # or a YAML file under ~/.config/dask/ with a top-level ``pipeline:`` key

A local cluster's workers get the client's config when they start; the environment reaches
workers everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask.config

from .errors import ConfigError

__all__ = ["SETTINGS", "Setting", "setting"]


@dataclass(frozen=True)
class Setting:
    """One knob: its default, its kind (``int`` or ``float``, positive; or zero where
    ``zero_means`` says what zero does) and what it does."""

    default: float
    kind: type
    doc: str
    zero_means: str = ""


SETTINGS: dict[str, Setting] = {
    "batch-segments": Setting(8, int, "segments featurised at once: bounds the kernels' memory whatever the chunk size "
                              "(8 keep a batch's spectra near the cache: 16% faster than 32)"),
    "probe-batch": Setting(64, int, "headers probed per task on a cluster; a default run of at most this many files "
                           "is probed in the client, to decide whether to run in-process"),
    "retries": Setting(2, int, "times a chunk or probe task is retried after its worker died"),
    "connect-timeout": Setting(5.0, float, "seconds to reach a Dask scheduler given with --scheduler"),
    "in-process-below-seconds": Setting(1800.0, float, "audio below which a default run stays in this process: a local "
                                        "cluster costs about 8 s here, which its second core earns back only past "
                                        "about 2 h of audio on a 2-core machine (docs/performance.md)"),
    "lock-ttl-seconds": Setting(60.0, float, "seconds after its last renewal that a store's claim from another host "
                                "expires (a live run renews every quarter of it)"),
    "template-wait-seconds": Setting(600.0, float, "how long a chunk task waits for a new store's template"),
    "outside-batch-segments": Setting(128, int, "segments of an outside file (similar, plot) featurised per decode, "
                                      "which bounds memory for long files"),
    "crash-after-chunks": Setting(0, int, "for crash tests: the extract (or embed) client kills its own process (SIGKILL) once "
                                  "this many chunks of the run are done in the store", zero_means="never"),
}

dask.config.update_defaults({"pipeline": {name: s.default for name, s in SETTINGS.items()}})


def setting(name: str) -> Any:
    """The value of knob ``pipeline.<name>``, checked (a positive int or float; zero too where
    the knob says what zero means).

    Raises
    ------
    ConfigError
        An unknown knob, or a value that is not a positive number of its kind.
    """
    if name not in SETTINGS:
        raise ConfigError(f"Expected a knob out of {', '.join(sorted(SETTINGS))}, got pipeline.{name}")
    spec = SETTINGS[name]
    raw = dask.config.get(f"pipeline.{name}", spec.default)
    try:
        value = spec.kind(float(raw)) if spec.kind is int and float(raw).is_integer() else spec.kind(raw)
    except (TypeError, ValueError):
        value = None
    lowest_ok = value is not None and (value > 0 or (value == 0 and bool(spec.zero_means)))
    if not lowest_ok or isinstance(raw, bool) or (spec.kind is int and float(raw) != value):
        what = "a non-negative" if spec.zero_means else "a positive"
        raise ConfigError(f"Expected pipeline.{name} to be {what} {spec.kind.__name__}, got {raw!r}")
    return value
