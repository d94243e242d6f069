"""Plugins' families on a cluster's workers: a Dask worker plugin that carries their source."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distributed import WorkerPlugin

from .plugins import PluginSource, load_source

__all__ = ["FamilyPlugin", "ship_plugins"]


class FamilyPlugin(WorkerPlugin):
    """Registers plugins' families in every worker: each one now, and each that joins later.

    It carries the plugins' source text, so a worker needs the plugin's imports installed but
    not its file (a remote cluster, a restarted worker).
    """

    name = "audio-pipeline-families"

    def __init__(self, sources: Sequence[PluginSource]) -> None:
        self.sources = list(sources)

    def setup(self, worker: Any) -> None:
        for src in self.sources:
            load_source(src.module, src.source)


def ship_plugins(client: Any, sources: Sequence[PluginSource]) -> None:
    """Register :class:`FamilyPlugin` with ``client`` (nothing to do without plugins)."""
    if sources:
        client.register_plugin(FamilyPlugin(sources), name=FamilyPlugin.name)
