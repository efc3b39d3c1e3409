"""Audio that is read a block at a time, so that no stage holds a full-length copy.

A *signal* is anything with ``channels``, ``n`` (its length in samples) and ``read(start,
stop)`` returning float32 ``[channels, stop - start]``, zeros past its end (the length a caller
asks for is the length it gets: :func:`v2m.render.audio.fit_length`'s padding, for free).

- :class:`ArraySignal`: an array in memory as a signal (the neural models' music, tests).
- :class:`Spool`: samples written block by block, in order, into an anonymous temporary file
  (``O_TMPFILE`` where the system has it: it disappears when closed, or when the process dies)
  and read back at any range. Between the passes of a render the audio waits here, on disk,
  not in memory.

:func:`blocks` cuts any signal into consecutive blocks of :data:`BLOCK_SECONDS`.
"""

from __future__ import annotations

import os
import tempfile
from typing import Iterator, Protocol

import numpy as np

BLOCK_SECONDS = 10  # the length of a block that a render pass holds at a time


class Signal(Protocol):
    channels: int
    n: int

    def read(self, start: int, stop: int) -> np.ndarray: ...


def block_size(sample_rate: int) -> int:
    """Samples in a block: :data:`BLOCK_SECONDS`, a whole number of twentieths of a second (the
    alignment picture's level curve, :func:`v2m.render.plot.level_curve`, then needs no frame
    across two blocks)."""
    return max(1, sample_rate // 20) * 20 * BLOCK_SECONDS


def blocks(signal: Signal, size: int, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, block)`` for consecutive blocks of ``size`` samples from 0 to ``stop`` (default:
    the signal's length); the last may be shorter."""
    stop = signal.n if stop is None else stop
    for start in range(0, stop, size):
        yield start, signal.read(start, min(stop, start + size))


class ArraySignal:
    """An array ``[channels, n]`` read as a signal (no copy until read)."""

    def __init__(self, audio: np.ndarray):
        self.audio = audio
        self.channels, self.n = audio.shape

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros((self.channels, stop - start), np.float32)
        have = self.audio[:, start : min(stop, self.n)]
        out[:, : have.shape[1]] = have
        return out


class Spool:
    """float32 samples ``[channels, n]`` in an anonymous temporary file in ``folder`` (None: the
    system's temporary folder): :meth:`write` appends a block, :meth:`read` reads any range
    (reads and writes are positional, so threads may share a spool). Close it (or use it as a
    context manager) to free the disk space."""

    def __init__(self, channels: int = 2, folder: str | None = None):
        self.channels = channels
        self.n = 0
        self._file = tempfile.TemporaryFile(dir=folder)
        self._fd = self._file.fileno()

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` ``[channels, k]``."""
        data = np.ascontiguousarray(np.asarray(block, np.float32).T).tobytes()
        offset = self.n * self.channels * 4
        while data:
            done = os.pwrite(self._fd, data, offset)
            data, offset = data[done:], offset + done
        self.n += block.shape[1]

    def write_zeros(self, count: int, size: int = 1 << 20) -> None:
        """Append ``count`` samples of silence."""
        for start in range(0, count, size):
            self.write(np.zeros((self.channels, min(size, count - start)), np.float32))

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros((stop - start, self.channels), np.float32)
        have = max(0, min(stop, self.n) - start)
        if have:
            view = memoryview(out).cast("B")
            nbytes, offset, done = have * self.channels * 4, start * self.channels * 4, 0
            while done < nbytes:
                chunk = os.pread(self._fd, nbytes - done, offset + done)
                if not chunk:
                    raise OSError(f"the temporary audio file ended {nbytes - done} bytes early")
                view[done : done + len(chunk)] = chunk
                done += len(chunk)
        return np.ascontiguousarray(out.T)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
