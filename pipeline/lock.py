"""The writer's claim on a store: one ``extract`` at a time writes into a store.

A run claims ``STORE.lock`` (beside the store, so that rewriting a half-made template cannot
remove it) before it looks at the store, renews the claim while it runs and removes it at the
end. A second run that finds a live claim refuses with one line naming the other run
(:class:`~pipeline.errors.StoreBusy`). A claim is created atomically: ``O_EXCL`` on local
disk, a conditional ``PUT`` (``If-None-Match: *``) on S3; on other filesystems fsspec's
exists-then-write, which narrows the race but cannot close it.

A claim left by a run that died expires:

- at once, when it names a process on this host that no longer exists;
- otherwise ``ttl`` seconds after its last renewal (a live run renews every ``ttl / 4``).

A run whose claim was taken over after it stalled for longer than ``ttl`` finds out at its
next renewal and fails before it finalises (:meth:`StoreLock.check`). Its chunk tasks write
idempotent, chunk-aligned regions, so work they finish meanwhile is still correct.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import StorageError, StoreBusy, one_line
from .io import filesystem, is_url
from .settings import setting

__all__ = ["Claim", "StoreLock", "lock_path"]



def lock_path(store_url: str) -> str:
    """Where a store's claim lives: ``STORE.lock``, beside the store."""
    return store_url.rstrip("/") + ".lock"


@dataclass(frozen=True)
class Claim:
    """Who writes a store: a run id, its host and process, when it started and last renewed."""

    run: str
    host: str
    pid: int
    started: float
    renewed: float

    def describe(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        started = datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds")
        return f"run {self.run[:8]}, pid {self.pid} on {self.host}, started {started}, renewed {now - self.renewed:.0f} s ago"

    def stale(self, ttl: float, now: float | None = None) -> bool:
        """Whether this claim has expired (see the module's docstring)."""
        now = time.time() if now is None else now
        if self.host == socket.gethostname() and not _alive(self.pid):
            return True
        return now - self.renewed > ttl

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Claim | None:
        try:
            raw = json.loads(data.decode())
            return cls(run=str(raw["run"]), host=str(raw["host"]), pid=int(raw["pid"]),
                       started=float(raw["started"]), renewed=float(raw["renewed"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StoreLock:
    """``with StoreLock(url, options): ...`` holds the store's claim for the block.

    Parameters
    ----------
    store_url : the store's URL or absolute path
    storage_options : fsspec options for a URL (no credentials: see :mod:`pipeline.io`)
    ttl : seconds without renewal after which a claim expires [``pipeline.lock-ttl-seconds``]
    """

    def __init__(self, store_url: str, storage_options: Mapping[str, Any] | None = None, *, ttl: float | None = None) -> None:
        self.store_url, self.path = store_url, lock_path(store_url)
        self.ttl = float(setting("lock-ttl-seconds") if ttl is None else ttl)
        self.options = dict(storage_options or {})
        now = time.time()
        self.claim = Claim(run=uuid.uuid4().hex, host=socket.gethostname(), pid=os.getpid(), started=now, renewed=now)
        self.taken_over: Claim | None = None
        self.lost: Claim | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- storage ---------------------------------------------------------------------------
    def _create(self, data: bytes) -> None:
        """Write the claim only if none exists: FileExistsError otherwise."""
        if not is_url(self.path):
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            return
        fs, path = filesystem(self.path, self.options)
        fs.pipe_file(path, data, mode="create")

    def _read(self) -> Claim | None:
        try:
            if not is_url(self.path):
                with open(self.path, "rb") as handle:
                    data = handle.read()
            else:
                fs, path = filesystem(self.path, self.options)
                fs.invalidate_cache(path)
                data = fs.cat_file(path)
        except FileNotFoundError:
            return None
        claim = Claim.from_bytes(data)
        # unreadable (a claim half-written by a killed run): as old as its file
        return claim if claim is not None else Claim(run="unreadable", host="?", pid=0, started=0.0, renewed=0.0)

    def _overwrite(self, data: bytes) -> None:
        if not is_url(self.path):
            tmp = f"{self.path}.{self.claim.run}"
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, self.path)
            return
        fs, path = filesystem(self.path, self.options)
        fs.pipe_file(path, data)

    def _remove(self) -> None:
        try:
            if not is_url(self.path):
                os.remove(self.path)
            else:
                fs, path = filesystem(self.path, self.options)
                fs.rm_file(path)
        except FileNotFoundError:
            pass

    # -- the claim -------------------------------------------------------------------------
    def acquire(self) -> StoreLock:
        """Claim the store, or raise :class:`StoreBusy` naming the run that holds it."""
        for _ in range(5):
            try:
                self._create(self.claim.to_bytes())
            except FileExistsError:
                other = self._read()
                if other is None:
                    continue  # released meanwhile: try again
                if not other.stale(self.ttl):
                    raise StoreBusy(
                        f"{self.store_url} is being written by another run ({other.describe()}); wait for it to "
                        f"finish, or delete {self.path} if that run is gone (a claim expires {self.ttl:.0f} s "
                        "after its last renewal, at once if its process on this host has died)"
                    ) from None
                self.taken_over = other
                self._remove()
                continue
            except OSError as exc:
                raise StorageError(f"cannot claim {self.store_url} ({self.path}): {one_line(exc)}") from exc
            if self._read() == self.claim:
                self._thread = threading.Thread(target=self._renew, name="store-lock", daemon=True)
                self._thread.start()
                return self
        raise StoreBusy(f"{self.store_url}: could not claim {self.path} (other runs keep taking it); try again")

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                current = self._read()
                if current is None or current.run != self.claim.run:
                    self.lost = current or self.claim
                    return
                renewed = Claim(**{**asdict(self.claim), "renewed": time.time()})
                self._overwrite(renewed.to_bytes())
                self.claim = renewed  # once stored: what this run says it holds is what is stored
            except OSError:
                continue  # a passing storage fault: the next renewal tries again

    def check(self) -> None:
        """Raise :class:`StoreBusy` if another run took the claim over while this one stalled."""
        if self.lost is not None:
            raise StoreBusy(
                f"{self.store_url}: this run's claim ({self.path}) was taken over by another run "
                f"({self.lost.describe()}) after it went {self.ttl:.0f} s without renewal; re-run when that run ends"
            )

    def release(self) -> None:
        """Stop renewing and remove the claim if it is still this run's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            current = self._read()
            if current is not None and current.run == self.claim.run:
                self._remove()
        except OSError:
            pass  # it expires by itself

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
