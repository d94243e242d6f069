"""Train the tutorial's models on a store: lazily, split by file, with per-epoch metrics."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import InputError, SchemaError
from ..families import family
from ..figures import DPI, new_figure
from ..query import summary_variables
from ..schema import SPLITS
from ..store import as_text, open_store
from ._torch import require_torch
from .batches import classes_of, standardizer
from .models import build_model
from .torch_data import SegmentDataset

torch = require_torch()

__all__ = ["model_variables", "train"]


def model_variables(ds: Any, kind: str) -> list[str]:
    """Inputs of a model: every summary variable for ``mlp``, the mel segment for ``cnn``.

    Parameters
    ----------
    ds : xr.Dataset
        A feature store, as :func:`pipeline.store.open_store` returns it.
    kind : {"mlp", "cnn"}
        The model.

    Returns
    -------
    list of str
        Store variables, in store order.

    Raises
    ------
    InputError
        Another model, or a store without the variables the model needs.
    """
    if kind == "mlp":
        try:
            return summary_variables(ds)
        except SchemaError:
            raise InputError("Expected summary variables (*_mean, *_std) in the store, got none") from None
    if kind == "cnn":
        names = list(family("mel").variable_names)
        if any(name not in ds.data_vars for name in names):
            raise InputError("Expected a `mel` variable for the CNN: extract with --features including mel")
        return names
    raise InputError(f"Expected --model mlp or cnn, got {kind!r}")


def _evaluate(model: Any, loader: Any, loss_fn: Any, n_classes: int) -> tuple[float, float, np.ndarray, int]:
    model.eval()
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    total_loss, count = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            total_loss += loss_fn(logits, y).item() * len(y)
            count += len(y)
            np.add.at(confusion, (y.numpy(), logits.argmax(1).numpy()), 1)
    accuracy = float(np.trace(confusion) / count) if count else float("nan")
    return (total_loss / count if count else float("nan")), accuracy, confusion, count


def train(
    store: str,
    *,
    model: str = "mlp",
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    out_dir: str | None = None,
    num_workers: int = 0,
    storage_options: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``mlp`` (summary features) or ``cnn`` (mel) and return the metrics.

    Splits come from the store (by file). Standardisation statistics are computed lazily from
    the train split only. The model with the best validation accuracy is kept. When
    ``out_dir`` is given it receives ``model.pt``, ``model.json``, ``metrics.json`` and
    ``confusion.png``.
    """
    if epochs < 1:
        raise InputError(f"Expected epochs >= 1, got {epochs}")
    torch.manual_seed(seed)
    ds = open_store(store, storage_options)
    classes = classes_of(ds)
    if len(classes) < 2:
        raise InputError(f"Expected at least 2 labels to train on, got {classes}")
    variables = model_variables(ds, model)
    splits = as_text(ds["split"])
    counts = {s: int((splits == s).sum()) for s in SPLITS}
    if counts["train"] == 0 or counts["test"] == 0:
        raise InputError(f"Expected segments in the train and test splits, got {counts}")
    stats = standardizer(ds, variables, split="train")
    common: dict[str, Any] = {"batch_size": batch_size, "seed": seed, "standardize": stats, "classes": classes,
                              "storage_options": storage_options}
    train_ds = SegmentDataset(store, variables, split="train", shuffle=True, **common)
    eval_sets = {s: SegmentDataset(store, variables, split=s, shuffle=False, **common) for s in SPLITS if s != "train"}

    def loader(dataset: Any) -> Any:
        return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers)

    first_x, _ = next(iter(train_ds))
    net = build_model(model, n_inputs=int(np.prod(first_x.shape[1:])), n_classes=len(classes))
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    log(f"training {model} on {counts['train']} segments ({len(classes)} classes: {', '.join(classes)}); "
        f"val {counts['val']}, test {counts['test']}")
    best_state, best_val, history = None, -1.0, []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        train_ds.set_epoch(epoch)
        net.train()
        total, correct, seen = 0.0, 0, 0
        for x, y in loader(train_ds):
            optimiser.zero_grad()
            logits = net(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        val_loss, val_acc, _, n_val = _evaluate(net, loader(eval_sets["val"]), loss_fn, len(classes))
        row = {"epoch": epoch + 1, "loss": total / seen, "accuracy": correct / seen,
               "val_loss": val_loss if n_val else None, "val_accuracy": val_acc if n_val else None,
               "seconds": time.perf_counter() - t0}
        history.append(row)
        log(f"epoch {epoch + 1}/{epochs}: loss {row['loss']:.4f} acc {row['accuracy']:.3f}"
            + (f" | val loss {val_loss:.4f} acc {val_acc:.3f}" if n_val else "") + f" ({row['seconds']:.1f} s)")
        score = val_acc if n_val else correct / seen
        if score > best_val:
            best_val, best_state = score, {k: v.detach().clone() for k, v in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)
    _, val_acc, _, n_val = _evaluate(net, loader(eval_sets["val"]), loss_fn, len(classes))
    _, test_acc, confusion, _ = _evaluate(net, loader(eval_sets["test"]), loss_fn, len(classes))
    train_labels = as_text(ds["label"])[splits == "train"]
    test_labels = as_text(ds["label"])[splits == "test"]
    majority = max(set(train_labels.tolist()), key=train_labels.tolist().count)
    metrics: dict[str, Any] = {
        "model": model, "classes": classes, "test_accuracy": test_acc,
        "val_accuracy": val_acc if n_val else None,
        "majority_baseline": float(np.mean(test_labels == majority)),
        "confusion": confusion.tolist(), "segments": counts, "epochs": epochs, "history": history,
        "variables": variables, "store": store,
    }
    log(f"test accuracy {test_acc:.3f} (majority baseline {metrics['majority_baseline']:.3f})")
    if out_dir is not None:
        _save(out_dir, net, metrics, stats.to_dict(), dict(ds.attrs))
        log(f"wrote {out_dir}/model.pt, metrics.json, confusion.png")
    return metrics


def _save(out_dir: str, net: Any, metrics: dict[str, Any], stats: dict[str, Any], store_attrs: dict[str, Any]) -> None:
    os.makedirs(out_dir, exist_ok=True)
    torch.save(net.state_dict(), os.path.join(out_dir, "model.pt"))
    config = {k: store_attrs[k] for k in ("sr", "n_fft", "hop_length", "n_mels", "n_mfcc", "segment_seconds",
                                           "segment_hop_seconds", "features", "fmin", "fmax") if k in store_attrs}
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump({"model": metrics["model"], "classes": metrics["classes"], "variables": metrics["variables"],
                   "standardize": stats, "feature_config": config}, f, indent=1)
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    plot_confusion(np.asarray(metrics["confusion"]), metrics["classes"], os.path.join(out_dir, "confusion.png"),
                   title=f"{metrics['model']}: test accuracy {metrics['test_accuracy']:.3f}")


def plot_confusion(confusion: np.ndarray, classes: list[str], path: str, *, title: str = "") -> None:
    """A labelled confusion matrix (rows: true, columns: predicted) as a PNG.

    Parameters
    ----------
    confusion : np.ndarray [shape=(n_classes, n_classes)], int
        Counts; row ``i`` is true class ``i``.
    classes : list of str
        Class names.
    path : str
        The PNG to write.
    title : str
        The figure's title.
    """
    size = 0.6 * len(classes)
    fig = new_figure(1.0 + size, 0.8 + size, layout=None)
    ax = fig.subplots()
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = confusion.max() if confusion.size else 0
    for (i, j), n in np.ndenumerate(confusion):
        ax.text(j, i, str(n), ha="center", va="center", color="white" if n > peak / 2 else "black", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
