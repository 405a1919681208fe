"""A local process pool: each worker process sets the job up once (its initializer) and serves many points.

A worker that dies (killed, out of memory) breaks the whole concurrent.futures pool; the points it
had not finished are resubmitted to a fresh pool, so the campaign still completes. Workers are
forked from a forkserver that imported the job's module once (torch, the model code), never from
the driver: a fork of a driver that already ran torch threads can deadlock, and spawning each
worker afresh pays the imports again.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from tqdm import tqdm

from ..errors import RealmError
from .executors import Executor
from .job import CampaignJob, Outcome
from .worker import Worker

# fresh pools after worker deaths in a row without a finished point: a point that kills every worker
# it lands on must end the campaign, not loop
MAX_BROKEN_POOLS = 3

_worker: Worker | None = None


def _start(job: CampaignJob) -> None:
    global _worker
    # a progress bar in a worker (the model loader's) locks within its process: tqdm's default lock is a
    # semaphore registered with the resource tracker, reported leaked when Ctrl-C terminates the worker
    tqdm.set_lock(threading.RLock())
    _worker = Worker.start(job)


def _evaluate(point) -> Outcome:
    return _worker.evaluate(point)


@dataclass
class Pool(Executor):
    jobs: int
    name = "pool"

    def run(self, job: CampaignJob, points: Sequence) -> Iterator[Outcome]:
        remaining = list(points)
        broken = 0
        while remaining:
            pool = ProcessPoolExecutor(min(self.jobs, len(remaining)), _context(job), initializer=_start,
                                       initargs=(job,))
            try:
                pending = ()
                futures = {pool.submit(_evaluate, point): point for point in remaining}
                pending = set(futures)
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        try:
                            outcome = future.result()
                        except BrokenProcessPool:
                            continue  # resubmitted to the next pool
                        remaining.remove(futures[future])
                        broken = 0
                        yield outcome
            finally:
                # on Ctrl-C or a closed iterator too: the workers stop, finished points are on disk
                _stop(pool, pending)
            if remaining:
                broken += 1
                if broken > MAX_BROKEN_POOLS:
                    raise RealmError(f"the pool's workers died {broken} times in a row without finishing a "
                                     f"point; {len(remaining)} points left (rerun with --resume)")


def _context(job: CampaignJob):
    context = multiprocessing.get_context("forkserver")
    # read when the forkserver starts (once per driver): later jobs' modules are imported by their workers
    context.set_forkserver_preload([__name__, type(job).__module__])
    return context


def _stop(pool: ProcessPoolExecutor, pending) -> None:
    if not pending:
        pool.shutdown(wait=True)
        return
    processes = list((pool._processes or {}).values())  # noqa: SLF001 - shutdown cannot kill a busy worker
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join()
