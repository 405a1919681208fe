"""`run_campaign`: the points a directory does not hold yet, run on an executor, each stored as it finishes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, RealmError
from .executors import Executor, InProcess
from .job import CampaignJob
from .points import point_key
from .store import CampaignStore


@dataclass
class Progress:
    done: int  # finished points, those of an earlier run included
    failed: int
    total: int
    last: str  # the key of the point that just finished


@dataclass
class CampaignResult:
    records: dict[str, dict]  # key -> the stored record of each finished point (row, seconds, worker)
    failed: dict[str, str]  # key -> one-line error of each point that failed in this run
    computed: int  # points evaluated by this run (the others were on disk)
    results: Path  # the merged results.jsonl


class CampaignFailed(RealmError):
    """Some points failed; the others are stored, and --resume retries only the failed ones."""

    def __init__(self, result: CampaignResult, directory: Path) -> None:
        shown = "; ".join(f"{key}: {error}" for key, error in list(result.failed.items())[:3])
        more = f" (and {len(result.failed) - 3} more)" if len(result.failed) > 3 else ""
        super().__init__(f"{len(result.failed)} of {len(result.records) + len(result.failed)} points failed: "
                         f"{shown}{more}; errors in {directory / 'failed'}, rerun with --resume to retry them")
        self.result = result


def run_campaign(
    points: Sequence,
    job: CampaignJob,
    executor: Executor | None = None,
    directory: Path | str = "campaign",
    identity: dict | None = None,
    resume: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> CampaignResult:
    """Run every point of `points` (dataclasses, see points.py) not yet finished in `directory`.

    `identity` (JSON values) names the campaign: --resume refuses a directory made with another one.
    Raises CampaignFailed after storing everything if any point failed; the merged results.jsonl
    then holds the points that finished.
    """
    keys = [point_key(p) for p in points]
    if len(set(keys)) != len(keys):
        raise InputError("a campaign's points must have distinct keys")
    if not points:
        raise InputError("the campaign has no point")
    store = CampaignStore(Path(directory))
    store.open(identity or {}, resume)
    executor = executor or InProcess()
    records = {key: record for key in keys if (record := store.finished(key)) is not None}
    todo = [p for p, key in zip(points, keys, strict=True) if key not in records]
    failed: dict[str, str] = {}
    if todo:
        outcomes = executor.run(job, todo)
        try:
            for outcome in outcomes:
                key = point_key(outcome.point)
                if outcome.error is None:
                    store.write_result(outcome.point, outcome.row, outcome.seconds, outcome.worker,
                                       outcome.part_seconds)
                    records[key] = store.finished(key)
                else:
                    store.write_failure(outcome.point, outcome.error, outcome.worker)
                    failed[key] = outcome.error
                if progress is not None:
                    progress(Progress(len(records), len(failed), len(points), key))
        finally:
            outcomes.close()  # stops the workers on Ctrl-C: what finished is on disk for --resume
    result = CampaignResult(records, failed, len(todo), store.merge({k: r["row"] for k, r in records.items()}))
    if failed:
        raise CampaignFailed(result, store.directory)
    return result
