"""What a campaign runs: a job a worker sets up once (loads its model, opens its board) and then asks per point."""

from __future__ import annotations

from dataclasses import dataclass


class CampaignJob:
    """Subclass with `setup` and `evaluate`; the job itself is pickled to pool and Ray workers, so keep it small.

    `evaluate` must be a pure function of (the state `setup` built, the point): its row (a dict of JSON
    values) is what the campaign stores, so two executors give byte-identical results.
    """

    # a campaign whose points need an accelerator: with boards, each worker holds one (campaign/executors.py)
    needs_board = False

    def setup(self, board: str | None):
        """The worker's state, built once per worker: the model, the board at address `board` (or None)."""
        raise NotImplementedError

    def evaluate(self, state, point) -> dict | Timed:
        raise NotImplementedError

    def close(self, state) -> None:
        """Release what setup opened (a board's connection); the default has nothing to release."""


@dataclass
class Timed:
    """What `evaluate` returns for a row made of parts timed on their own (run's rows, one per policy):
    the times go into the point's record beside the row, never into it, since they differ run to run."""

    row: dict
    part_seconds: list[float]


@dataclass
class Outcome:
    """A point's result as a worker returns it: the row, or the one-line error that stopped it."""

    point: object
    row: dict | None
    error: str | None
    seconds: float
    worker: str
    part_seconds: list[float] | None = None  # the parts' own times, if `evaluate` returned Timed


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
