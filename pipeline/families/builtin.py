"""The built-in families, registered in store order: one name per family module."""

from __future__ import annotations

import importlib

#: the classic tutorial's families: its figures (plot) and its summary box plots (report) draw them
TUTORIAL: tuple[str, ...] = ("spectrogram", "mel", "mfcc", "chroma", "spectral", "zcr", "rms")
#: built-in family modules, in store order
ORDER: tuple[str, ...] = (*TUTORIAL, "contrast", "flatness", "tonnetz", "onset", "mfcc_delta", "fbank", "whisper")

for _name in ORDER:
    importlib.import_module(f"{__package__}.{_name}")
