"""Runtime knobs: one table under dask.config ``pipeline.*``, checked, and read where they act."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import dask
import numpy as np
import pytest
import soundfile as sf

from pipeline.cluster import auto_scheduler
from pipeline.errors import ConfigError
from pipeline.settings import SETTINGS, setting


def test_defaults_come_from_the_table() -> None:
    for name, spec in SETTINGS.items():
        assert setting(name) == spec.default
        assert isinstance(setting(name), spec.kind)


@pytest.mark.parametrize(
    ("name", "value"),
    [("probe-batch", 0), ("probe-batch", -3), ("probe-batch", 2.5), ("probe-batch", "many"), ("retries", True),
     ("connect-timeout", 0.0), ("connect-timeout", None), ("crash-after-chunks", -1)],
)
def test_a_bad_value_is_a_one_line_config_error(name: str, value: object) -> None:
    with dask.config.set({f"pipeline.{name}": value}), pytest.raises(ConfigError, match=f"Expected pipeline.{name} to be"):
        setting(name)


def test_zero_is_allowed_only_where_it_means_something() -> None:
    with dask.config.set({"pipeline.crash-after-chunks": 0}):
        assert setting("crash-after-chunks") == 0
    with dask.config.set({"pipeline.retries": 0}), pytest.raises(ConfigError):
        setting("retries")


def test_an_unknown_knob_is_refused() -> None:
    with pytest.raises(ConfigError, match="Expected a knob out of"):
        setting("probe-batches")


def test_the_environment_sets_a_knob() -> None:
    code = "from pipeline.settings import setting; print(setting('probe-batch'), setting('connect-timeout'))"
    env = {**os.environ, "DASK_PIPELINE__PROBE_BATCH": "7", "DASK_PIPELINE__CONNECT_TIMEOUT": "2.5"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["7", "2.5"]


def test_probe_batch_and_in_process_threshold_decide_where_a_default_run_goes(tmp_path: Path) -> None:
    uris = []
    for i in range(3):
        path = tmp_path / f"{i}.wav"
        sf.write(path, np.zeros(22050 * 2, dtype=np.float32), 22050)  # 2 s each: 6 s in all
        uris.append(str(path))
    out = io.StringIO()
    scheduler, probed = auto_scheduler(uris, {}, client=None, scheduler=None, workers=None, out=out)
    assert scheduler == "synchronous" and probed is not None and set(probed) == set(uris)
    with dask.config.set({"pipeline.in-process-below-seconds": 6.0}):  # 6 s of audio is not below 6 s
        scheduler, probed = auto_scheduler(uris, {}, client=None, scheduler=None, workers=None, out=out)
    assert scheduler is None and probed is not None
    with dask.config.set({"pipeline.probe-batch": 2}):  # more files than one batch: not probed here
        assert auto_scheduler(uris, {}, client=None, scheduler=None, workers=None, out=out) == (None, None)
