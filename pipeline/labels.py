"""Labels and splits: from a CSV, from the parent folder, and a deterministic split by file."""

from __future__ import annotations

import csv
import hashlib
import io as _io
import os
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigError, InputError
from .io import is_url, read_text
from .schema import SPLITS

__all__ = [
    "DEFAULT_SPLIT_FRACTIONS",
    "assign_labels",
    "check_split_fractions",
    "hash_split",
    "label_from_parent",
    "read_labels_csv",
    "stratified_labels",
]

DEFAULT_SPLIT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)


def check_split_fractions(fractions: Sequence[float], *, what: str = "split fractions") -> tuple[float, float, float]:
    """``fractions`` as a ``(train, val, test)`` tuple, checked: three non-negative numbers, not all zero.

    Raises
    ------
    ConfigError
        Not three numbers, a negative one, or a zero sum.
    """
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(not f >= 0 for f in values) or sum(values) <= 0:
        raise ConfigError(f"Expected {what} as three non-negative numbers like 0.8,0.1,0.1, got {values}")
    return (values[0], values[1], values[2])


def hash_split(uri: str, fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS) -> str:
    """``train``/``val``/``test`` from a stable hash of the file's URI (never by segment)."""
    fractions = check_split_fractions(fractions)
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
    base = path.rsplit("/", 1)[0] if is_url(path) else os.path.dirname(os.path.abspath(path))
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
        if is_url(rel) or os.path.isabs(rel):
            uri = rel
        elif is_url(base):
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


def assign_labels(
    uris: Sequence[str], labels: str | Mapping[str, tuple[str, str]] | None, label_from: str | None,
    storage_options: Mapping[str, Any] | None, split_fractions: Sequence[float],
) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """``{uri: (label, split)}`` for every input, and the labels table's paths that match no input.

    Parameters
    ----------
    uris : sequence of str
        The inputs, as listed.
    labels : str or mapping, optional
        A labels CSV (:func:`read_labels_csv`) or ``{uri: (label, split)}``.
    label_from : {"parent"}, optional
        Label an input the table leaves unlabelled with its folder's name.
    storage_options : mapping, optional
        fsspec options for a CSV URL.
    split_fractions : sequence of float
        ``(train, val, test)`` for :func:`hash_split` where the table gives no split.
    """
    table: Mapping[str, tuple[str, str]] = {}
    if isinstance(labels, str):
        table = read_labels_csv(labels, storage_options)
    elif labels is not None:
        table = labels
    if label_from not in (None, "parent"):
        raise InputError(f"Expected --label-from parent, got {label_from!r}")
    fractions = check_split_fractions(split_fractions)
    out: dict[str, tuple[str, str]] = {}
    for uri in uris:
        label, split = table.get(uri, ("", ""))
        if not label and label_from == "parent":
            label = label_from_parent(uri)
        out[uri] = (label, split or hash_split(uri, fractions))
    return out, sorted(set(table) - set(uris))


def stratified_labels(csv_path: str, *, every: int = 10) -> str:
    """Rewrite a local ``path,label`` CSV with a split column: per label, of every ``every`` files
    (in path order) the last is test, the one before val, the rest train, so that every split
    holds every label. Writes ``labels_split.csv`` next to it and returns its path."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    seen: dict[str, int] = {}
    out_path = os.path.join(os.path.dirname(csv_path), "labels_split.csv")
    train, val, test = SPLITS
    with open(out_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        for row in sorted(rows, key=lambda r: (r["label"], r["path"])):
            i = seen.get(row["label"], 0)
            seen[row["label"]] = i + 1
            k = i % every
            writer.writerow([row["path"], row["label"], test if k == every - 1 else val if k == every - 2 else train])
    return out_path
