"""The ``info`` text of a store: config, versions, schema, completeness, counts, failures, changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .config import FeatureConfig
from .peek import peek_store
from .schema import SPLITS
from .store import (
    as_text,
    changed_files,
    completeness,
    families_text,
    label_counts,
    store_versions,
    visible_segments,
)

__all__ = ["format_info"]

#: column widths of the split counts in the label table
_SPLIT_WIDTHS = (8, 6, 6)


def _indexes(url: str, storage_options: Mapping[str, Any] | None, visible: np.ndarray) -> list[str]:
    """One line per nearest-neighbour index of the store: rows held against the visible segments."""
    from .index import index_names, index_state

    out = []
    for name in index_names(url, storage_options):
        state = index_state(url, name, storage_options, visible=visible)
        if state is None:
            continue
        m = state.manifest
        fresh = "fresh" if state.fresh else f"stale: {state.missing} visible segments not in it (run index)"
        out.append(f"index {name}: {m.rows} segments, {len(m.mean)} dims, {m.metric}, {m.library} "
                   f"{m.library_version}, updated {m.updated}; {fresh}")
    return out or ["index: none (audio-pipeline index STORE builds one; similar searches exactly)"]


def format_info(url: str, storage_options: Mapping[str, Any] | None = None, *, check_files: bool = True) -> str:
    """What ``audio-pipeline info`` prints about the store at ``url``.

    Parameters
    ----------
    url : str
        Local path or fsspec URL of the store.
    storage_options : mapping, optional
        fsspec options for a URL.
    check_files : bool
        Also stat every input and list those changed since they were extracted (one request
        per file on object storage).

    Returns
    -------
    str
        Lines of text, without a trailing newline.
    """
    ds = peek_store(url, storage_options)  # through zarr alone: no xarray, pandas or Dask to import
    visible = visible_segments(ds)
    comp = completeness(ds, visible)
    config = {k: ds.attrs.get(k) for k in FeatureConfig().to_dict() if k in ds.attrs}
    lines = [f"store: {url}"]
    lines.append(
        f"complete: {comp.chunks_done}/{comp.chunks_total} chunks ({100 * comp.fraction:.0f}%), "
        f"{comp.segments_visible} of {comp.segments_total} segments visible"
    )
    lines.append("families: " + families_text(ds.attrs, comp.families, comp.chunks_total))
    lines.append("config: " + " ".join(f"{k}={v}" for k, v in config.items()))
    lines.append("versions: " + " ".join(f"{k}={v}" for k, v in store_versions(ds.attrs).items()))
    lines.append(f"created: {ds.attrs.get('created')}  updated: {ds.attrs.get('updated')}")
    lines.append("dims: " + " ".join(f"{k}={v}" for k, v in ds.sizes.items()))
    lines.append("variables:")
    for name, var in ds.data_vars.items():
        lines.append(f"  {name:<26} ({', '.join(map(str, var.dims))}) {var.dtype} [{var.attrs.get('units', '')}]")
    status = as_text(ds["file_status"])
    duration = np.asarray(ds["file_duration"].values, dtype=np.float64)
    warning = as_text(ds["file_warning"])
    ok = status == "ok"
    lines.append(
        f"files: {status.size} ({int(ok.sum())} ok, {int((ok & (warning != '')).sum())} warned, "
        f"{int((status == 'error').sum())} failed, {int((status == 'pending').sum())} pending); "
        f"audio {duration[ok].sum() / 3600:.3f} h"
    )
    lines.append(f"  {'label':<16}{'files':>7}{'segments':>10}{'hours':>9}"
                 + "".join(f"{s:>{w}}" for s, w in zip(SPLITS, _SPLIT_WIDTHS, strict=True)))
    for row in label_counts(ds, visible):
        if not (row.files or row.segments):
            continue  # a label whose every file failed: listed under failed files
        lines.append(
            f"  {row.label or '(none)':<16}{row.files:>7}{row.segments:>10}{row.hours:>9.3f}"
            + "".join(f"{row.splits[s]:>{w}}" for s, w in zip(SPLITS, _SPLIT_WIDTHS, strict=True))
        )
    paths = as_text(ds["file_path"])
    errors = as_text(ds["file_error"])
    failed = np.flatnonzero(status == "error")
    if failed.size:
        lines.append("failed files:")
        lines.extend(f"  {paths[i]}: {errors[i]}" for i in failed)
    warned = np.flatnonzero(warning != "")
    if warned.size:
        lines.append("warnings:")
        lines.extend(f"  {paths[i]}: {warning[i]}" for i in warned)
    lines.extend(_indexes(url, storage_options, visible))
    if check_files:
        changed = changed_files(ds, storage_options)
        lines.append(f"changed since extraction: {len(changed)} files" + (" (re-extract them with --overwrite)" if changed else ""))
        lines.extend(f"  {path}: {what}" for path, what in changed)
    return "\n".join(lines)
