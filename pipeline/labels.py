"""Labels and splits: from a CSV, from the parent folder, and a deterministic split by file."""

from __future__ import annotations

import csv
import hashlib
import io as _io
import os
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InputError
from .io import read_text
from .schema import SPLITS

__all__ = ["DEFAULT_SPLIT_FRACTIONS", "hash_split", "label_from_parent", "read_labels_csv"]

DEFAULT_SPLIT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)


def hash_split(uri: str, fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS) -> str:
    """``train``/``val``/``test`` from a stable hash of the file's URI (never by segment)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise InputError(f"Expected three non-negative split fractions, got {tuple(fractions)}")
    total = float(sum(fractions))
    digest = hashlib.sha256(uri.encode("utf-8")).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for name, fraction in zip(SPLITS, fractions, strict=True):
        edge += fraction / total
        if point < edge:
            return name
    return SPLITS[-1]


def label_from_parent(uri: str) -> str:
    """The name of the folder holding the file (GTZAN layout: ``genres/jazz/jazz.00001.wav``)."""
    parent = posixpath.dirname(uri.replace("\\", "/").rstrip("/"))
    return posixpath.basename(parent)


def _is_url(path: str) -> bool:
    return "://" in path


def read_labels_csv(path: str, storage_options: Mapping[str, Any] | None = None) -> dict[str, tuple[str, str]]:
    """``{uri: (label, split)}`` from a CSV with columns ``path,label[,split]``.

    Relative paths are resolved against the CSV's own location; the split is empty when the
    CSV has no ``split`` column (a hash split is used then). A path listed twice with the same
    label and split is one row; with different ones, an :class:`InputError`.
    """
    text = read_text(path, storage_options)
    reader = csv.DictReader(_io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "path" not in fields or "label" not in fields:
        raise InputError(f"Expected a labels CSV with columns path,label[,split], got columns {fields} in {path}")
    base = path.rsplit("/", 1)[0] if _is_url(path) else os.path.dirname(os.path.abspath(path))
    out: dict[str, tuple[str, str]] = {}
    first_line: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        rel = clean.get("path", "")
        if not rel:
            raise InputError(f"Expected a path on line {line} of {path}, got an empty cell")
        split = clean.get("split", "")
        if split and split not in SPLITS:
            raise InputError(f"Expected split in {', '.join(SPLITS)} on line {line} of {path}, got {split!r}")
        if _is_url(rel) or os.path.isabs(rel):
            uri = rel
        elif _is_url(base):
            uri = posixpath.normpath(posixpath.join(base.split("://", 1)[1], rel))
            uri = base.split("://", 1)[0] + "://" + uri
        else:
            uri = os.path.normpath(os.path.join(base, rel))
        entry = (clean.get("label", ""), split)
        if uri in out and out[uri] != entry:
            raise InputError(
                f"Expected one label and split per path in {path}, got {rel!r} as {out[uri]} on line "
                f"{first_line[uri]} and as {entry} on line {line}"
            )
        out[uri] = entry
        first_line.setdefault(uri, line)
    return out
