"""Atomic file output: a file is either absent or complete, never half-written; YAML input in one sentence.

Everything is written to a temporary file in the target's directory, flushed,
fsynced and renamed over the target (``os.replace`` is atomic on POSIX).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from ratbench.errors import RatbenchError


def read_yaml(path: str | os.PathLike, name: str, remedy: str = "") -> Any:
    """The YAML document in ``path`` (None when it holds none). A file that cannot be read, is not UTF-8 text or is
    not YAML raises a one-sentence :class:`RatbenchError`: ``<name> '<path>' <what is wrong>[; <remedy>]``."""
    def problem(what: str) -> RatbenchError:
        return RatbenchError(f"{name} {str(path)!r} {what}" + (f"; {remedy}" if remedy else ""))

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise problem("is not UTF-8 text (a binary file?)") from None
    except yaml.YAMLError as err:
        raise problem(f"is not valid YAML ({err.__class__.__name__}: {str(err).splitlines()[0]})") from None
    except OSError as err:
        raise problem(f"cannot be read ({err.strerror or err})") from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent directories are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp creates 0600; honour the umask instead
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):  # named by its target, not by the temporary file
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise
    return path


def check_file_targets(paths: Iterable[str | os.PathLike], what: str) -> None:
    """Raise a one-line RatbenchError before any of ``paths`` (the files a command will write) is written, if one
    stands as a directory or could not be created (:func:`check_writable`): no page is left half new, half old."""
    for path in paths:
        if Path(path).is_dir():
            raise RatbenchError(f"cannot write {what}: {str(path)!r} is a directory; move it away or pick another location")
        check_writable(path, what)


def check_writable(path: str | os.PathLike, what: str) -> Path:
    """Raise a one-line RatbenchError unless a file or directory could be created at ``path``: its
    nearest existing ancestor must be a directory that takes a new file, found by trying (an anonymous
    temporary file, gone when closed: ``os.access`` says yes to root for /proc and read-only mounts).
    Leaves nothing behind, so a command can check every output before it starts its work."""
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe != path and not probe.is_dir():
        raise RatbenchError(f"cannot write {what} {str(path)!r}: {str(probe)!r} is a file, not a directory")
    target = probe if probe.is_dir() else probe.parent
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as err:
        raise RatbenchError(f"cannot write {what} {str(path)!r}: {str(target)!r} takes no new file "
                            f"({err.strerror or err}); pick another location") from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """JSON with a trailing newline; NaN/inf become null so any JSON reader can parse it."""
    return atomic_write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=False) + "\n")


def write_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], fieldnames: Iterable[str] | None = None) -> Path:
    """CSV with a header row; columns are the union of the rows' keys in first-seen order."""
    if fieldnames is None:
        fieldnames = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fieldnames), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
