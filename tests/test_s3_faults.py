"""S3 faults: a flaky store still gives equal arrays; a dead one fails clearly and resumes later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import s3fs
from s3proxy import FaultyS3Proxy

from pipeline import FeatureConfig, extract
from pipeline.errors import StorageError
from pipeline.store import open_group, open_raw

pytestmark = pytest.mark.s3
CONFIG = FeatureConfig(features=("mel", "rms"), n_mels=32)


def test_flaky_puts_are_retried_and_arrays_are_equal(corpus: Path, s3_bucket: tuple[str, dict[str, object]], tmp_path: Path) -> None:
    bucket, options = s3_bucket
    # seeded: the 22nd, 27th and 51st PUT fail (a run makes about 100), each retried after a backoff
    with FaultyS3Proxy(str(options["endpoint_url"]), put_failure_rate=0.04, seed=11) as proxy:
        flaky = {"endpoint_url": proxy.url}
        store = f"s3://{bucket}/flaky.zarr"
        s3fs.S3FileSystem.clear_instance_cache()
        report = extract([corpus], store, CONFIG, scheduler="synchronous", storage_options=flaky, progress=False)
        assert proxy.failed_puts >= 3, (proxy.puts, proxy.failed_puts)
    assert report.files_ok == 5
    s3fs.S3FileSystem.clear_instance_cache()
    local = str(tmp_path / "local.zarr")
    extract([corpus], local, CONFIG, scheduler="synchronous", progress=False)
    a, b = open_raw(store, options).load(), open_raw(local).load()
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_persistent_failure_is_a_clear_error_and_resumes(corpus: Path, s3_bucket: tuple[str, dict[str, object]],
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store dies for good after exactly two chunks are written (an in-process run does its
    chunks one after the other): the third chunk's write fails in one line naming it; the two
    done chunks stay done, and a rerun on a working store computes only the rest."""
    from pipeline import chunk

    bucket, options = s3_bucket
    store = f"s3://{bucket}/dead.zarr"
    with FaultyS3Proxy(str(options["endpoint_url"])) as proxy:
        # no retries by botocore (s3fs still retries), so that giving up takes seconds, not a minute
        dead = {"endpoint_url": proxy.url, "config_kwargs": {"retries": {"total_max_attempts": 1, "mode": "standard"}}}
        s3fs.S3FileSystem.clear_instance_cache()
        run_chunk = chunk.run_chunk
        started: list[int] = []
        written: list[int] = []

        def then_break(task: chunk.ChunkTask, *args: Any, **kwargs: Any) -> Any:
            started.append(task.index)
            result = run_chunk(task, *args, **kwargs)
            written.append(task.index)
            if len(written) == 2:
                proxy.fail_every_put = True  # from here on, every PUT fails
            return result

        monkeypatch.setattr(chunk, "run_chunk", then_break)
        with pytest.raises(StorageError) as info:
            extract([corpus], store, CONFIG, scheduler="synchronous", storage_options=dead, progress=False, segment_chunk=2)
        monkeypatch.undo()
        assert (started, written) == ([0, 1, 2], [0, 1])  # the third chunk failed and ended the run
        assert proxy.failed_puts > 0
        message = str(info.value)
        assert message.startswith(f"writing chunk 2 to {store} failed: ") and "\n" not in message
    s3fs.S3FileSystem.clear_instance_cache()
    flags = np.asarray(open_group(store, options, mode="r")["chunk_done"][:])
    total = flags.size
    assert total > 3 and flags.tolist() == [1, 1] + [0] * (total - 2)
    report = extract([corpus], store, CONFIG, scheduler="synchronous", storage_options=options, progress=False)
    assert report.chunks_skipped == 2
    assert report.chunks_computed == total - 2
    local = str(tmp_path / "local.zarr")
    extract([corpus], local, CONFIG, scheduler="synchronous", progress=False, segment_chunk=2)
    a, b = open_raw(store, options).load(), open_raw(local).load()
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values)
