"""One training process per run directory (POSIX: ``fcntl.flock``).

Two processes training the same run directory (a suite started twice on one
machine, or on several machines sharing a file system, or a `--resume` typed
while the run is still going) would interleave their progress.csv rows and
overwrite each other's checkpoints. A trainer therefore holds an exclusive,
non-blocking ``flock`` on ``<run_dir>/.train.lock`` from the moment it claims
the directory until it closes; the kernel drops the lock when the process
dies, so a killed run never leaves a stale lock behind. The file holds the
owner's ``host:pid``, for the error message only.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import IO, Optional

from ratbench.errors import RatbenchError

LOCK_FILE = ".train.lock"
BUSY_EXIT_CODE = 75  # sysexits.h EX_TEMPFAIL: try again later; suite runners count it as skipped


class RunBusyError(RatbenchError):
    """The run directory is being trained by another process."""

    exit_code = BUSY_EXIT_CODE


class RunLock:
    """An exclusive claim on a run directory; :meth:`release` (or process exit) gives it up."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._created_dir = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._created_file = not (self.run_dir / LOCK_FILE).exists()
        self._file: Optional[IO[str]] = open(self.run_dir / LOCK_FILE, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            owner = self._file.read().strip() or "unknown"
            self._file.close()
            self._file = None
            raise RunBusyError(f"{str(self.run_dir)!r} is being trained by another process ({owner}); "
                               "wait for it to finish or stop it, then resume") from None
        self._file.truncate(0)
        self._file.write(f"{socket.gethostname()}:{os.getpid()}")
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def abandon(self) -> None:
        """Release after a failed start, removing the lock file and the directory if this claim made them
        (the directory only when nothing else is in it), so a run that never started leaves nothing on disk."""
        self.release()
        if self._created_file:
            (self.run_dir / LOCK_FILE).unlink(missing_ok=True)
        if self._created_dir and not any(self.run_dir.iterdir()):
            self.run_dir.rmdir()


def is_busy(run_dir: str | Path) -> bool:
    """Whether another process holds ``run_dir``'s lock now (a missing directory is not busy)."""
    path = Path(run_dir) / LOCK_FILE
    if not path.is_file():
        return False
    with open(path, "a") as handle:  # writable: flock over NFS is emulated with POSIX locks
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False
