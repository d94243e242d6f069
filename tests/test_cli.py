"""The command line: one-line errors with exit code 2 for bad input; extract and info."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import open_store
from pipeline.cli import main
from pipeline.store import open_group

PY = [sys.executable, "-m", "pipeline"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # an unreachable scheduler is given up on after 1 s, not the default 5 s (the message is the same)
    env = {**os.environ, "DASK_PIPELINE__CONNECT_TIMEOUT": "1"}
    return subprocess.run([*PY, *args], capture_output=True, text=True, timeout=300, check=False, env=env)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["extract", "/nonexistent/dir", "-o", "{tmp}/s.zarr", "--scheduler", "synchronous"], "No such file or directory"),
        (["extract", "{corpus}", "-o", "{tmp}/s.zarr", "--features", "mel,loudness"], "unknown loudness"),
        (["extract", "{corpus}", "-o", "{tmp}/s.zarr", "--storage-options", "{{not json"], "invalid JSON"),
        (["extract", "{corpus}", "-o", "{tmp}/s.zarr", "--storage-options", '{{"secret": "hunter2"}}'], "Expected no credentials"),
        (["extract", "{corpus}", "-o", "{tmp}/s.zarr", "--scheduler", "tcp://127.0.0.1:9"], "Cannot reach the Dask scheduler"),
        (["extract", "{corpus}", "-o", "{tmp}/s.zarr", "--sr", "-5"], "sr to be a positive integer"),
        (["extract", "{corpus}", "-o", "{tmp}/s.zarr", "--workers", "0"], "--workers >= 1"),
        (["extract", "{corpus}", "-o", "{tmp}/s.zarr", "--split-fractions", "0.8,0.2"], "--split-fractions as three"),
        (["extract", "{corpus}"], "the following arguments are required: -o/--output"),
        (["extract", "{corpus}", "-o", "{tmp}/s.zarr", "--label-from", "grandparent"], "invalid choice"),
        (["info", "{tmp}"], "Expected a feature store"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, corpus: Path, args: list[str], message: str) -> None:
    argv = [a.format(tmp=tmp_path, corpus=corpus) for a in args]
    proc = run(*argv)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0] and "Traceback" not in proc.stderr
    assert "hunter2" not in proc.stderr


def test_extract_then_info(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "cli.zarr")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    code = main(["extract", str(corpus), str(bad), "-o", store, "--label-from", "parent", "--scheduler", "synchronous",
                 "--n-mels", "32", "--features", "mel,rms"])
    out = capsys.readouterr()
    assert code == 0
    assert "5 ok, 0 warned, 1 failed" in out.out
    assert f"failed: {bad}" in out.err
    assert main(["info", store]) == 0
    info = capsys.readouterr().out
    assert "complete: " in info and "(100%)" in info
    assert "n_mels=32" in info and "mel_mean" in info
    assert "noise" in info and "tones" in info
    assert f"{bad}: unreadable audio header" in info
    # --strict turns a failed file into exit 1; the rerun resumes (nothing left to do)
    code = main(["extract", str(corpus), str(bad), "-o", store, "--label-from", "parent", "--scheduler", "synchronous",
                 "--n-mels", "32", "--features", "mel,rms", "--strict"])
    err = capsys.readouterr().err
    assert code == 1
    assert "resuming: " in err


def test_module_and_console_script_agree(tmp_path: Path) -> None:
    """``python -m pipeline`` and the ``audio-pipeline`` script: the same output and exit code,
    for a success, the help and the errors (usage, a bad store)."""
    from pipeline import __version__

    script = str(Path(sys.executable).parent / "audio-pipeline")
    expected = {("--version",): 0, ("--help",): 0, ("frobnicate",): 2, ("info", str(tmp_path)): 2}
    for args, code in expected.items():
        module = run(*args)
        console = subprocess.run([script, *args], capture_output=True, text=True, timeout=300, check=False)
        assert (module.returncode, module.stdout, module.stderr) == (console.returncode, console.stdout,
                                                                      console.stderr), args
        assert module.returncode == code, (args, module.stderr)
    assert run("--version").stdout == f"audio-pipeline {__version__}\n"
    assert run("--help").stdout.startswith("usage: audio-pipeline ")


def test_info_reports_changed_and_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    import soundfile as sf

    root = tmp_path / "c"
    root.mkdir()
    for name in ("a", "b", "c"):
        sf.write(root / f"{name}.wav", np.full(22050 * 2, 0.1, dtype=np.float32), 22050)
    store = str(tmp_path / "s.zarr")
    assert main(["extract", str(root), "-o", store, "--scheduler", "synchronous", "--features", "rms", "--no-progress"]) == 0
    assert main(["info", store]) == 0
    assert "changed since extraction: 0 files" in capsys.readouterr().out
    sf.write(root / "a.wav", np.full(22050 * 3, 0.2, dtype=np.float32), 22050)
    (root / "b.wav").unlink()
    assert main(["info", store]) == 0
    out = capsys.readouterr().out
    assert "changed since extraction: 2 files" in out
    assert f"{root / 'a.wav'}: fingerprint" in out
    assert f"{root / 'b.wav'}: missing now" in out


def test_config_mismatch_exit_2_then_overwrite(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "m.zarr"
    base = ["extract", str(corpus / "tones"), "-o", str(store), "--scheduler", "synchronous", "--no-progress"]
    assert main([*base, "--features", "rms"]) == 0
    stamp = (store / "zarr.json").read_bytes()
    capsys.readouterr()
    assert main([*base, "--features", "rms", "--n-fft", "1024"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different config" in err[0] and "n_fft: 1024 != 2048" in err[0]
    assert (store / "zarr.json").read_bytes() == stamp
    assert main([*base, "--features", "rms", "--n-fft", "1024", "--overwrite"]) == 0
    from pipeline import open_store

    assert open_store(str(store)).attrs["n_fft"] == 1024


def test_query_and_similar_commands(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    store = str(tmp_path / "q.zarr")
    assert main(["extract", str(corpus), "-o", store, "--scheduler", "synchronous", "--label-from", "parent",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["query", store, "--label", "tones", "--vars", "rms,mfcc_mean"]) == 0
    out = capsys.readouterr().out
    assert "rms_mean" in out and "mfcc_mean_0" in out and "noise" not in out
    csv = tmp_path / "t.csv"
    assert main(["query", store, "--vars", "rms", "-o", str(csv)]) == 0
    table = pd.read_csv(csv, keep_default_na=False)
    assert list(table.columns[:5]) == ["segment", "file", "offset", "label", "split"]
    assert len(table) == open_store(store).sizes["segment"]  # one row per stored segment
    assert set(table["label"]) == {"tones", "noise"}
    # each split's query holds that split's rows of the table, all of them and nothing else;
    # one split at least is not the whole table (a filter that keeps every row fails there)
    for split in ("train", "val", "test"):
        parquet = tmp_path / f"{split}.parquet"
        assert main(["query", store, "--split", split, "-o", str(parquet)]) == 0
        picked = pd.read_parquet(parquet).reset_index()
        assert picked["segment"].tolist() == table.loc[table["split"] == split, "segment"].tolist(), split
        assert set(picked["split"]) <= {split}
    capsys.readouterr()
    assert main(["similar", store, "--segment", "0", "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["segment", "distance", "file", "offset", "label"] and len(lines) == 4
    assert main(["similar", store, str(corpus / "tones" / "a440.wav"), "-k", "2"]) == 0
    assert "tones" in capsys.readouterr().out
    assert main(["similar", store]) == 2
    assert main(["query", store, "--vars", "loudness"]) == 2


def test_plot_and_report_commands(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "p.zarr")
    assert main(["extract", str(corpus), "-o", store, "--scheduler", "synchronous", "--label-from", "parent",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["plot", str(corpus / "tones" / "a440.wav"), "--kind", "waveform,mel", "-o", str(tmp_path / "f.png")]) == 0
    written = capsys.readouterr().out.split()
    assert [Path(p).name for p in written] == ["f_waveform.png", "f_mel.png"]
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    assert main(["plot", store, "--segment", "0", "--kind", "chroma", "-o", str(tmp_path / "c.svg")]) == 0
    assert (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")
    assert main(["plot", store, "--segment", "0", "--kind", "nope", "-o", str(tmp_path / "x.png")]) == 2
    assert main(["report", store, "-o", str(tmp_path / "r.html")]) == 0
    assert "data:image/png;base64," in (tmp_path / "r.html").read_text()


def test_demo_end_to_end_on_tiny_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", str(tmp_path / "demo"), "--clips", "3", "--seconds", "4", "--scheduler", "synchronous",
                 "--mlp-epochs", "2", "--cnn-epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "complete: " in out and "query (the GTZAN-style table" in out
    assert "mlp: test accuracy" in out and "cnn: test accuracy" in out
    assert (tmp_path / "demo" / "report.html").exists()
    assert len(list((tmp_path / "demo" / "figures").glob("*.png"))) == 7
    assert (tmp_path / "demo" / "model-cnn" / "metrics.json").exists()
    assert main(["demo", str(tmp_path / "d2"), "--clips", "2"]) == 2


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


#: A scheduler preload (``distributed.scheduler.preload``; a local cluster's scheduler runs in
#: the extract's process): once the first chunk task is done (its done-flag written), SIGINT
#: goes to the whole process group, as a terminal sends Ctrl-C; the marker names that chunk.
_CTRL_C_AFTER_FIRST_CHUNK = """
import os
import signal

from distributed.diagnostics.plugin import SchedulerPlugin

MARKER = os.environ["PIPELINE_TEST_CTRL_C_MARKER"]


class CtrlCAfterFirstChunk(SchedulerPlugin):
    sent = False

    def transition(self, key, start, finish, *args, **kwargs):
        if self.sent or finish != "memory" or not str(key).startswith("chunk-"):
            return
        self.sent = True
        with open(MARKER, "w") as marker:
            marker.write(str(key))
        os.killpg(os.getpgrp(), signal.SIGINT)


def dask_setup(scheduler):
    scheduler.add_plugin(CtrlCAfterFirstChunk(), name="pipeline-test-ctrl-c")
"""


@pytest.mark.cluster
def test_ctrl_c_to_the_process_group_prints_one_line_and_the_rerun_resumes(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """SIGINT to the whole process group, as a terminal sends it, mid-run on a local cluster of
    2 worker processes (right after the first chunk is done): one line, exit 130, no worker's
    traceback; the rerun finishes the store."""
    from test_resume_append import write_clips

    corpus = tmp_path / "clips"
    write_clips(corpus, [f"i{i}" for i in range(8)], seconds=12.0)  # 16 chunks
    store = tmp_path / "s.zarr"
    preload, marker = tmp_path / "ctrl_c.py", tmp_path / "interrupted"
    preload.write_text(_CTRL_C_AFTER_FIRST_CHUNK)
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__PRELOAD": json.dumps([str(preload)]),
           "PIPELINE_TEST_CTRL_C_MARKER": str(marker)}
    cmd = [sys.executable, "-m", "pipeline", "extract", str(corpus), "-o", str(store), "--workers", "2",
           "--segment-chunk", "2", "--features", "mel,mfcc,chroma", "--no-progress"]
    # a shell's background job (as CI may run `make test`) starts with SIGINT ignored, and a
    # process that inherits that never sees Ctrl-C: give the command the terminal's default.
    # Its own session: the signal reaches the command's process group, not pytest.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint, env=env)
    _, err = proc.communicate(timeout=300)
    assert marker.read_text().startswith("chunk-"), "no chunk was done before the interrupt"
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if not line.startswith("Dask dashboard: ")]
    assert lines == ["audio-pipeline: interrupted; re-run the same command to resume"], err
    total = open_group(str(store), mode="r")["chunk_done"].shape[0]
    finished = int(np.asarray(open_group(str(store), mode="r")["chunk_done"][:]).sum())
    assert 1 <= finished < total, "the interrupt did not stop the run"
    # the same store, in this process this time (the scheduler is not part of the config)
    capsys.readouterr()
    code = main([*cmd[3 : cmd.index("--workers")], "--scheduler", "synchronous", *cmd[cmd.index("--workers") + 2 :]])
    rerun = capsys.readouterr()
    assert code == 0, rerun.err
    assert f"resuming: {finished} of {total} chunks done" in rerun.err
    assert f"{total - finished} of {total} chunks computed" in rerun.out
    assert int(np.asarray(open_group(str(store), mode="r")["chunk_done"][:]).sum()) == total


def test_the_summary_says_which_labels_did_not_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CSV row naming no input and inputs absent from the CSV are counted in the summary;
    the same path twice with the same label is one row."""
    import soundfile as sf

    for name in ("a", "b", "c"):
        sf.write(tmp_path / f"{name}.wav", np.zeros(22050, dtype=np.float32) + 0.1, 22050)
    csv = tmp_path / "labels.csv"
    inputs = [str(tmp_path / f"{name}.wav") for name in ("a", "b", "c")]
    common = ["--labels", str(csv), "--features", "rms", "--scheduler", "synchronous", "--no-progress"]
    csv.write_text("path,label\na.wav,jazz\na.wav,jazz\ngone.wav,rock\nalso_gone.wav,pop\n")
    assert main(["extract", *inputs, "-o", str(tmp_path / "s.zarr"), *common]) == 0
    assert (f"; labels: 2 inputs without a label; 2 labels CSV rows matched no input (first: "
            f"{tmp_path / 'also_gone.wav'}, {tmp_path / 'gone.wav'})") in capsys.readouterr().out
    # fully labelled: nothing to say
    csv.write_text("path,label\na.wav,jazz\nb.wav,rock\nc.wav,pop\n")
    assert main(["extract", *inputs, "-o", str(tmp_path / "t.zarr"), *common]) == 0
    assert "labels:" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("error", "code"),
    [("StoreBusy", 75), ("StorageError", 1), ("ToolError", 1), ("DecodeError", 2), ("ConfigError", 2), ("InputError", 2)],
)
def test_each_error_class_has_its_exit_code_and_one_line(
    error: str, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pipeline.cli as cli
    import pipeline.errors as errors

    def fail(args: object) -> int:
        raise getattr(errors, error)("Expected something, got\nnothing")

    monkeypatch.setitem(cli.COMMANDS, "info", fail)
    assert main(["info", "x.zarr"]) == code
    assert capsys.readouterr().err == "audio-pipeline: error: Expected something, got nothing\n"
