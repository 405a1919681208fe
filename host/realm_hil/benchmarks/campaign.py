"""Campaign throughput: the same characterize grid in-process and on a pool of workers, in the same run.

Points per second over the whole campaign, worker start-up and model loading included (what a user
waits for), and over the points' own evaluation time. The in-process baseline is what `characterize`
runs by default with --jobs 1 (one torch thread, as each pool worker). Each executor's time to its
first stored point shows the start-up apart: in-process the driver's setup (loading and quantizing
the model, the error-free perplexity); on the pool the forkserver's imports (torch, transformers),
then each worker's setup, in parallel. The driver's own imports are done before either is timed,
as both would pay them in a command.

On a shared machine the figures measure the CPU the scheduler gives the campaign as much as the
campaign: a worker's point costs about the CPU time of an in-process point, but with the kernel's
autogroup scheduling (one group per session) the pool's processes share one group's part of the
cores with every other user's session, so under load its workers wait for a core. Hence the load
average and, per executor, the cores the whole machine kept busy while it ran (`*_machine_busy_cores`,
from /proc/stat): near 2 on 2 cores means others competed for them.
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
from ..llm.selection import LINEAR_COMPONENTS

# 7 components x 2 layer groups x 3 MSDs x 4 freqs = 168 points on the characterize default of 256 tokens
# (about half a second each): as in a real characterization (1,044 such points), the points and not the
# pool's start-up (about 7 s) take most of the time; with half the points the start-up is a quarter of
# the pool's run and the figure measures it more than the campaign
BENCH_CONFIG = CharacterizeConfig(tokens=256, window=128, components=LINEAR_COMPONENTS,
                                  layer_groups={"a": "0", "b": "29"}, grid=Grid((10, 20, 30), (0, 2, 4, 6)))


def bench_campaign(jobs: int = 2, config: CharacterizeConfig = BENCH_CONFIG) -> dict:
    groups = config.groups(load_config(config.model).num_hidden_layers)
    points = plan_points(config, groups)
    result = {"points": len(points), "jobs": jobs, "tokens": config.tokens, "load_average_before": os.getloadavg()[0]}
    outputs = {}
    with tempfile.TemporaryDirectory(prefix="realm-hil-bench-") as tmp:
        for name, executor in (("in_process", InProcess()), ("pool", Pool(jobs))):
            busy = _busy_seconds()
            campaign, first, wall = _timed(points, CharacterizeJob(config), executor, Path(tmp) / name)
            result[f"{name}_first_point_seconds"] = first
            result[f"{name}_seconds"] = wall
            result[f"{name}_points_per_s"] = len(points) / wall
            # the points' own evaluation, without worker start-up and model loading
            result[f"{name}_seconds_per_point"] = sum(r["seconds"] for r in campaign.records.values()) / len(points)
            if busy is not None:
                result[f"{name}_machine_busy_cores"] = (_busy_seconds() - busy) / wall
            outputs[name] = campaign.results.read_bytes()
    result["speedup"] = result["pool_points_per_s"] / result["in_process_points_per_s"]
    result["identical_results"] = outputs["in_process"] == outputs["pool"]
    result["load_average_after"] = os.getloadavg()[0]
    return result


def _timed(points, job, executor, directory) -> tuple:
    """The campaign, the seconds until its first point was stored, and its whole wall-clock time."""
    first = []
    start = time.perf_counter()
    campaign = run_campaign(points, job, executor, directory,
                            progress=lambda _: first or first.append(time.perf_counter() - start))
    return campaign, first[0], time.perf_counter() - start


def _busy_seconds() -> float | None:
    """CPU seconds every core of the machine spent busy since boot (Linux), None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    # user nice system [idle iowait] irq softirq steal
    busy = [int(v) for v in (*fields[1:4], *fields[6:9])]
    return sum(busy) / os.sysconf("SC_CLK_TCK")
