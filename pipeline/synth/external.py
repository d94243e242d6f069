"""Audio made by external command-line tools: ``espeak-ng`` (speech) and ``sox`` (music)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
from typing import Final

import numpy as np
import soundfile as sf

from ..errors import ConfigError, ToolError
from .harmony import _SCALES, _degree
from .signals import FloatArray, _check_float, _check_int, _check_seed, _check_sr

__all__ = ["espeak_available", "sox_available", "sox_music", "speech_clip"]


def _require(tool: str) -> str:
    """The path of ``tool`` on ``PATH``; ``RuntimeError`` saying how to install it if missing."""
    exe = shutil.which(tool)
    if exe is None:
        raise ToolError(
            f"{tool} is not installed: install it with `apt-get install {tool}` "
            "(`make test` installs it)"
        )
    return exe


def espeak_available() -> bool:
    """Return whether the ``espeak-ng`` executable (:func:`speech_clip`) is on ``PATH``."""
    return shutil.which("espeak-ng") is not None


def sox_available() -> bool:
    """Return whether the ``sox`` executable (:func:`sox_music`) is on ``PATH``."""
    return shutil.which("sox") is not None


def _resample(x: FloatArray, source: int, target: int) -> FloatArray:
    """Linear-interpolation resampling (good enough for synthetic test data)."""
    if source == target or x.size == 0:
        return x
    n_out = max(1, round(x.size * target / source))
    positions = np.arange(n_out, dtype=np.float64) * (source / target)
    return np.interp(positions, np.arange(x.size), x).astype(np.float32)


def speech_clip(
    text: str,
    *,
    sr: int | None = None,
    voice: str = "en",
    speed: int = 175,
    pitch: int = 50,
) -> tuple[FloatArray, int]:
    """Synthesise speech with ``espeak-ng``.

    Parameters
    ----------
    text : str
        Non-empty text to speak (passed on stdin, never parsed as options).
    sr : int or None, default None
        ``None`` returns audio at espeak-ng's native rate (22050 Hz for the
        default voices); an integer resamples to that rate with linear
        interpolation.
    voice : str, default "en"
        espeak-ng voice, optionally with a variant, e.g. ``"en-us+f3"``.
    speed : int, default 175
        Words per minute (80-450).
    pitch : int, default 50
        Pitch adjustment (0-99).

    Returns
    -------
    audio : numpy.ndarray
        Mono ``float32`` speech in ``[-1, 1]``.
    sample_rate : int
        Sample rate of ``audio``.

    Raises
    ------
    ConfigError
        If an argument is invalid.
    ToolError
        If ``espeak-ng`` is not installed or fails (e.g. unknown voice).
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"Expected text to be a non-empty string, got {text!r}")
    if not isinstance(voice, str) or not voice or voice.startswith("-"):
        raise ConfigError(f"Expected voice to be an espeak-ng voice name, got {voice!r}")
    words_per_minute = _check_int("speed", speed, minimum=80)
    if words_per_minute > 450:
        raise ConfigError(f"Expected speed to be an integer in [80, 450], got {speed!r}")
    pitch_value = _check_int("pitch", pitch, minimum=0)
    if pitch_value > 99:
        raise ConfigError(f"Expected pitch to be an integer in [0, 99], got {pitch!r}")
    target = None if sr is None else _check_sr(sr)
    exe = _require("espeak-ng")
    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
        wav = pathlib.Path(tmp) / "speech.wav"
        cmd = [exe, "-v", voice, "-s", str(words_per_minute), "-p", str(pitch_value)]
        cmd += ["-w", str(wav), "--stdin"]
        proc = subprocess.run(
            cmd, input=text, capture_output=True, text=True, check=False, timeout=300
        )
        if proc.returncode != 0 or not wav.exists():
            raise ToolError(
                f"espeak-ng failed with exit code {proc.returncode} for voice {voice!r}: "
                f"{proc.stderr.strip()}"
            )
        data, native = sf.read(wav, dtype="float32", always_2d=True)
    audio: FloatArray = np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)
    rate = int(native)
    if target is not None:
        audio = _resample(audio, rate, target)
        rate = target
    return np.clip(audio, -1.0, 1.0), rate


_NOTE_NAMES: Final[tuple[str, ...]] = (
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
)  # fmt: skip


def _note_name(midi: int) -> str:
    return f"{_NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def sox_music(
    path: str | os.PathLike[str],
    *,
    seconds: float = 5.0,
    sr: int = 22050,
    seed: int = 0,
) -> pathlib.Path:
    """Write a short music-like clip synthesised by ``sox -n synth``.

    The clip is a plucked (Karplus-Strong) arpeggio followed by a strummed
    chord in a seed-dependent key, mixed to mono with tremolo and reverb and
    normalised to -1 dBFS. The format follows the file extension (anything
    sox can write, e.g. ``.wav``, ``.flac``, ``.ogg``).

    Parameters
    ----------
    path : str or os.PathLike
        Output file; parent directories are created.
    seconds : float, default 5.0
        Duration in seconds (``> 0``, at most 600).
    sr : int, default 22050
        Sample rate in Hz (at least 4000).
    seed : int, default 0
        Non-negative seed choosing the key and mode.

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`pathlib.Path`.

    Raises
    ------
    ConfigError
        If an argument is out of range.
    ToolError
        If ``sox`` is not installed or fails.
    """
    duration = _check_float("seconds", seconds, low=0.0, high=600.0, low_inclusive=False)
    rate = _check_int("sr", sr, minimum=4000)
    rng = np.random.default_rng(_check_seed(seed))
    out = pathlib.Path(path)
    if not out.suffix:
        raise ConfigError(f"Expected path to have an audio file extension, got {str(out)!r}")
    exe = _require("sox")
    tonic = 48 + int(rng.integers(12))
    scale = _SCALES["major" if rng.random() < 0.5 else "minor"]
    arpeggio = [_degree(tonic, scale, d) for d in (0, 2, 4, 7, 4, 2)]
    chord = [_degree(tonic - 12, scale, d) for d in (0, 4, 7, 9, 11, 14)]
    step = duration * 0.55 / len(arpeggio)
    strum_at = duration * 0.6
    notes = arpeggio + chord
    delays = [i * step for i in range(len(arpeggio))]
    delays += [strum_at + 0.03 * i for i in range(len(chord))]
    synth: list[str] = []
    for midi in notes:
        synth += ["pluck", _note_name(midi)]
    out.parent.mkdir(parents=True, exist_ok=True)
    # sox's pluck only runs at 44.1-48 kHz: synthesise at 48 kHz, resample, then normalise
    cmd = [exe, "-V1", "-R", "-r", "48000", "-n"]
    cmd += ["-r", str(rate), "-c", "1", "-b", "16", str(out)]
    cmd += ["synth", f"{duration:.4f}", *synth]
    cmd += ["delay", *[f"{d:.4f}" for d in delays], "remix", "-"]
    cmd += ["tremolo", f"{rng.uniform(4.0, 7.0):.2f}", "30", "reverb", "40", "remix", "-"]
    cmd += ["trim", "0", f"{duration:.4f}", "fade", "0.005", f"{duration:.4f}"]
    cmd += [f"{min(0.3, duration / 4):.4f}", "rate", str(rate), "norm", "-1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0 or not out.exists():
        raise ToolError(f"sox failed with exit code {proc.returncode}: {proc.stderr.strip()}")
    return out
