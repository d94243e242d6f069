"""Users' own feature families: loaded from a file, a module, or an installed entry point.

A plugin is a Python module that defines ``FAMILIES``: a sequence of
:class:`~pipeline.families.registry.Family` (see ``docs/features.md``). Loading it registers
each family with its origin: the module's name, its ``__version__`` (or the family's
version) and the SHA-256 of its source, which the store records and a later run must match.

How the code reaches a cluster's workers: :class:`~pipeline.families.worker.FamilyPlugin`, a
Dask worker plugin that carries each plugin's source text and registers its families in every
worker, present and future (a restarted worker too). Workers need the plugin's imports installed, not its file.
Installed packages declare their modules under the entry-point group
``audio_pipeline.features``; those are loaded in every process that lists the families.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ..errors import ConfigError, FamilyError, one_line
from .registry import Family, register

__all__ = ["ENTRY_POINT_GROUP", "PluginSource", "load_entry_points", "load_plugin", "load_source", "loaded_sources"]

ENTRY_POINT_GROUP = "audio_pipeline.features"


@dataclass(frozen=True)
class PluginSource:
    """A loaded plugin: its module name, version, source text and the source's SHA-256."""

    module: str
    version: str
    source: str
    sha256: str


#: every plugin loaded in this process, by module name (what a worker plugin ships)
_LOADED: dict[str, PluginSource] = {}


def loaded_sources(names: Iterable[str] | None = None) -> list[PluginSource]:
    """The loaded plugins (those defining one of the families ``names``, when given)."""
    if names is None:
        return list(_LOADED.values())
    from .registry import family

    modules = {family(name).origin.get("module") for name in names}
    return [src for mod, src in _LOADED.items() if mod in modules]


def _module_name(spec: str) -> str:
    stem = os.path.splitext(os.path.basename(spec))[0]
    safe = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in stem) or "plugin"
    return safe if safe[0].isalpha() or safe[0] == "_" else f"_{safe}"


def _register_module(module: types.ModuleType, name: str, source: str) -> list[Family]:
    """Register the families a plugin module declares in ``FAMILIES``, with their origin."""
    declared = getattr(module, "FAMILIES", None)
    if declared is None or isinstance(declared, Family | str) or not isinstance(declared, Sequence | tuple | list):
        raise ConfigError(f"Expected plugin {name} to define FAMILIES, a list of pipeline.families.Family, got {type(declared).__name__}")
    families = list(declared)
    bad = [f for f in families if not isinstance(f, Family)]
    if bad or not families:
        raise ConfigError(f"Expected plugin {name}'s FAMILIES to hold pipeline.families.Family objects, got {bad[:1] or 'none'}")
    sha = hashlib.sha256(source.encode()).hexdigest()
    version = str(getattr(module, "__version__", "") or "")
    _LOADED[name] = PluginSource(module=name, version=version, source=source, sha256=sha)
    out = []
    for fam in families:
        origin = {"module": name, "source_sha256": sha, **({"plugin_version": version} if version else {})}
        out.append(register(replace(fam, origin=origin)))
    return out


def load_plugin(spec: str) -> list[Family]:
    """Load a plugin: a ``.py`` file, or an importable module name; register its families.

    Raises
    ------
    ConfigError
        No such file or module, the module fails to import (its one-line reason), it declares
        no ``FAMILIES``, or a family clashes with a registered one.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"Expected --plugin to name a .py file or a module, got {spec!r}")
    spec = spec.strip()
    if spec.endswith(".py") or os.sep in spec:
        if not os.path.isfile(spec):
            raise ConfigError(f"Expected --plugin {spec} to be a Python file, found none")
        with open(spec, encoding="utf-8") as fh:
            source = fh.read()
        return load_source(_module_name(spec), source, origin=spec)
    try:
        module = importlib.import_module(spec)
    except Exception as exc:
        raise ConfigError(f"Expected plugin module {spec} to import, got {type(exc).__name__}: {one_line(exc)}") from exc
    return _register_module(module, spec, _module_source(module))


def load_source(name: str, source: str, *, origin: str | None = None) -> list[Family]:
    """Execute a plugin's ``source`` as module ``name`` and register its families."""
    if name in _LOADED and _LOADED[name].source == source:
        return [f for f in _registered() if f.origin.get("module") == name]
    module = types.ModuleType(name)
    module.__file__ = origin or f"<plugin {name}>"
    sys.modules[name] = module  # dataclasses and pickling look a module up by name
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ConfigError(f"Expected plugin {origin or name} to load, got {type(exc).__name__}: {one_line(exc)}") from exc
    return _register_module(module, name, source)


def _registered() -> tuple[Family, ...]:
    from .registry import all_families

    return all_families()


def _module_source(module: types.ModuleType) -> str:
    """The source text a module was loaded from (its file's), for the store's hash."""
    path = getattr(module, "__file__", None)
    if path and os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    return ""


def load_entry_points() -> list[Family]:
    """Register the families of every installed entry point of ``audio_pipeline.features``.

    Each entry point names a module (or object) with ``FAMILIES``. One that fails to load is a
    :class:`FamilyError` naming it (a broken install should not pass silently).
    """
    from importlib.metadata import entry_points

    out: list[Family] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = ep.load()
        except Exception as exc:
            raise FamilyError(f"entry point {ep.name} = {ep.value} of {ENTRY_POINT_GROUP} failed to load: {type(exc).__name__}: {one_line(exc)}") from exc
        module = target if isinstance(target, types.ModuleType) else sys.modules.get(ep.module)
        if module is None:
            raise FamilyError(f"entry point {ep.name} = {ep.value} of {ENTRY_POINT_GROUP} names no module")
        out += _register_module(module, module.__name__, _module_source(module))
    return out
