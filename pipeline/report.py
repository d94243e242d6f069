"""A one-file HTML report of a feature store: what is in it, how complete, what failed.

The report is a single static page that works offline: figures are PNGs embedded as base64
``data:`` URIs, the style sheet is inline, there is no script and no external reference.
Every text that comes from the store (paths, labels, errors, attributes) is escaped.

Sections: the store and its config, completeness, counts per label (files, segments, hours),
a histogram of file durations, per-label box plots of a few summary features, a 2-D PCA
projection of the standardised segment summary vectors, and the failed files.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from dask.base import compute as dask_compute

from .errors import InputError, SchemaError, StorageError, one_line
from .families.builtin import TUTORIAL
from .figures import DPI, legend_outside, mpl_text, new_figure, require_matplotlib
from .query import feature_names, summary_matrix
from .schema import SPLITS
from .standardize import moments
from .store import (
    as_text,
    completeness,
    families_text,
    label_counts,
    open_raw,
    open_store,
    store_config,
    store_versions,
    visible_segments,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["BOX_FEATURES", "MAX_PCA_SEGMENTS", "write_report"]

#: Summary features drawn as per-label box plots (variable, bin index or None, axis label);
#: only those the store holds are drawn.
BOX_FEATURES: tuple[tuple[str, int | None, str], ...] = (
    ("spectral_centroid_mean", None, "spectral centroid, segment mean (Hz)"),
    ("rms_mean", None, "RMS, segment mean"),
    ("zero_crossing_rate_mean", None, "zero-crossing rate, segment mean"),
    ("mfcc_mean", 1, "MFCC 1, segment mean"),
)
#: The PCA projection uses at most this many segments, evenly spaced over the store.
MAX_PCA_SEGMENTS = 5000
_NO_LABEL = "(none)"

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; background: #fafafa; }
td.path { font-family: monospace; word-break: break-all; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
.muted { color: #666; }
.ok { color: #1a7f37; } .bad { color: #b42318; }
"""


def _e(value: object) -> str:
    """``value`` as HTML text (quotes escaped too)."""
    return html.escape(str(value), quote=True)


def _img(fig: Figure, alt: str) -> str:
    """The figure as an ``<img>`` with a base64 PNG data URI (no software metadata)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _colors(labels: Sequence[str]) -> dict[str, Any]:
    """One colour per label, the same in every figure."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], *, numeric: Sequence[bool] | None = None,
           total: Sequence[object] | None = None, path_column: int | None = None) -> str:
    numeric = list(numeric or [False] * len(header))

    def cells(values: Sequence[object], tag: str) -> str:
        out = []
        for i, value in enumerate(values):
            cls = "num" if numeric[i] else ("path" if i == path_column and tag == "td" else "")
            attr = f' class="{cls}"' if cls else ""
            out.append(f"<{tag}{attr}>{_e(value)}</{tag}>")
        return "".join(out)

    lines = ["<table>", f"<tr>{cells(header, 'th')}</tr>"]
    lines += [f"<tr>{cells(row, 'td')}</tr>" for row in rows]
    if total is not None:
        lines.append(f'<tr class="total">{cells(total, "td")}</tr>')
    lines.append("</table>")
    return "\n".join(lines)


def _shown(label: str) -> str:
    return label or _NO_LABEL


# -- sections ----------------------------------------------------------------------------------
def _overview(store: str, raw: xr.Dataset) -> str:
    comp = completeness(raw)
    status = as_text(raw["file_status"])
    warning = as_text(raw["file_warning"]) if "file_warning" in raw.variables else np.full(status.shape, "", object)
    duration = np.asarray(raw["file_duration"].values, dtype=np.float64)
    ok = status == "ok"
    state = ('<span class="ok">complete</span>' if comp.complete
             else f'<span class="bad">incomplete: {100 * comp.fraction:.0f}%</span>')
    families = families_text(raw.attrs, comp.families, comp.chunks_total)
    rows = [
        ("families", families),
        ("chunks done", f"{comp.chunks_done} of {comp.chunks_total}"),
        ("segments visible", f"{comp.segments_visible} of {comp.segments_total}"),
        ("files", f"{status.size}: {int(ok.sum())} ok ({int((ok & (warning != '')).sum())} with warnings), "
                  f"{int((status == 'error').sum())} failed, {int((status == 'pending').sum())} pending"),
        ("audio (ok files)", f"{duration[ok].sum() / 3600:.3f} h"),
        ("created", raw.attrs.get("created", "")),
        ("updated", raw.attrs.get("updated", "")),
    ]
    if raw.attrs.get("description"):
        rows.append(("description", raw.attrs["description"]))
    return (f"<p>Store: <code>{_e(store)}</code> &mdash; {state}</p>\n"
            + _table(("item", "value"), rows))


def _config(raw: xr.Dataset) -> str:
    config = store_config(raw.attrs, known_families_only=True).to_dict()
    config["features"] = list(raw.attrs.get("features") or config["features"])  # a plugin's too
    rows = [(key, ", ".join(map(str, value)) if isinstance(value, list) else value) for key, value in config.items()]
    versions = store_versions(raw.attrs)
    if versions:
        rows.append(("versions", " ".join(f"{k}={v}" for k, v in versions.items())))
    if "segment_chunk" in raw.attrs:
        rows.append(("segment_chunk", raw.attrs["segment_chunk"]))
    return _table(("setting", "value"), rows)


def _label_counts(raw: xr.Dataset, visible: np.ndarray) -> tuple[str, list[str]]:
    """The counts table (per label, then the total) and the labels, sorted."""
    counts = label_counts(raw, visible)
    status = as_text(raw["file_status"])
    ok = status == "ok"
    duration = np.asarray(raw["file_duration"].values, dtype=np.float64)
    seg_split = as_text(raw["split"])[visible]
    rows = [(_shown(c.label), c.files, c.failed_files, c.segments, f"{c.hours:.3f}", *(c.splits[s] for s in SPLITS))
            for c in counts]
    total = ("total", int(ok.sum()), int((status == "error").sum()), int(visible.size),
             f"{duration[ok].sum() / 3600:.3f}", *(int((seg_split == s).sum()) for s in SPLITS))
    header = ("label", "files", "failed files", "segments", "hours", *SPLITS)
    table = _table(header, rows, numeric=[False] + [True] * (4 + len(SPLITS)), total=total)
    return table, [c.label for c in counts]


def _durations(raw: xr.Dataset, colors: Mapping[str, Any]) -> str:
    from matplotlib.ticker import MaxNLocator

    status = as_text(raw["file_status"])
    keep = status != "error"
    duration = np.asarray(raw["file_duration"].values, dtype=np.float64)[keep]
    labels = as_text(raw["file_label"])[keep]
    finite = np.isfinite(duration)
    duration, labels = duration[finite], labels[finite]
    if duration.size == 0:
        return '<p class="muted">No readable files: no durations to show.</p>'
    names = sorted(set(labels))
    edges = np.histogram_bin_edges(duration, bins=min(50, max(1, int(np.sqrt(duration.size)) * 2)))
    fig = new_figure(10.0, 3.8)
    ax = fig.subplots()
    ax.hist([duration[labels == name] for name in names], bins=edges.tolist(), stacked=True,
            color=[colors[name] for name in names], label=[mpl_text(_shown(name)) for name in names], edgecolor="white")
    ax.set_xlabel("duration (s, from the file header)")
    ax.set_ylabel("files")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"file durations ({duration.size} files, failed ones left out)")
    legend_outside(ax, title="label")
    return _img(fig, "histogram of file durations")


def _box_features(ds: xr.Dataset) -> list[tuple[str, int | None, str]]:
    """:data:`BOX_FEATURES`, then one scalar per segment of each other family the store holds
    (``tempo``, ``spectral_flatness_mean``...; at most 4 more), named by its attributes."""
    out = list(BOX_FEATURES)
    seen: set[str] = set()
    for name in map(str, ds.data_vars):
        fam = ds[name].attrs.get("family")
        if not fam or fam in TUTORIAL or fam in seen or ds[name].dims != ("segment",) or name.endswith("_std"):
            continue
        seen.add(str(fam))
        out.append((name, None, f"{name} ({ds[name].attrs.get('units', '')}; {fam})"))
        if len(seen) == 4:
            break
    return out


def _box_plots(ds: xr.Dataset, labels: Sequence[str], colors: Mapping[str, Any]) -> str:
    chosen: list[tuple[str, str, Any]] = []
    for var, index, title in _box_features(ds):
        if var not in ds.data_vars:
            continue
        data = ds[var]
        if index is not None:
            dims = data.dims[1:]
            if len(dims) != 1 or data.sizes[dims[0]] <= index:
                continue
            data = data.isel({dims[0]: index})
        elif data.ndim != 1:
            continue
        chosen.append((var if index is None else f"{var}[{index}]", title, data.data))
    if not chosen:
        return '<p class="muted">None of the summary variables drawn here are in this store.</p>'
    values = dask_compute(*(item[2] for item in chosen))  # type: ignore[no-untyped-call]
    seg_labels = as_text(ds["label"])
    present = [label for label in labels if np.any(seg_labels == label)]
    ncols = 2 if len(chosen) > 1 else 1
    nrows = -(-len(chosen) // ncols)
    fig = new_figure(10.0, 0.8 + 3.4 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax, (name, title, _), column in zip(axes, chosen, values, strict=False):
        column = np.asarray(column, dtype=np.float64)
        groups = [column[(seg_labels == label) & np.isfinite(column)] for label in present]
        parts = ax.boxplot(groups, patch_artist=True, widths=0.6, medianprops={"color": "black"},
                           flierprops={"markersize": 3, "alpha": 0.5})
        for patch, label in zip(parts["boxes"], present, strict=True):
            patch.set_facecolor(colors[label])
            patch.set_alpha(0.75)
        ax.set_xticks(range(1, len(present) + 1), [mpl_text(_shown(label)) for label in present],
                      rotation=30 if len(present) > 4 else 0, ha="right" if len(present) > 4 else "center")
        ax.set_title(name, fontsize="medium")
        ax.set_ylabel(title)
    for ax in axes[len(chosen):]:
        ax.set_visible(False)
    fig.suptitle(f"summary features per label ({seg_labels.size} segments)")
    return _img(fig, "box plots of summary features per label")


def _pca(ds: xr.Dataset, labels: Sequence[str], colors: Mapping[str, Any]) -> str:
    n = int(ds.sizes["segment"])
    if n < 2:
        return f'<p class="muted">Too few segments for a projection ({n}).</p>'
    rows = np.unique(np.linspace(0, n - 1, min(n, MAX_PCA_SEGMENTS)).round().astype(np.int64))
    matrix = summary_matrix(ds)
    (sample,) = dask_compute(matrix[rows] if rows.size < n else matrix)  # type: ignore[no-untyped-call]
    x = np.asarray(sample, dtype=np.float64)
    seg_labels = as_text(ds["label"])[rows]
    finite = np.all(np.isfinite(x), axis=1)
    x, seg_labels = x[finite], seg_labels[finite]
    if x.shape[0] < 2:
        return '<p class="muted">Too few segments with finite summaries for a projection.</p>'
    mean, std = moments(x, axis=0)
    z = (x - mean) / std
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    k = min(2, s.size)
    # a deterministic sign: each component's largest loading is positive
    signs = np.sign(vt[np.arange(k), np.argmax(np.abs(vt[:k]), axis=1)])
    signs[signs == 0] = 1.0
    coords = np.zeros((x.shape[0], 2))
    coords[:, :k] = u[:, :k] * s[:k] * signs
    total = float(np.sum(s**2)) or 1.0
    explained = [float(s[i] ** 2) / total if i < k else 0.0 for i in range(2)]
    fig = new_figure(9.0, 6.0)
    ax = fig.subplots()
    for label in labels:
        mine = seg_labels == label
        if mine.any():
            ax.scatter(coords[mine, 0], coords[mine, 1], s=12, alpha=0.75, color=colors[label],
                       label=mpl_text(f"{_shown(label)} ({int(mine.sum())})"), edgecolors="none")
    ax.set_xlabel(f"PC1 ({100 * explained[0]:.1f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * explained[1]:.1f}% of variance)")
    ax.axhline(0.0, color="0.85", linewidth=0.8, zorder=0)
    ax.axvline(0.0, color="0.85", linewidth=0.8, zorder=0)
    subset = f"{x.shape[0]} of {n} segments, evenly spaced" if rows.size < n else f"all {x.shape[0]} segments"
    ax.set_title(f"PCA of standardised summary vectors ({len(feature_names(ds))} features; {subset})")
    legend_outside(ax, title="label", markerscale=1.5)
    return (_img(fig, "PCA projection of segment summary vectors coloured by label")
            + f'<p class="muted">Drawn: {_e(subset)}.</p>')


def _failed(raw: xr.Dataset) -> str:
    status = as_text(raw["file_status"])
    paths = as_text(raw["file_path"])
    errors = as_text(raw["file_error"])
    failed = np.flatnonzero(status == "error")
    parts = []
    if failed.size == 0:
        parts.append("<p>none</p>")
    else:
        parts.append(_table(("path", "reason"), [(paths[i], errors[i] or "(no reason recorded)") for i in failed],
                            path_column=0))
    if "file_warning" in raw.variables:
        warning = as_text(raw["file_warning"])
        warned = np.flatnonzero((warning != "") & (status != "error"))
        if warned.size:
            parts.append("<h3>Warnings</h3>")
            parts.append(_table(("path", "warning"), [(paths[i], warning[i]) for i in warned], path_column=0))
    return "\n".join(parts)


# -- entry point -------------------------------------------------------------------------------
def _check_out(out: str | os.PathLike[str]) -> str:
    target = os.fspath(out)
    if os.path.splitext(target)[1].lower() not in (".html", ".htm"):
        raise InputError(f"Expected a report path ending in .html, got {target!r}")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise InputError(f"Expected an existing directory for the report, got {folder}")
    return target


def write_report(store: str, out: str, *, storage_options: Mapping[str, Any] | None = None) -> str:
    """Write a single-file, offline HTML report of a feature store.

    Parameters
    ----------
    store : str
        Local path or fsspec URL of the store.
    out : str
        Local path of the report, ending in ``.html``.
    storage_options : mapping, optional
        fsspec options for a store URL (never written to the report).

    Returns
    -------
    str
        ``out``.

    Raises
    ------
    InputError
        ``out`` does not end in ``.html`` or its directory does not exist; ``store`` is not a
        feature store; matplotlib is not installed.
    StorageError
        The report cannot be written.
    """
    target = _check_out(out)
    require_matplotlib("draw the report's figures")
    store = os.fspath(store)
    try:
        raw = open_raw(store, storage_options)
        ds = open_store(store, storage_options)
    except SchemaError as exc:
        raise InputError(f"Expected a feature store at {store}, got: {exc}") from exc
    visible = visible_segments(raw)
    counts, labels = _label_counts(raw, visible)
    colors = _colors(labels)
    if ds.sizes["segment"]:
        boxes = _box_plots(ds, labels, colors)
        pca = _pca(ds, labels, colors)
    else:
        boxes = pca = '<p class="muted">No visible segments yet (no chunk is done).</p>'
    name = os.path.basename(store.rstrip("/")) or store
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        ("Store", _overview(store, raw)),
        ("Configuration", _config(raw)),
        ("Counts per label", counts + '<p class="muted">files and hours: files read without error; '
                                      "segments: visible segments (chunk done, file not failed).</p>"),
        ("File durations", _durations(raw, colors)),
        ("Summary features per label", boxes),
        ("Segments in 2-D (PCA)", pca + '<p class="muted">Each point is one segment\'s summary vector '
                                         "(every <code>&lt;var&gt;_mean</code>/<code>_std</code> column), "
                                         "standardised per column, projected on its first two principal "
                                         "components (numpy SVD).</p>"),
        ("Failed files", _failed(raw)),
    ]
    body = "\n".join(f"<h2>{_e(title)}</h2>\n{content}" for title, content in sections)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{_e(name)}: feature store report</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>Feature store report: {_e(name)}</h1>\n<p class=\"muted\">generated {_e(generated)}</p>\n"
        f"{body}\n</body>\n</html>\n"
    )
    try:
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(page)
    except OSError as exc:
        raise StorageError(f"Cannot write {target}: {one_line(exc)}") from exc
    return out
