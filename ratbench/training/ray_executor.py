"""Suites on a Ray cluster (optional extra ``ratbench[ray]``).

Each run is one Ray task that reserves its torch thread count in CPUs (``threads`` from the run's
config, 1 when unset, and passed to the run explicitly). No shared file system is assumed: the
driver sends the run directory's current contents (empty for a new run, the checkpoint and logs
for an unfinished one) with the task, the worker trains in a temporary directory and returns the
whole run directory, which the driver unpacks into the suite's logdir. A run that fails is reported
with its error and leaves its previous state in place, so rerunning the suite resumes it; finished
runs return at once. Everything a run computes is the same as with the local executor.
"""

from __future__ import annotations

import dataclasses
import io
import tarfile
import tempfile
from pathlib import Path
from typing import Sequence

import click

from ratbench.errors import RatbenchError
from ratbench.training.run_lock import LOCK_FILE, RunBusyError, RunLock
from ratbench.training.suite_run import SuiteRun, report_busy, run_one, skip_busy

INSTALL_HINT = "pip install ray (or, in a ratbench checkout, pip install -e '.[ray]')"


def pack(directory: Path) -> bytes:
    """The directory's files as an in-memory tar (empty for a missing directory)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        if directory.is_dir():
            for path in sorted(directory.rglob("*")):
                if path.name == LOCK_FILE:  # a lock belongs to the machine that holds it
                    continue
                tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, directory: Path) -> None:
    """Write ``pack``'s files into ``directory`` (atomically per file, through a temporary sibling)."""
    from ratbench.io import atomic_write_bytes

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            target = (directory / member.name).resolve()
            if directory.resolve() not in target.parents:
                raise RatbenchError(f"a returned run directory holds a path outside it: {member.name!r}")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                atomic_write_bytes(target, tar.extractfile(member).read())


def threads_of(run: SuiteRun) -> int:
    threads = run.sets.get("threads")
    return int(threads) if threads not in (None, "null") else 1


def train_remotely(run: SuiteRun, packed: bytes, trust_checkpoint: bool = False) -> bytes:
    """Body of one Ray task: unpack, train or resume in a temporary directory, pack it back."""
    with tempfile.TemporaryDirectory(prefix="ratbench-ray-") as tmp:
        local = Path(tmp) / run.logdir.name
        unpack(packed, local)
        sets = {**run.sets, "threads": threads_of(run)}
        run_one(dataclasses.replace(run, logdir=local, sets=sets), progress_bar=False, trust_checkpoint=trust_checkpoint)
        return pack(local)


def _cause(err: Exception) -> str:
    """A failed task's reason in one line: a ratbench error's own sentence, else the last line of Ray's report."""
    lines = str(err).strip().splitlines()
    if not lines:
        return type(err).__name__
    prefix = f"{RatbenchError.__module__}.{RatbenchError.__qualname__}: "
    last = lines[-1].strip()
    return last[len(prefix):] if last.startswith(prefix) else last[:300]


def run_on_ray(runs: Sequence[SuiteRun], address: str | None = None, trust_checkpoint: bool = False) -> None:
    """Run every suite run as a Ray task (``address``: a cluster, e.g. "auto"; None: a local instance).
    Workers load shipped checkpoints as plain data (``trust_checkpoint``: unpickle older ones)."""
    try:
        import ray
    except ImportError:
        raise RatbenchError(f"--executor ray needs the ray package, which is not installed; run: {INSTALL_HINT}") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}})
    task = ray.remote(train_remotely)
    pending, failed, busy = {}, [], []
    try:
        for run in runs:
            try:
                lock = RunLock(run.logdir)  # held here while a worker trains the run's copy
            except RunBusyError:
                skip_busy(run, busy)
                continue
            pending[task.options(num_cpus=threads_of(run)).remote(run, pack(run.logdir), trust_checkpoint)] = (run, lock)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            run, lock = pending.pop(done[0])
            try:
                unpack(ray.get(done[0]), run.logdir)
                click.echo(f"finished {run.logdir}", err=True)
            except ray.exceptions.RayError as err:
                cause = _cause(err)
                failed.append(f"{run.logdir}: {cause}")
                click.echo(f"failed {run.logdir}: {cause}", err=True)
            finally:
                lock.release()
    finally:
        for _, lock in pending.values():
            lock.release()
        if started_here:
            ray.shutdown()
    report_busy(busy)
    if failed:
        raise RatbenchError(f"{len(failed)} run(s) failed on Ray (rerun the suite to resume them): " + "; ".join(failed))
