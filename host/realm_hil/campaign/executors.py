"""The executors behind one interface, in one table: in-process, a local process pool, a Ray cluster.

An executor's `run(job, points)` yields each point's Outcome as it finishes, in any order; closing
the iterator (the runner does on Ctrl-C or an error) stops its workers. Which executor runs a point
never changes its row: the row depends only on the job and the point (campaign/job.py).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..errors import InputError
from .job import CampaignJob, Outcome
from .worker import Worker


class Executor:
    name = ""

    def run(self, job: CampaignJob, points: Sequence) -> Iterator[Outcome]:
        raise NotImplementedError


@dataclass
class InProcess(Executor):
    """Today's behaviour: the driver itself loads the model and runs the points one after the other."""

    name = "in-process"

    def run(self, job: CampaignJob, points: Sequence) -> Iterator[Outcome]:
        # the driver's own setup error is the command's error, with its traceback if it is a bug
        worker = Worker(job, job.setup(None), name="driver")
        try:
            for point in points:
                yield worker.evaluate(point)
        finally:
            worker.close()


def default_jobs() -> int:
    """The pool's size without --jobs: every core this process may use (1 means in-process)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_executor(jobs: int | None = None, cluster: str | None = None, boards: Sequence[str] = ()) -> Executor:
    """The executor for the CLI's --jobs N, --cluster ADDRESS and --board HOST:PORT (repeatable).

    --cluster (auto, ray://HOST:PORT, or local for a Ray instance on this machine) runs on Ray with
    --jobs workers [one per CPU of the cluster]; boards need Ray (each board is a cluster resource).
    Otherwise --jobs 1 is in-process and --jobs N a pool of N processes; without --jobs, a pool of
    one process per core on a multi-core machine, else in-process.
    """
    if jobs is not None and jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    if cluster is not None or boards:
        return executor_class("ray")(cluster or "local", jobs, tuple(boards))
    jobs = jobs or default_jobs()
    return executor_class("in-process")() if jobs == 1 else executor_class("pool")(jobs)


# name -> (module of this package, class); a module is imported only when used (ray is an optional extra)
EXECUTORS = {"in-process": ("executors", "InProcess"), "pool": ("pool", "Pool"), "ray": ("ray_executor", "RayExecutor")}


def executor_class(name: str) -> type[Executor]:
    module, cls = EXECUTORS[name]
    return getattr(importlib.import_module(f".{module}", __package__), cls)
