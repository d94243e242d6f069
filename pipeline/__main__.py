"""``python -m pipeline``: the same as the ``audio-pipeline`` console script."""

from __future__ import annotations

from .cli import run

run()
