"""Security: loopback-only services; credentials never in task graphs, store attributes or logs."""

from __future__ import annotations

import functools
import http.server
import json
import logging
import os
import pickle
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import s3fs
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

from pipeline import FeatureConfig, extract
from pipeline.cluster import cluster as _cluster


class GraphRecorder(SchedulerPlugin):
    """Keeps the pickled specification of every task the scheduler receives."""

    name = "graph-recorder"

    def __init__(self) -> None:
        self.blobs: list[bytes] = []

    def update_graph(self, scheduler: Any, *, keys: Any, **kwargs: Any) -> None:
        for key in keys:
            ts = scheduler.tasks.get(key)
            if ts is not None:
                self.blobs.append(pickle.dumps(ts.run_spec))


def _listening(pids: set[int]) -> list[str]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids)]


def _children(pid: int) -> set[int]:
    found = {pid}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        found |= _children(int(child))
    return found


def test_default_local_cluster_listens_on_loopback_only() -> None:
    import io

    with _cluster(None, None, 2, io.StringIO()) as client:
        assert client is not None
        addresses = _listening(_children(os.getpid()))
        assert addresses, "expected the scheduler, dashboard and workers to be listening"
        assert all(a.startswith("127.0.0.1:") for a in addresses), addresses
        assert client.dashboard_link.startswith("http://127.0.0.1:")


@pytest.mark.s3
def test_planted_secret_never_leaves_the_environment(
    corpus: Path, s3_bucket: tuple[str, dict[str, object]], caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket, options = s3_bucket
    secret = "planted-" + os.urandom(12).hex()
    saved = os.environ["AWS_SECRET_ACCESS_KEY"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = secret  # moto accepts any key; workers inherit the env
    caplog.set_level(logging.DEBUG)
    try:
        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem(**options)
        for path in sorted(corpus.rglob("*.wav")):
            fs.put_file(str(path), f"{bucket}/in/{path.name}")
        recorder = GraphRecorder()
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            cluster.scheduler.add_plugin(recorder)
            report = extract([f"s3://{bucket}/in"], f"s3://{bucket}/out.zarr", FeatureConfig(features=("rms",)),
                             client=client, storage_options=options, progress=True)
        assert report.files_ok == 3
        assert recorder.blobs, "no task graph was recorded"
        assert not any(secret.encode() in blob for blob in recorder.blobs)
        stored = b"".join(fs.cat_file(p) for p in fs.find(f"{bucket}/out.zarr"))
        assert secret.encode() not in stored
        assert b"endpoint_url" not in stored and b"storage_options" not in stored
        out = capsys.readouterr()
        assert secret not in out.out + out.err
        assert secret not in caplog.text
    finally:
        os.environ["AWS_SECRET_ACCESS_KEY"] = saved
        s3fs.S3FileSystem.clear_instance_cache()


def test_store_has_no_pickle_codecs(tmp_path: Path, corpus: Path) -> None:
    store = tmp_path / "s.zarr"
    extract([corpus], str(store), FeatureConfig(features=("mel", "chroma")), scheduler="synchronous", progress=False)
    metadata = b"".join(p.read_bytes() for p in store.rglob("zarr.json"))
    assert b"pickle" not in metadata.lower()
    assert b"vlen-utf8" in metadata or b'"string"' in metadata


# -- credentials in headers and URLs -------------------------------------------------------
class _AuthRangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files only with the right bearer token, with byte ranges (as fsspec reads)."""

    token = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_error(401)
            return False
        return True

    def do_HEAD(self) -> None:
        if self._authorised():
            super().do_HEAD()

    def do_GET(self) -> None:
        if not self._authorised():
            return
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            first, _, last = ranged[6:].partition("-")
            a, b = int(first or 0), min(int(last) if last else len(data) - 1, len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
            body = data[a : b + 1]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def token_server(corpus: Path) -> Iterator[tuple[str, str]]:
    """An HTTP server on 127.0.0.1 that wants ``Authorization: Bearer <token>``; yields (base URL, token)."""
    token = "planted-header-" + os.urandom(12).hex()
    handler = functools.partial(type("H", (_AuthRangeHandler,), {"token": token}), directory=str(corpus))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", token
    finally:
        server.shutdown()
        server.server_close()


def test_a_header_credential_in_storage_options_is_refused_in_one_line(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from pipeline.cli import main
    from pipeline.io import sanitize_storage_options

    for options in ('{"headers": {"Authorization": "Bearer abc"}}', '{"client_kwargs": {"headers": {"X-Api-Key": "k"}}}',
                    '{"cookies": {"session": "s"}}'):
        code = main(["extract", str(corpus), "-o", str(tmp_path / "s.zarr"), "--storage-options", options,
                     "--scheduler", "synchronous", "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and "Expected no credentials" in err, err
        assert "abc" not in err and '"k"' not in err
        assert not (tmp_path / "s.zarr").exists()
    # a harmless header passes
    assert sanitize_storage_options({"headers": {"User-Agent": "x"}}) == {"headers": {"User-Agent": "x"}}


@pytest.mark.parametrize("url", [
    "https://bucket.s3.amazonaws.com/a.wav?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F1&X-Amz-Signature=ab",
    "https://acct.blob.core.windows.net/c/a.wav?sv=2022-11-02&se=2030-01-01&sp=r&sig=abc",
    "https://user:hunter2@example.invalid/a.wav",
])
def test_signed_or_password_urls_are_refused(tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    code = main(["extract", url, "-o", str(tmp_path / "s.zarr"), "--scheduler", "synchronous", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Expected a URL without credentials" in err
    assert "hunter2" not in err and "sig=abc" not in err
    code = main(["extract", str(tmp_path), "-o", url, "--scheduler", "synchronous", "--no-progress"])
    assert code == 2 and "Expected a URL without credentials" in capsys.readouterr().err  # the store's URL too


def test_a_header_credential_from_the_environment_never_leaves_it(
    token_server: tuple[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The token an HTTP server wants comes from fsspec's own configuration (FSSPEC_HTTP in the
    environment of the client and the workers): the run reads the files, and the token is in no
    task of the graph, no byte of the store, no log line and no output."""
    import fsspec.config

    base, token = token_server
    monkeypatch.setenv("FSSPEC_HTTP", json.dumps({"headers": {"Authorization": f"Bearer {token}"}}))
    monkeypatch.setattr(fsspec.config, "conf", {})
    fsspec.config.set_conf_env(fsspec.config.conf)
    caplog.set_level(logging.DEBUG)
    inputs = [f"{base}/tones/a440.wav", f"{base}/noise/white.wav"]
    recorder = GraphRecorder()
    store = tmp_path / "http.zarr"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        cluster.scheduler.add_plugin(recorder)
        report = extract(inputs, str(store), FeatureConfig(features=("rms",)), client=client, progress=True)
    assert report.files_ok == 2, report.failed
    assert recorder.blobs and not any(token.encode() in blob for blob in recorder.blobs)
    assert not any(token.encode() in p.read_bytes() for p in store.rglob("*") if p.is_file())
    out = capsys.readouterr()
    assert token not in out.out + out.err and token not in caplog.text
