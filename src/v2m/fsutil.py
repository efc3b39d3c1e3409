"""Files: atomic writes (a file appears complete under its name or not at all) and finding inputs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    On any exception (Ctrl-C included) the temporary file is removed and ``path`` is untouched.
    ``suffix`` keeps an extension that a writer may need to pick its format.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=f".part{suffix}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a finished file gets the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder beside ``path`` and move it into place when the block ends without an
    error (an existing ``path`` is replaced); on an error nothing changes at ``path``."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield staging
        os.chmod(staging, 0o755)
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            path.rename(old)
            staging.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def find_files(inputs: Iterable[str], extensions: Iterable[str],
               skip: Callable[[Path], bool] = lambda p: False) -> tuple[list[tuple[str, str]], list[str]]:
    """Inputs for a folder run: ``([(path, name relative to its input folder)], missing)``.

    Files named directly are always taken (their name is the base name), even when they are not
    regular files: the readers refuse those with one line before opening them. Folders are
    searched recursively, in sorted order, for regular files with one of ``extensions`` (lower
    case, with the dot), leaving out hidden entries below the folder and files for which
    ``skip`` is true (a named pipe there is never opened). Each path
    appears once; inputs that do not exist are returned in ``missing``."""
    exts = {e.lower() for e in extensions}
    found: dict[str, str] = {}
    missing: list[str] = []
    for raw in inputs:
        if os.path.isdir(raw):
            for p in sorted(Path(raw).rglob("*")):
                rel = p.relative_to(raw)
                if (p.is_file() and p.suffix.lower() in exts and not skip(p)
                        and not any(part.startswith(".") for part in rel.parts)):
                    found.setdefault(str(p), str(rel))
        elif os.path.exists(raw) or os.path.islink(raw):
            found.setdefault(raw, os.path.basename(raw))
        else:
            missing.append(raw)
    return list(found.items()), missing
