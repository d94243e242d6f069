"""A one-node SLURM for tests: munge, slurmctld and slurmd started as root, torn down after.

Everything lives in one temporary directory: the munge key and socket, ``slurm.conf`` (free
ports, ``proctrack/linuxproc`` and ``task/none``: no cgroups or systemd needed), the state and
spool directories, the daemons' logs. Client commands (``sbatch``, ``sinfo``) find that cluster
through ``SLURM_CONF`` in :attr:`Slurm.env`. A SLURM that already answers ``sinfo`` is used as
it is. Where none can be had, :func:`one_node_slurm` raises :class:`SlurmUnavailable` saying
why (the ``slurm_cluster`` fixture of ``tests/test_slurm.py`` skips with that reason).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "sinfo", "squeue", "scancel")
START_SECONDS = 60.0


class SlurmUnavailable(Exception):
    """No SLURM can be started here; the message says why, in one line."""


@dataclass(frozen=True)
class Slurm:
    """A SLURM to submit to: ``env`` for its client commands (``SLURM_CONF`` when started here)."""

    env: dict[str, str]


def _which(name: str) -> str | None:
    """A program's path on PATH, or in /usr/sbin or /sbin (where Debian puts the daemons)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def sinfo_states(env: dict[str, str]) -> list[str] | None:
    """The node states ``sinfo`` reports (``idle``, ``down*``...), or None when it does not answer."""
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env, timeout=15,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.split() if proc.returncode == 0 else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _memory_mb() -> int:
    """A bit under this machine's memory (slurmd drains a node that has less than its RealMemory)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 * 9 // 10
    raise SlurmUnavailable("no MemTotal in /proc/meminfo")


def write_config(root: Path, munge_socket: Path) -> Path:
    """``slurm.conf`` for one node (this host, on 127.0.0.1) with everything under ``root``."""
    host = socket.gethostname().split(".")[0]
    (root / "state").mkdir()
    (root / "spool").mkdir()
    (root / "plugstack.conf").write_text("")
    conf = root / "slurm.conf"
    conf.write_text(f"""\
ClusterName=pipeline-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
PlugStackConfig={root}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/builtin
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
InactiveLimit=0
MailProg=/bin/true
KillWait=5
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory={_memory_mb()} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
    return conf


def _log(root: Path, name: str) -> Path | None:
    """A daemon's log file, else what it printed, whichever is not empty (or None)."""
    for path in (root / f"{name}.log", root / f"{name}.out"):
        if path.exists() and path.stat().st_size:
            return path
    return None


def _tail(path: Path, lines: int = 3) -> str:
    """``name: last | lines`` of a log, on one line."""
    return f"{path.name}: {' | '.join(path.read_text(errors='replace').strip().splitlines()[-lines:])}"


def _ours(conf: Path) -> list[int]:
    """Every process with our ``SLURM_CONF`` in its environment: the daemons (started with it),
    the job steps slurmd forks and the jobs' processes (sbatch exports the submitter's)."""
    marker = f"SLURM_CONF={conf}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _jobs(env: dict[str, str]) -> list[str]:
    """The ids of the jobs ``squeue`` lists (pending, running or completing)."""
    try:
        proc = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=env, timeout=15,
                              check=False)
    except subprocess.TimeoutExpired:
        return []
    return proc.stdout.split()


def _stop(daemons: dict[str, subprocess.Popen[bytes]], conf: Path, env: dict[str, str]) -> None:
    """Cancel the jobs, stop the daemons (TERM, then KILL), then kill whatever of ours is left."""
    procs = list(daemons.values())
    if len(procs) == len(DAEMONS) and all(p.poll() is None for p in procs):
        subprocess.run(["scancel", "--partition", "debug"], env=env, capture_output=True, timeout=15, check=False)
        deadline = time.monotonic() + 15
        while _jobs(env) and time.monotonic() < deadline:
            time.sleep(0.2)
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for pid in _ours(conf):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def one_node_slurm(timeout: float = START_SECONDS) -> Iterator[Slurm]:
    """The SLURM already answering ``sinfo``, else one started here as root until the block ends.

    Raises SlurmUnavailable (one line: not root, binaries missing, or the daemons' last log
    lines) when none can be had.
    """
    if sinfo_states(dict(os.environ)):
        yield Slurm(env=dict(os.environ))
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable("not root: a one-node SLURM (munged, slurmctld, slurmd) starts only as root, as `make test` does")
    paths = {name: _which(name) for name in (*DAEMONS, *CLIENTS)}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        raise SlurmUnavailable(f"{', '.join(missing)} not found: make test installs slurm-wlm munge as root")
    # a short path: the munge socket's must fit in sun_path (108 bytes)
    root = Path(tempfile.mkdtemp(prefix="slurm-"))
    daemons: dict[str, subprocess.Popen[bytes]] = {}
    conf = root / "slurm.conf"
    env = {**os.environ, "SLURM_CONF": str(conf)}
    try:
        key = root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        munge_socket = root / "munge.socket"
        write_config(root, munge_socket)

        def start(name: str, *args: str) -> None:
            with (root / f"{name}.out").open("wb") as out:
                daemons[name] = subprocess.Popen([str(paths[name]), *args], env=env, stdout=out,
                                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        start("munged", "--foreground", "--force", f"--socket={munge_socket}", f"--key-file={key}",
              f"--pid-file={root}/munged.pid", f"--log-file={root}/munged.log", f"--seed-file={root}/munged.seed")
        deadline = time.monotonic() + timeout
        while not munge_socket.exists() and daemons["munged"].poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        start("slurmctld", "-D", "-f", str(conf))
        start("slurmd", "-D", "-f", str(conf))
        states = None
        while time.monotonic() < deadline and all(p.poll() is None for p in daemons.values()):
            states = sinfo_states(env)
            if states == ["idle"]:
                break
            time.sleep(0.3)
        else:
            exited = [name for name, p in daemons.items() if p.poll() is not None]
            logs = "; ".join(_tail(log) for name in exited or DAEMONS[1:] if (log := _log(root, name)) is not None)
            why = f"{', '.join(exited)} exited" if exited else f"node not idle after {timeout:.0f} s (sinfo: {states})"
            raise SlurmUnavailable(f"SLURM did not come up: {why}; {logs}")
        yield Slurm(env=env)
    finally:
        _stop(daemons, conf, env)
        shutil.rmtree(root, ignore_errors=True)
