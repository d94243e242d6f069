"""Keeping a failing command to one line: distributed's shutdown noise goes nowhere."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["drop_distributed_del_errors"]


def drop_distributed_del_errors() -> None:
    """From now on, drop the exceptions distributed's objects raise in ``__del__`` (a client
    collected after its event loop closed, as a run torn down by Ctrl-C leaves): the command's
    one line is the report. Every other unraisable exception goes to the hook as before. Not
    undone: the collection can come at any moment after the command, even in-process."""
    previous = sys.unraisablehook
    if getattr(previous, "_drops_distributed_del", False):
        return

    def hook(unraisable: Any) -> None:
        owner = getattr(unraisable.object, "__qualname__", "") or type(unraisable.object).__qualname__
        module = getattr(unraisable.object, "__module__", "") or ""
        if not (module.startswith("distributed") and owner.endswith("__del__")):
            previous(unraisable)

    hook._drops_distributed_del = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook
