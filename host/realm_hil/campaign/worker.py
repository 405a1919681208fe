"""The worker side, the same under every executor: set a job up once, then turn each point into an Outcome."""

from __future__ import annotations

import os
import socket
import time

from .job import CampaignJob, Outcome, Timed, one_line


class Worker:
    """A job set up once. A setup that fails is kept as every point's error, so the campaign reports it loudly
    instead of a pool or cluster restarting the worker forever."""

    def __init__(self, job: CampaignJob, state, name: str | None = None, setup_error: str | None = None) -> None:
        self.job, self.state, self.setup_error = job, state, setup_error
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"

    @classmethod
    def start(cls, job: CampaignJob, board: str | None = None) -> Worker:
        """A remote worker: its setup error, if any, becomes every point's error."""
        # the worker's name says where its rows came from: its host and process, and its board
        name = f"{socket.gethostname()}:{os.getpid()}" + (f" board {board}" if board else "")
        try:
            return cls(job, job.setup(board), name)
        except Exception as exc:  # noqa: BLE001 - reported as each point's error by evaluate
            return cls(job, None, name, f"worker setup failed: {one_line(exc)}")

    def evaluate(self, point) -> Outcome:
        if self.setup_error is not None:
            return Outcome(point, None, self.setup_error, 0.0, self.name)
        start = time.perf_counter()
        try:
            row = self.job.evaluate(self.state, point)
        except Exception as exc:  # noqa: BLE001 - a failed point is recorded, the campaign goes on
            return Outcome(point, None, one_line(exc), time.perf_counter() - start, self.name)
        seconds = time.perf_counter() - start
        if isinstance(row, Timed):
            return Outcome(point, row.row, None, seconds, self.name, row.part_seconds)
        return Outcome(point, row, None, seconds, self.name)

    def close(self) -> None:
        if self.setup_error is None:
            self.job.close(self.state)
