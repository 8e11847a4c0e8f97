"""User-facing errors.

Every mistake a user can make (a bad name, a bad number, a bad file, a
policy the fast path cannot handle) raises :class:`RatbenchError` with one
sentence that says what is wrong and what to do. The CLI prints that
sentence and exits non-zero, with no traceback.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class RatbenchError(ValueError):
    """A user error with a one-sentence, actionable message; the CLI exits with ``exit_code``."""

    exit_code = 1


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> RatbenchError:
    """Error for an unknown registry name, listing close matches and all valid names."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return RatbenchError(f"unknown {kind} {name!r}{hint}; valid {kind}s: {', '.join(valid)}")
