"""Analyse many videos: folders, skipping finished work, worker processes and shards.

An output is skipped when its file already holds an analysis of the same bytes (content key)
with the same settings (settings key) - unless it lacks semantics that this run can now add.
Every output is written atomically, so a killed run leaves only complete files and resumes.
Failures do not stop the run; they are returned for the caller to list.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field, replace
from typing import Iterable

from ..errors import V2MError, WeightsUnavailable
from ..fsutil import check_output, find_files, nothing_found, remove_stale_parts
from ..media import VIDEO_EXTENSIONS
from ..workers import run_jobs, runs_here, threads_per_worker
from .semantic import ClipEmbedder
from .timeline import SUFFIX, Analysis
from .video import AnalysisSettings, analyze_video, content_key


@dataclass(frozen=True)
class Job:
    source: str
    output: str


@dataclass
class RunReport:
    done: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (source, one-line reason)

    @property
    def outputs(self) -> list[str]:
        return [j.output for j in self.done + self.skipped]


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> (i, n)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/n, e.g. 0/4 (got {text!r})") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard i/n needs 0 <= i < n (got {text!r})")
    return i, n


def plan_jobs(inputs: Iterable[str], out_dir: str, shard: tuple[int, int] = (0, 1)) -> tuple[list[Job], list]:
    """Jobs for files and (recursively) folders, sorted, this shard's share only.

    Files named directly are always tried; in folders, files with video extensions are taken
    and their relative paths are kept under ``out_dir``. Missing inputs become failures."""
    inputs = list(inputs)
    found, missing = find_files(inputs, VIDEO_EXTENSIONS)
    if not found and not missing:
        raise nothing_found(inputs, VIDEO_EXTENSIONS)
    jobs = {path: Job(path, os.path.join(out_dir, rel + SUFFIX)) for path, rel in found}
    failed = [(raw, "file not found") for raw in missing]
    ordered = [jobs[k] for k in sorted(jobs)]
    i, n = shard
    return ordered[i::n], failed


def _is_finished(job: Job, settings: AnalysisSettings, can_add_semantics: bool) -> bool:
    meta = Analysis.read_meta(job.output)
    if not meta or meta.get("settings_key") != settings.key():
        return False
    if can_add_semantics and meta.get("semantics") is None:
        return False
    try:
        return meta["source"]["content_key"] == content_key(job.source)
    except (OSError, V2MError):  # unreadable, or not a regular file: the analysis reports it
        return False


def load_embedder(settings: AnalysisSettings, required: bool, warn=print) -> tuple[ClipEmbedder | None, str | None]:
    """The CLIP embedder for ``settings.clip``, or (None, reason). Raises when ``required``."""
    if settings.clip is None:
        return None, "semantics not requested (--no-clip)"
    try:
        return ClipEmbedder(settings.clip, device=settings.device, flag="--no-clip"), None
    except WeightsUnavailable as e:
        if required:
            raise
        warn(f"v2m: warning: {e}; analysing without semantics")
        return None, str(e)


# --- worker processes ---------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(settings: AnalysisSettings, with_clip: bool, torch_threads: int) -> None:
    import torch

    torch.set_num_threads(torch_threads)
    embedder, note = load_embedder(settings, required=False, warn=lambda _: None) if with_clip else (None, None)
    _WORKER.update(settings=settings, embedder=embedder, note=note)


def _run_job(job: Job, progress=None) -> tuple[Job, tuple[str, str] | None]:
    """Analyse one job (in this process or a worker); returns (job, None) or (job, (the path the
    problem is about: the source, or the output when it cannot be written, one-line reason))."""
    try:
        analysis = analyze_video(
            job.source,
            _WORKER["settings"],
            embedder=_WORKER["embedder"],
            semantics_note=_WORKER["note"],
            progress=progress,
        )
        analysis.save(job.output)
        return job, None
    except V2MError as e:
        return job, (e.path or job.source, e.message)
    except MemoryError:
        return job, (job.source, "out of memory")
    except Exception as e:  # an unexpected failure must not stop a folder run
        return job, (job.source, f"unexpected error: {type(e).__name__}: {e}")


def run_analysis(
    inputs: Iterable[str],
    out_dir: str,
    settings: AnalysisSettings,
    *,
    clip_required: bool = False,
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    force: bool = False,
    progress: bool = True,
    warn=None,
) -> RunReport:
    """Analyse ``inputs`` (files and folders) into ``out_dir``; see the module docstring."""
    from tqdm.auto import tqdm

    warn = warn or (lambda msg: print(msg, file=sys.stderr))
    jobs, missing = plan_jobs(inputs, out_dir, shard)
    check_output(out_dir, folder=True)  # a folder that cannot be written fails before the work
    remove_stale_parts(out_dir, recursive=True)
    report = RunReport(failed=list(missing))
    embedder, note = load_embedder(settings, clip_required, warn)
    todo = []
    for job in jobs:
        if not force and _is_finished(job, settings, embedder is not None):
            report.skipped.append(job)
        else:
            todo.append(job)
    if not todo:
        return report

    bar = tqdm(total=len(todo), unit="video", desc="analyse", disable=None if progress else True, file=sys.stderr)

    def record(result: tuple[Job, tuple[str, str] | None]) -> None:
        job, error = result
        (report.failed.append(error) if error else report.done.append(job))
        bar.update(1)

    def run_here(job: Job) -> tuple[Job, tuple[str, str] | None]:
        """One job in this process, with a progress bar over the video's seconds."""
        name = os.path.basename(job.source)[-40:]
        with tqdm(unit="s", desc=name, leave=False, disable=bar.disable, file=sys.stderr) as inner:

            def tick(t: float, duration: float) -> None:
                done = int(t) + 1
                inner.total = max(int(math.ceil(duration)), done)
                inner.update(done - inner.n)

            return _run_job(job, tick)

    here = runs_here(workers, len(todo))
    threads = threads_per_worker(min(workers, len(todo)))
    if not here:
        embedder = None  # each worker loads its own copy
    _WORKER.update(settings=settings, embedder=embedder, note=note)
    try:
        run_jobs(todo, run_here if here else _run_job, record, workers=workers, initializer=_init_worker,
                 initargs=(replace(settings, threads=threads), note is None and settings.clip is not None, threads))
    finally:
        bar.close()
        _WORKER.clear()
    return report
