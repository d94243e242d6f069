"""Shared fixtures: fixed-seed rng, tiny audio corpora, a moto S3 server and a real Dask cluster."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# first: librosa's cached gufuncs are compiled (or loaded) one process at a time, before any
# test module imports librosa (parallel test processes on a cold numba cache: pipeline/_librosa.py)
import pipeline._librosa  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def require_tool(name: str) -> str:
    """The path of a system tool, or a loud failure: `make test` installs these."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `make test` installs it (apt-get install espeak-ng sox ffmpeg)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261124)


def write_corpus(root: Path, *, sr: int = 22050) -> dict[str, str]:
    """A tiny labeled corpus of odd-but-valid files; returns {path: label}."""
    rng = np.random.default_rng(7)
    files: dict[str, str] = {}

    def put(rel: str, y: np.ndarray, rate: int, **kwargs: object) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, y, rate, **kwargs)
        files[str(path)] = path.parent.name

    t = np.arange(int(7.5 * 44100)) / 44100
    put("tones/a440.wav", (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100, subtype="PCM_16")
    t = np.arange(int(4.2 * 16000)) / 16000
    chirp = 0.3 * np.sin(2 * np.pi * (100 * t + 400 * t**2))
    put("tones/chirp16k.flac", np.stack([chirp, chirp * 0.5], axis=1).astype(np.float32), 16000)
    put("noise/white.wav", rng.normal(0, 0.1, int(6.1 * sr)).astype(np.float32), sr, subtype="FLOAT")
    put("noise/short.wav", rng.normal(0, 0.1, 1000).astype(np.float32), 48000, subtype="PCM_24")
    put("noise/pink.ogg", np.cumsum(rng.normal(0, 0.01, int(3.3 * 32000))).astype(np.float32) * 0.05, 32000)
    return files


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root)
    return root


# -- a moto S3 server on 127.0.0.1 (s3fs's own practice) -----------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    import werkzeug.serving
    from moto.server import ThreadedMotoServer

    # werkzeug writes a response's headers and body separately: with Nagle's algorithm on, each
    # response on a kept-alive connection waits for the client's delayed ACK (~40 ms)
    werkzeug.serving.WSGIRequestHandler.disable_nagle_algorithm = True
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server: str) -> Iterator[tuple[str, dict[str, object]]]:
    """A fresh bucket; yields (bucket name, storage_options without credentials)."""
    import s3fs

    options: dict[str, object] = {"endpoint_url": s3_server}
    fs = s3fs.S3FileSystem(**options)
    name = f"bucket-{os.urandom(4).hex()}"
    fs.mkdir(name)
    s3fs.S3FileSystem.clear_instance_cache()
    yield name, options
    s3fs.S3FileSystem.clear_instance_cache()


# -- a real Dask cluster: deploy/local/cluster.sh ------------------------------------------
def _listening_ports(pids: set[int]) -> set[int]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=False).stdout
    ports: set[int] = set()
    for line in out.splitlines():
        if any(f"pid={pid}," in line for pid in pids):
            ports.add(int(line.split()[3].rsplit(":", 1)[1]))
    return ports


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``cluster.sh start 2``: a scheduler and 2 workers on loopback; stopped cleanly after."""
    state = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "CLUSTER_STATE_DIR": str(state), "DASK": str(Path(sys.executable).parent / "dask")}
    script = ROOT / "deploy" / "local" / "cluster.sh"
    proc = subprocess.run([str(script), "start", "2"], capture_output=True, text=True, env=env, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.fail(f"cluster.sh start failed: {proc.stderr.strip()}")
    address = proc.stdout.strip().splitlines()[-1]
    assert address.startswith("tcp://127.0.0.1:"), address
    try:
        yield address
    finally:
        subprocess.run([str(script), "stop"], env=env, timeout=60, check=False)
