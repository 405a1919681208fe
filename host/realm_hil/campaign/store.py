"""The campaign directory: one file per finished point, written atomically, and the merged result file.

    campaign.json        what must match for --resume to continue the same campaign (its identity)
    points/<digest>.json a finished point: key, point, row, and when and where it ran (seconds, worker, and
                         part_seconds for a row of separately timed parts)
    failed/<digest>.json a failed point: key, point and its one-line error (retried by --resume)
    results.jsonl        every finished point's row, one JSON line per point sorted by key: the same bytes
                         whichever executor computed them

A point file is complete or absent (temp file + os.replace), so a killed driver or worker leaves
only finished points behind, and --resume skips exactly those, whoever wrote them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..errors import InputError
from ..results import atomic_write_json, atomic_write_text, check_output_dir
from .points import key_digest, point_key

IDENTITY = "campaign.json"
RESULTS = "results.jsonl"


class CampaignStore:
    def __init__(self, directory: Path) -> None:
        self.directory = check_output_dir(Path(directory))
        self.points = self.directory / "points"
        self.failed = self.directory / "failed"

    def open(self, identity: dict, resume: bool) -> None:
        """Start the campaign, or continue it (resume) if it is the same one; refuses to mix two campaigns."""
        path = self.directory / IDENTITY
        if path.exists():
            if not resume:
                raise InputError(f"{path} already exists: pass --resume to continue that campaign, "
                                 "or choose another directory")
            try:
                previous = json.loads(path.read_text())["identity"]
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{path} is not a campaign's identity file") from None
            expected = json.loads(json.dumps(identity, sort_keys=True))
            if previous != expected:
                raise InputError(f"cannot resume {self.directory}: it was made with {previous}, not {expected}")
        else:
            atomic_write_json(path, {"identity": identity})
        self.points.mkdir(parents=True, exist_ok=True)
        self.failed.mkdir(parents=True, exist_ok=True)

    def finished(self, key: str) -> dict | None:
        """The record of a finished point, or None."""
        path = self.points / f"{key_digest(key)}.json"
        if not path.exists():
            return None
        record = json.loads(path.read_text())
        if record.get("key") != key or not isinstance(record.get("row"), dict):
            raise InputError(f"{path} is not the result of point {key}")
        return record

    def write_result(self, point, row: dict, seconds: float, worker: str,
                     part_seconds: list[float] | None = None) -> None:
        key = point_key(point)
        record = {"key": key, "point": dataclasses.asdict(point), "row": row, "seconds": seconds, "worker": worker}
        if part_seconds is not None:
            record["part_seconds"] = part_seconds
        atomic_write_json(self.points / f"{key_digest(key)}.json", record)
        (self.failed / f"{key_digest(key)}.json").unlink(missing_ok=True)

    def write_failure(self, point, error: str, worker: str) -> None:
        key = point_key(point)
        atomic_write_json(self.failed / f"{key_digest(key)}.json",
                          {"key": key, "point": dataclasses.asdict(point), "error": error, "worker": worker})

    def merge(self, rows: dict[str, dict]) -> Path:
        """results.jsonl: the rows of finished points sorted by key (only what the points computed, no timing)."""
        lines = [json.dumps({"key": key, "row": rows[key]}, sort_keys=True) for key in sorted(rows)]
        path = self.directory / RESULTS
        atomic_write_text(path, "".join(f"{line}\n" for line in lines))
        return path
