"""The one figure helper: matplotlib's presence, the Agg canvas, text as matplotlib shows it.

Every figure of the package (:mod:`pipeline.plot`, :mod:`pipeline.report`, the training's
confusion matrix) is made here: a :class:`matplotlib.figure.Figure` on its own Agg canvas.
That is the one place the backend is chosen, and it is chosen per figure: there is no pyplot
state and no global ``matplotlib.use``, so importing the package never changes the backend of
the program that imports it. Matplotlib is imported only when a figure is made.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any, Literal

from .errors import InputError, StorageError, one_line

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DPI", "legend_outside", "librosa_display", "mpl_text", "new_figure", "require_matplotlib", "save_figure"]

#: Resolution of every figure (pixels per inch of ``figsize``).
DPI = 100


def require_matplotlib(what: str) -> None:
    """Raise unless matplotlib is installed.

    Parameters
    ----------
    what : str
        What it is needed for, as the message says it (``"draw figures"``).

    Raises
    ------
    InputError
        Matplotlib is not installed.
    """
    if importlib.util.find_spec("matplotlib") is None:
        raise InputError(f"Expected matplotlib to {what}, got it not installed: pip install matplotlib")


def librosa_display() -> Any:
    """:mod:`librosa.display` (``specshow``, ``waveshow``), once matplotlib is known to be there.

    Raises
    ------
    InputError
        Matplotlib is not installed.
    """
    require_matplotlib("draw figures")
    import librosa.display

    return librosa.display


def new_figure(width: float, height: float, *, layout: Literal["constrained", "tight"] | None = "constrained") -> Figure:
    """A figure of ``width`` x ``height`` inches at :data:`DPI` on its own Agg canvas.

    Parameters
    ----------
    width, height : float
        Size in inches.
    layout : {"constrained", "tight"} or None
        Matplotlib's layout engine.

    Returns
    -------
    matplotlib.figure.Figure
        Ready to draw on and to ``savefig`` (no pyplot, no global backend).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str) -> None:
    """Write ``fig`` to ``path`` in the format its extension names (``.png``, ``.svg``).

    Raises
    ------
    StorageError
        The file cannot be written.
    """
    try:
        fig.savefig(path, format=os.path.splitext(path)[1].lower()[1:], dpi=DPI)
    except OSError as exc:
        raise StorageError(f"Cannot write {path}: {one_line(exc)}") from exc


def mpl_text(text: str) -> str:
    """Text from files or stores as matplotlib shows it literally.

    ``$`` never starts mathtext, and a leading ``_`` does not hide a legend entry.
    """
    text = text.replace("$", r"\$")
    return f" {text}" if text.startswith("_") else text


def legend_outside(ax: Any, **kwargs: Any) -> None:
    """A legend outside the axes, on the right, so that it never hides data.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    **kwargs
        More :meth:`~matplotlib.axes.Axes.legend` arguments (``title``, ``markerscale``).
    """
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize="small", **kwargs)
