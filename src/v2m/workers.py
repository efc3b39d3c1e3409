"""One way to run many independent jobs (videos to analyse, sources to prepare): here, or in
worker processes that each load their models once.

Workers are spawned (not forked: torch and FFmpeg threads do not survive a fork), each runs
``initializer(*initargs)`` once, then jobs as they come; results arrive in completion order.
The cores are shared out: each worker gets ``threads_per_worker`` threads for torch and FFmpeg.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Callable, Iterable, TypeVar

J = TypeVar("J")
R = TypeVar("R")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """The usable cores shared out among ``workers`` processes (at least one each)."""
    return max(1, usable_cores() // max(1, workers))


def runs_here(workers: int, jobs: int) -> bool:
    """Whether :func:`run_jobs` runs ``jobs`` jobs in this process rather than in workers."""
    return workers <= 1 or jobs <= 1


def run_jobs(jobs: Iterable[J], run: Callable[[J], R], on_result: Callable[[R], None], *, workers: int = 1,
             initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> None:
    """Call ``run(job)`` for every job and hand each result to ``on_result`` as it comes.

    With ``workers`` <= 1 (or a single job) the jobs run here, one after the other, with
    whatever the caller has loaded; ``initializer`` is not called. Otherwise they run in
    ``workers`` spawned processes, each set up by ``initializer(*initargs)``; ``run`` must
    then be a module-level function, and jobs and results picklable."""
    jobs = list(jobs)
    if runs_here(workers, len(jobs)):
        for job in jobs:
            on_result(run(job))
        return
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn"), initializer=initializer,
                             initargs=initargs) as pool:
        for future in as_completed([pool.submit(run, job) for job in jobs]):
            on_result(future.result())
