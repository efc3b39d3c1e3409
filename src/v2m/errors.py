"""The errors v2m reports to users.

A :class:`V2MError` carries one line for the user: the file it concerns and what is wrong with
it. The CLI prints exactly that line (no traceback) and exits non-zero; folder runs collect them.
"""

from __future__ import annotations

import os


class V2MError(Exception):
    """A problem the user can act on, reported as one line."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else os.fspath(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MediaError(V2MError):
    """A media file that cannot be used: missing, unreadable, corrupt, or not a video."""


class WeightsUnavailable(V2MError):
    """Model weights that cannot be loaded (not cached, no network, wrong directory)."""


class OutputError(V2MError):
    """An output that cannot be written: its path and the operating system's reason."""

    def __init__(self, path: str | os.PathLike, reason: str | OSError):
        if isinstance(reason, OSError):
            reason = reason.strerror or str(reason)
        self.reason = reason
        super().__init__(f"cannot write this output ({reason})", path)
