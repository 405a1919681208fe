"""Campaign throughput: the same characterize grid in-process and on a pool of workers, in the same run.

Points per second over the whole campaign, worker start-up and model loading included (what a user
waits for), and over the points' own evaluation time; the machine's load average is reported with
them, since other processes on the cores change both figures.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from ..abft.characterization_sweep import CharacterizeConfig, CharacterizeJob, Grid, plan_points
from ..campaign import run_campaign
from ..campaign.executors import InProcess
from ..campaign.pool import Pool
from ..llm.model import load_config

# 4 components x 2 layer groups x 3 MSDs x 2 freqs = 48 points of about a second each (128 tokens), so
# that, as in a real characterization, the points and not the workers' start-up take most of the time
BENCH_CONFIG = CharacterizeConfig(tokens=128, window=128, components=("o", "q", "k", "v"),
                                  layer_groups={"a": "0", "b": "29"}, grid=Grid((10, 20, 30), (0, 2)))


def bench_campaign(jobs: int = 2, config: CharacterizeConfig = BENCH_CONFIG) -> dict:
    groups = config.groups(load_config(config.model).num_hidden_layers)
    points = plan_points(config, groups)
    result = {"points": len(points), "jobs": jobs, "load_average_before": os.getloadavg()[0]}
    outputs = {}
    with tempfile.TemporaryDirectory(prefix="realm-hil-bench-") as tmp:
        for name, executor in (("in_process", InProcess()), ("pool", Pool(jobs))):
            start = time.perf_counter()
            campaign = run_campaign(points, CharacterizeJob(config), executor, Path(tmp) / name)
            wall = time.perf_counter() - start
            result[f"{name}_seconds"] = wall
            result[f"{name}_points_per_s"] = len(points) / wall
            # the points' own evaluation, without worker start-up and model loading
            result[f"{name}_seconds_per_point"] = sum(r["seconds"] for r in campaign.records.values()) / len(points)
            outputs[name] = campaign.results.read_bytes()
    result["speedup"] = result["pool_points_per_s"] / result["in_process_points_per_s"]
    result["identical_results"] = outputs["in_process"] == outputs["pool"]
    result["load_average_after"] = os.getloadavg()[0]
    return result
