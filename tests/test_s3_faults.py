"""S3 faults: a flaky store still gives equal arrays; a dead one fails clearly and resumes later."""

from __future__ import annotations

import threading
import time
from pathlib import Path

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
    with FaultyS3Proxy(str(options["endpoint_url"]), put_failure_rate=0.2, seed=1) as proxy:
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


def test_persistent_failure_is_a_clear_error_and_resumes(corpus: Path, s3_bucket: tuple[str, dict[str, object]], tmp_path: Path) -> None:
    bucket, options = s3_bucket
    store = f"s3://{bucket}/dead.zarr"
    with FaultyS3Proxy(str(options["endpoint_url"])) as proxy:
        # fewer retries than the defaults, so that giving up takes seconds, not a minute
        dead = {"endpoint_url": proxy.url, "config_kwargs": {"retries": {"max_attempts": 2, "mode": "standard"}}}
        s3fs.S3FileSystem.clear_instance_cache()

        def break_after_two_chunks() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if int(np.asarray(open_group(store, options, mode="r")["chunk_done"][:]).sum()) >= 2:
                        break
                except Exception:
                    pass
                time.sleep(0.01)
            proxy.fail_every_put = True

        watcher = threading.Thread(target=break_after_two_chunks)
        watcher.start()
        with pytest.raises(StorageError, match="chunk") as info:
            extract([corpus], store, CONFIG, scheduler="synchronous", storage_options=dead, progress=False, segment_chunk=2)
        watcher.join()
        assert "\n" not in str(info.value)
    s3fs.S3FileSystem.clear_instance_cache()
    done = int(np.asarray(open_group(store, options, mode="r")["chunk_done"][:]).sum())
    assert done >= 2
    report = extract([corpus], store, CONFIG, scheduler="synchronous", storage_options=options, progress=False)
    assert report.chunks_skipped == done
    assert report.chunks_computed == report.chunks_total - done
    local = str(tmp_path / "local.zarr")
    extract([corpus], local, CONFIG, scheduler="synchronous", progress=False, segment_chunk=2)
    a, b = open_raw(store, options).load(), open_raw(local).load()
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values)
