"""A gate on the Dask scheduler: chunk tasks of a new store compute while its template is
written, and wait at the gate only to write.

The extract submits the tasks, writes the template from the client, then opens the gate (a
``distributed.Variable`` set to ``ok``, or ``failed`` if the template could not be written). A
task that finishes computing before that waits; after it, the gate costs one scheduler round
trip. Only on a cluster that lives in the client's process (a LocalCluster, which ends with
the client); on a remote cluster, or without one, the template is simply written first.
"""

from __future__ import annotations

import os
from typing import Any

from .console import drop_distributed_del_errors
from .errors import StorageError
from .settings import setting

__all__ = ["TemplateGate", "wait_for_template"]

_OK, _FAILED = "ok", "failed"


class TemplateGate:
    """The client's side of the gate."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self.opened = False

    @classmethod
    def create(cls, client: Any | None) -> TemplateGate | None:
        return None if client is None else cls(client, f"pipeline-template-{os.urandom(8).hex()}")

    def _variable(self) -> Any:
        from distributed import Variable

        return Variable(self.name, client=self.client)  # type: ignore[no-untyped-call]

    def open(self, *, ok: bool) -> None:
        self._variable().set(_OK if ok else _FAILED)
        self.opened = True

    def close(self) -> None:
        """Remove the gate once every task is done (after an error it is left, failed, for
        tasks that may still ask)."""
        self._variable().delete()


def wait_for_template(name: str | None, timeout: float | None = None) -> None:
    """In a task: return once the template is written; StorageError if it failed or timed out
    (after ``timeout`` seconds, by default ``pipeline.template-wait-seconds``)."""
    if name is None:
        return
    timeout = setting("template-wait-seconds") if timeout is None else timeout
    from distributed import Variable

    # the Variable makes this worker a client, which complains from __del__ when the worker is
    # closed mid-run (Ctrl-C): that would print a traceback under the command's one line
    drop_distributed_del_errors()
    variable: Any = Variable(name)  # type: ignore[no-untyped-call]
    try:
        value = variable.get(timeout=timeout)
    except TimeoutError as exc:
        raise StorageError(f"the store's template was not written within {timeout:.0f} s") from exc
    if value != _OK:
        raise StorageError("the store's template could not be written (the extract reports why)")
