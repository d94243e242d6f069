"""The demo corpus: GTZAN-layout genre clips (and espeak-ng speech) plus ``labels.csv``."""

from __future__ import annotations

import csv
import math
import os
import pathlib
import re
from typing import Final

import numpy as np
import soundfile as sf

from ..errors import ConfigError, ToolError
from .external import espeak_available, speech_clip
from .genres import _PEAK, GENRES, genre_clip
from .signals import FloatArray, _check_int, _check_seed, _n_samples, _to_peak

__all__ = ["CORPUS_FORMATS", "SPEECH_LABEL", "make_demo_corpus"]

SPEECH_LABEL: Final[str] = "speech"
"""Label of the optional espeak-ng speech class written by :func:`make_demo_corpus`."""

CORPUS_FORMATS: Final[tuple[str, ...]] = ("wav", "flac", "ogg", "mp3")
"""File extensions :func:`make_demo_corpus` can write."""

_SUBTYPES: Final[dict[str, tuple[str, str]]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}


_SENTENCES: Final[tuple[str, ...]] = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "Welcome to the evening news. Here are tonight's top stories.",
    "Please remember to bring your umbrella, rain is expected after noon.",
    "The train to the city centre departs from platform four in ten minutes.",
    "In today's lecture we will discuss the history of the printing press.",
    "Turn left at the next junction, then continue for two kilometres.",
    "Thank you for calling. All of our operators are currently busy.",
    "The committee will meet again on Thursday to review the budget.",
    "Scientists have discovered a new species of frog in the rainforest.",
    "Mix the flour and the butter, then add two eggs and a cup of milk.",
    "Our next guest has written three novels and a book of poems.",
)

_SPEECH_VOICES: Final[tuple[str, ...]] = (
    "en",
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-029",
    "en-us+f3",
    "en+m3",
    "en-gb-x-rp+f2",
    "en-us+klatt",
    "en+f4",
    "en-us+m7",
    "en-gb+f5",
)


def _speech_item(seconds: float, sr: int, rng: np.random.Generator) -> FloatArray:
    """One speech clip for the corpus: varied text/voice/speed, looped to length."""
    voice = _SPEECH_VOICES[int(rng.integers(len(_SPEECH_VOICES)))]
    speed = int(rng.integers(130, 211))
    pitch = int(rng.integers(25, 76))
    order = rng.permutation(len(_SENTENCES))
    # ~2.5 words per second at 150 wpm; ask for a little more than needed
    words_needed = seconds * speed / 60.0 * 1.2 + 4
    chosen: list[str] = []
    words = 0
    for index in order:
        chosen.append(_SENTENCES[int(index)])
        words += len(_SENTENCES[int(index)].split())
        if words >= words_needed:
            break
    audio, rate = speech_clip(" ".join(chosen), sr=sr, voice=voice, speed=speed, pitch=pitch)
    n = round(seconds * sr)
    gap = np.zeros(round(rng.uniform(0.3, 0.8) * rate), dtype=np.float32)
    unit = np.concatenate([audio, gap])
    tiled = np.tile(unit, math.ceil(n / max(unit.size, 1)))[:n].astype(np.float64)
    tiled += rng.uniform(0.0005, 0.003) * rng.standard_normal(n)
    return np.clip(_to_peak(tiled, _PEAK), -1.0, 1.0).astype(np.float32)


_CLIP_NAME: Final[re.Pattern[str]] = re.compile(r"^([a-z]+)/\1\.\d{5}\.(?:wav|flac|ogg|mp3)$")


def _previous_clips(csv_path: pathlib.Path) -> set[str]:
    """Clip paths listed by an earlier ``make_demo_corpus`` run (only our own naming)."""
    if not csv_path.is_file():
        return set()
    try:
        with csv_path.open(newline="", encoding="utf-8") as handle:
            return {
                path
                for row in csv.DictReader(handle)
                if isinstance(path := row.get("path"), str) and _CLIP_NAME.match(path)
            }
    except (OSError, UnicodeDecodeError, csv.Error):
        return set()


def _check_formats(formats: object) -> tuple[str, ...]:
    if isinstance(formats, str) or not isinstance(formats, tuple | list) or not formats:
        raise ConfigError(
            f"Expected formats to be a non-empty tuple of extensions from {CORPUS_FORMATS}, "
            f"got {formats!r}"
        )
    for fmt in formats:
        if fmt not in _SUBTYPES:
            raise ConfigError(f"Expected formats drawn from {CORPUS_FORMATS}, got {fmt!r}")
    return tuple(str(fmt) for fmt in formats)


def make_demo_corpus(
    directory: str | os.PathLike[str],
    *,
    n_per_genre: int = 20,
    seconds: float = 30.0,
    sr: int = 22050,
    seed: int = 0,
    speech: bool | None = None,
    formats: tuple[str, ...] = ("wav",),
) -> pathlib.Path:
    """Write a synthetic GTZAN-layout corpus and its ``labels.csv``.

    Files are written as ``directory/<genre>/<genre>.<i:05d>.<ext>`` for every
    genre in :data:`GENRES` (and :data:`SPEECH_LABEL` when speech is enabled).
    ``wav`` and ``flac`` files are 16-bit PCM. With several ``formats`` the
    extension rotates per clip (clip ``i`` uses ``formats[i % len(formats)]``).
    ``labels.csv`` has the header ``path,label``, one row per clip, paths
    relative to the csv with ``/`` separators. Calling it again on the same
    directory is safe: files are overwritten, and clips listed in the previous
    ``labels.csv`` that are not part of the new corpus (fewer clips, other
    formats, no speech) are deleted so the directory matches the csv. Nothing
    else in ``directory`` is touched.

    Parameters
    ----------
    directory : str or os.PathLike
        Output directory (created if missing).
    n_per_genre : int, default 20
        Clips per genre (``>= 1``).
    seconds : float, default 30.0
        Duration of every clip in seconds.
    sr : int, default 22050
        Sample rate in Hz (at least 4000).
    seed : int, default 0
        Non-negative corpus seed; every clip gets its own derived seed.
    speech : bool or None, default None
        Add a ``speech`` class made by espeak-ng (varied sentences, voices,
        speeds and pitches, looped to ``seconds``). ``None`` means "if
        espeak-ng is installed"; ``True`` requires it.
    formats : tuple of str, default ("wav",)
        Non-empty tuple of extensions from :data:`CORPUS_FORMATS`.

    Returns
    -------
    pathlib.Path
        Path of ``labels.csv``.

    Raises
    ------
    ConfigError
        If an argument is out of range.
    ToolError
        If ``speech`` is ``True`` and espeak-ng is not installed.
    """
    count = _check_int("n_per_genre", n_per_genre, minimum=1)
    rate = _check_int("sr", sr, minimum=4000)
    _n_samples(seconds, rate, allow_empty=False)
    corpus_seed = _check_seed(seed)
    extensions = _check_formats(formats)
    if speech is not None and not isinstance(speech, bool):
        raise ConfigError(f"Expected speech to be True, False or None, got {speech!r}")
    with_speech = espeak_available() if speech is None else speech
    if with_speech and not espeak_available():
        raise ToolError(
            "espeak-ng is not installed: install it with `apt-get install espeak-ng` "
            "or pass speech=False"
        )
    root = pathlib.Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    labels = [*GENRES, SPEECH_LABEL] if with_speech else list(GENRES)
    rows: list[tuple[str, str]] = []
    for label_index, label in enumerate(labels):
        (root / label).mkdir(exist_ok=True)
        for i in range(count):
            state = np.random.SeedSequence([corpus_seed, label_index, i]).generate_state(1)
            clip_seed = int(state[0])
            if label == SPEECH_LABEL:
                audio = _speech_item(seconds, rate, np.random.default_rng(clip_seed))
            else:
                audio = genre_clip(label, seconds=seconds, sr=rate, seed=clip_seed)
            ext = extensions[i % len(extensions)]
            relative = f"{label}/{label}.{i:05d}.{ext}"
            file_format, subtype = _SUBTYPES[ext]
            sf.write(root / relative, audio, rate, format=file_format, subtype=subtype)
            rows.append((relative, label))
    csv_path = root / "labels.csv"
    stale = _previous_clips(csv_path) - {relative for relative, _ in rows}
    partial = root / "labels.csv.tmp"
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("path", "label"))
        writer.writerows(rows)
    partial.replace(csv_path)
    for relative in sorted(stale):
        (root / relative).unlink(missing_ok=True)
    return csv_path
