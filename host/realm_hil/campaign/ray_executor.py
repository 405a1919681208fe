"""Ray: actors that set the job up once and serve many points, one per CPU or one per board.

Ray restarts an actor whose process dies (max_restarts) and retries the call it was serving
(max_task_retries), so a killed worker costs one point's time, not the campaign. With boards,
board i is the custom resource "board_i" (one unit): the actor created for it holds the unit, so
one worker at a time drives a board, while the CPUs of its node run the model around the GEMMs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..errors import BackendUnavailable, InputError, MissingDependency
from .executors import Executor
from .job import CampaignJob, Outcome
from .worker import Worker

# a point whose worker died this many times is given up on (the actor keeps dying on it)
MAX_RESTARTS = 3


# how long idle workers get to close their boards at the end (or after Ctrl-C) before they are killed
CLOSE_TIMEOUT_S = 10


def _ray():
    try:
        import ray
    except ModuleNotFoundError:
        raise MissingDependency("--cluster and --board campaigns", "ray", "cluster") from None
    return ray


def board_resource(index: int) -> str:
    return f"board_{index}"


class _Actor:
    """The Ray actor: a Worker in its own process (wrapped by ray.remote in RayExecutor.run)."""

    def __init__(self, job: CampaignJob, board: str | None) -> None:
        self.worker = Worker.start(job, board)

    def evaluate(self, point) -> Outcome:
        return self.worker.evaluate(point)

    def close(self) -> None:
        self.worker.close()

    def pid(self) -> int:
        return os.getpid()


@dataclass
class RayExecutor(Executor):
    cluster: str  # "auto", "ray://HOST:PORT", or "local": a Ray instance on this machine started here
    jobs: int | None = None
    boards: tuple[str, ...] = ()
    name = "ray"
    actors: list = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.cluster in ("auto", "local") or self.cluster.startswith("ray://")):
            raise InputError(f"--cluster takes auto, local or ray://HOST:PORT, got {self.cluster!r}")
        _ray()

    def _connect(self) -> bool:
        """Join the cluster (or the instance the caller started); True if this call started it."""
        ray = _ray()
        if ray.is_initialized():
            return False
        resources = {board_resource(i): 1 for i in range(len(self.boards))}
        if self.cluster == "local":
            ray.init(resources=resources or None, include_dashboard=False, log_to_driver=False)
            return True
        try:
            ray.init(address=self.cluster, log_to_driver=False)
        except (ConnectionError, TimeoutError) as exc:
            raise BackendUnavailable(f"cannot reach the Ray cluster at {self.cluster}: {exc}") from None
        return True

    def _placements(self, job: CampaignJob) -> list[tuple[str | None, dict]]:
        """(board address or None, actor options) for each actor."""
        ray = _ray()
        available = ray.cluster_resources()
        if self.boards:
            missing = [board_resource(i) for i in range(len(self.boards)) if board_resource(i) not in available]
            if missing:
                raise InputError(f"the Ray cluster has no resource {', '.join(missing)}: start its nodes with "
                                 "ray start --resources '{\"board_0\": 1, ...}', one unit per board")
            return [(address, {"resources": {board_resource(i): 1}, "num_cpus": 1})
                    for i, address in enumerate(self.boards)]
        if job.needs_board:
            raise InputError("this campaign's points need an accelerator: give --board HOST:PORT (repeatable)")
        count = self.jobs or max(int(available.get("CPU", 1)), 1)
        return [(None, {"num_cpus": 1})] * count

    def run(self, job: CampaignJob, points: Sequence) -> Iterator[Outcome]:
        ray = _ray()
        started = self._connect()
        remote = ray.remote(max_restarts=-1, max_task_retries=MAX_RESTARTS)(_Actor)
        try:
            placements = self._placements(job)[: max(len(points), 1)]
            self.actors = [remote.options(**options).remote(job, board) for board, options in placements]
            queue = list(points)
            inflight = {}

            def submit(actor) -> None:
                if queue:
                    point = queue.pop(0)
                    inflight[actor.evaluate.remote(point)] = (actor, point)

            for actor in self.actors:
                submit(actor)
            while inflight:
                (ref,), _ = ray.wait(list(inflight), num_returns=1)
                actor, point = inflight.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    outcome = Outcome(point, None, f"worker died {MAX_RESTARTS + 1} times on this point: "
                                      f"{type(exc).__name__}", 0.0, "ray")
                submit(actor)
                yield outcome
        finally:
            # a worker closes its board's session itself if it can, before its process goes
            with contextlib.suppress(Exception):
                ray.get([actor.close.remote() for actor in self.actors], timeout=CLOSE_TIMEOUT_S)
            for actor in self.actors:
                ray.kill(actor, no_restart=True)
            self.actors = []
            if started:
                ray.shutdown()
