"""S3 through a moto server on 127.0.0.1: s3:// input and s3:// output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import s3fs
import xarray as xr

from pipeline import FeatureConfig, extract, open_store
from pipeline.store import as_text, open_raw

pytestmark = pytest.mark.s3
CONFIG = FeatureConfig(features=("mel", "mfcc", "rms"), n_mels=40, n_mfcc=13)


def upload(corpus: Path, bucket: str, options: dict[str, object]) -> str:
    fs = s3fs.S3FileSystem(**options)
    for path in sorted(corpus.rglob("*.*")):
        fs.put_file(str(path), f"{bucket}/corpus/{path.relative_to(corpus)}")
    (corpus.parent / "labels-s3.csv").write_text("")
    lines = ["path,label,split"] + [
        f"{p.relative_to(corpus)},{p.stem},{'test' if 'short' in p.name else 'train'}" for p in sorted(corpus.rglob("*.*"))
    ]
    fs.pipe_file(f"{bucket}/corpus/labels.csv", ("\n".join(lines) + "\n").encode())
    return f"s3://{bucket}/corpus"


def test_s3_in_s3_out_equals_local(corpus: Path, s3_bucket: tuple[str, dict[str, object]], tmp_path: Path) -> None:
    bucket, options = s3_bucket
    prefix = upload(corpus, bucket, options)
    store = f"s3://{bucket}/features.zarr"
    report = extract([prefix], store, CONFIG, scheduler="synchronous", labels=f"{prefix}/labels.csv",
                     storage_options=options, progress=False, segment_chunk=4)
    assert report.files_ok == 5 and report.files_failed == 0
    remote = open_store(store, storage_options=options)
    assert all(p.startswith(f"s3://{bucket}/corpus/") for p in as_text(remote["file_path"]))
    labels = dict(zip(as_text(remote["file_path"]), as_text(remote["file_label"]), strict=True))
    assert labels[f"{prefix}/tones/a440.wav"] == "a440"
    splits = dict(zip(as_text(remote["file_path"]), as_text(remote["file_split"]), strict=True))
    assert splits[f"{prefix}/noise/short.wav"] == "test"

    local = str(tmp_path / "local.zarr")
    extract([corpus], local, CONFIG, scheduler="synchronous", progress=False, segment_chunk=4)
    here = open_store(local)
    for name in ("mel", "mfcc_mean", "rms"):
        np.testing.assert_array_equal(remote[name].values, here[name].values)

    # plain xarray, through fsspec, sees the same store
    plain = xr.open_zarr(store, storage_options=options)
    assert plain.sizes["segment"] == open_raw(local).sizes["segment"]


def test_s3_fingerprints_use_etags(corpus: Path, s3_bucket: tuple[str, dict[str, object]]) -> None:
    from pipeline.probe import probe_file

    bucket, options = s3_bucket
    prefix = upload(corpus, bucket, options)
    info = probe_file(f"{prefix}/tones/a440.wav", options)
    assert info.error == "" and info.sample_rate == 44100
    assert info.fingerprint.startswith(f"{info.size}-") and len(info.fingerprint) > len(str(info.size)) + 8


def test_missing_bucket_is_a_clear_error(s3_bucket: tuple[str, dict[str, object]]) -> None:
    from pipeline.errors import InputError

    _, options = s3_bucket
    with pytest.raises(InputError, match="No such file or directory"):
        extract(["s3://no-such-bucket-here/x.wav"], "s3://no-such-bucket-here/out.zarr", CONFIG,
                scheduler="synchronous", storage_options=options, progress=False)
