"""Modules that are also the function they are named after (``pipeline.query``, ``pipeline.similar``)."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any


def make_module_callable(module_name: str, func: Callable[..., Any]) -> None:
    """Calling module ``module_name`` calls ``func``.

    ``pipeline`` imports ``query`` and ``similar`` lazily as functions, but an import of the
    submodule leaves the module at ``pipeline.query``: whichever is there, calling it works.
    """

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

    sys.modules[module_name].__class__ = _CallableModule
