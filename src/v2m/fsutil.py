"""Files: atomic writes (a file appears complete under its name or not at all), output checks
with one-line errors, clean-up after killed runs, and finding inputs.

Temporary files and folders are hidden siblings of their target named
``.<name>.v2m-<host>-<pid>-<random>.part<ext>``: the tag says which process on which machine
made them, so a later run can tell litter of a killed run (:func:`remove_stale_parts`) from the
work of a process that is still writing (another shard of the same job, say).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import OutputError, V2MError

NAME_MAX = 255  # bytes in one file name on every file system v2m meets (ext4, xfs, btrfs, APFS, NTFS)
STALE_SECONDS = 24 * 3600  # a temporary file from another machine this old belongs to no live run
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_PART = re.compile(r"^\..*\.v2m-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[^.]*\.part")
# errno values that say "this output cannot be written here", as opposed to bugs
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.ENAMETOOLONG,
                 errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.EIO, errno.EMLINK}


def _temp_prefix(path: str) -> str:
    """The hidden prefix of ``path``'s temporary siblings, short enough for ``NAME_MAX``."""
    name = os.path.basename(path)
    tag = f"v2m-{_HOST}-{os.getpid()}-"
    room = NAME_MAX - len(tag) - 2 - 8 - len(".part") - 16  # dots, mkstemp's random part, a suffix
    return f".{name.encode()[:room].decode(errors='ignore')}.{tag}"


def _name_error(path: str) -> None:
    name = os.path.basename(path)
    if len(os.fsencode(name)) > NAME_MAX:
        raise OutputError(path, f"file name too long: {len(os.fsencode(name))} bytes, at most {NAME_MAX}")


def check_output(path: str | os.PathLike, folder: bool = False) -> None:
    """Raise :class:`OutputError` now, before any work, when ``path`` (a file, or with ``folder``
    a folder to write into) cannot be written: a name too long, a parent that is a file, or a
    place that cannot be written (read-only, no permission, a virtual file system). Creates
    nothing."""
    path = os.path.abspath(os.fspath(path))
    _name_error(path)
    if os.path.isdir(path) and not folder:
        raise OutputError(path, "it is a folder")
    if os.path.exists(path) and folder and not os.path.isdir(path):
        raise OutputError(path, "it is a file, not a folder")
    parent = path if folder and os.path.isdir(path) else os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise OutputError(path, f"{parent} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except FileNotFoundError:  # a virtual file system such as /proc
        raise OutputError(path, f"{parent} does not accept new files") from None
    except OSError as e:
        raise OutputError(path, e) from None


def _make_temp(path: str, suffix: str) -> str:
    _name_error(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=f".part{suffix}", dir=folder)
        os.close(fd)
    except OSError as e:
        raise OutputError(path, e) from None
    return tmp


def _target(temps: dict[str, str], written: str | None, default: str | None) -> str | None:
    """The file of a set whose temporary path (or a temporary file beside it) is ``written``."""
    for path, tmp in temps.items():
        if written and (written == tmp or os.path.basename(written).startswith(_temp_prefix(tmp))):
            return path
    return default


@contextlib.contextmanager
def atomic_set(paths: Iterable[str | os.PathLike], suffixes: Iterable[str] | None = None
               ) -> Iterator[dict[str, str]]:
    """Write several files as one set: yield ``{path: temporary path beside it}``; when the
    block succeeds the files are renamed into place in the order given (put the one that marks
    the set as complete last), so a killed run never leaves a new file of the set beside an old
    one. On any exception (Ctrl-C included) the temporary files are removed and no file of the
    set changes. A temporary name ends like its file (or with ``suffixes``), so writers can pick
    their format from it. A write that the system refuses (no space, read-only, no permission,
    ...) becomes an :class:`OutputError` naming the file."""
    paths = [os.fspath(p) for p in paths]
    suffixes = [os.path.splitext(p)[1] for p in paths] if suffixes is None else list(suffixes)
    temps: dict[str, str] = {}
    current = ""
    try:
        for current, suffix in zip(paths, suffixes):
            temps[current] = _make_temp(current, suffix)
        yield temps
        umask = os.umask(0)
        os.umask(umask)
        for current in paths:  # mkstemp makes 0600; a finished file gets the usual mode
            os.chmod(temps[current], 0o666 & ~umask)
        for current in paths:
            os.replace(temps.pop(current), current)
    except OSError as e:
        if e.errno in WRITE_ERRNOS and not isinstance(e, FileNotFoundError):
            raise OutputError(_target(temps, e.filename, current), e) from None
        raise
    except V2MError as e:  # a writer's error about our temporary file (or its own beside it) names the file
        target = _target(temps, os.path.abspath(e.path) if e.path else None, None)
        if target is not None:
            e.path = target
        raise
    finally:
        for tmp in temps.values():
            with contextlib.suppress(OSError):
                os.remove(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path`` (the
    one-file case of :func:`atomic_set`). ``suffix`` ends the temporary name, for writers that
    pick their format from it."""
    path = os.fspath(path)
    with atomic_set([path], [suffix]) as temps:
        yield temps[path]


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder beside ``path`` and move it into place when the block ends without an
    error (an existing ``path`` is replaced); on an error nothing changes at ``path``."""
    path = Path(path)
    _name_error(str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=_temp_prefix(str(path)), suffix=".part", dir=path.parent))
    except OSError as e:
        raise OutputError(path, e) from None
    try:
        yield staging
        os.chmod(staging, 0o755)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(str(path)), suffix=".part", dir=path.parent))
            os.rmdir(old)
            path.rename(old)
            staging.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(path)
    except OSError as e:
        if e.errno in WRITE_ERRNOS and not isinstance(e, FileNotFoundError):
            raise OutputError(path, e) from None
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_parts(folder: str | os.PathLike, recursive: bool = False) -> int:
    """Remove temporary files and folders that killed v2m runs left in ``folder``: those made
    on this machine by a process that is gone, and those older than a day from anywhere else.
    Files of live processes are left alone. Returns how many were removed."""
    removed = 0
    folders = [Path(folder)]
    while folders:
        current = folders.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            match = _PART.match(entry.name)
            if match is None:
                if recursive and entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                    folders.append(Path(entry.path))
                continue
            try:
                age = time.time() - entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            mine = match["host"] == _HOST
            if (mine and not _process_alive(int(match["pid"]))) or (not mine and age > STALE_SECONDS):
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path)
                    else:
                        os.remove(entry.path)
                    removed += 1
    return removed


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


def nothing_found(inputs: Iterable[str], extensions: Iterable[str], what: str = "video files") -> V2MError:
    """The error for a run whose inputs hold no file to work on: an input folder that cannot be
    read says so; otherwise the message says that none of ``extensions`` was found."""
    inputs = list(inputs)
    for raw in inputs:
        if os.path.isdir(raw) and not os.access(raw, os.R_OK | os.X_OK):
            return V2MError("this folder cannot be read (permission denied)", raw)
    exts = {e.lower() for e in extensions}
    examples = [e for e in (".mp4", ".mov", ".mkv", ".wav", ".flac") if e in exts] or sorted(exts)[:3]
    where = ", ".join(inputs) if inputs else "the inputs"
    return V2MError(f"no {what} found in {where} (searched recursively for {len(exts)} file endings such as "
                    f"{', '.join(examples)}); nothing to do")
