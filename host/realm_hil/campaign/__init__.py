"""Campaigns: grids of independent points run in-process, on a local process pool or on a Ray cluster.

points.py (keys and seeds), job.py (what a worker loads once and runs per point), store.py (the campaign
directory), executors.py (the table of executors), runner.py (`run_campaign`), progress.py (the bar).
docs/campaigns.md describes the layer and how to run a campaign on a cluster and on several boards.
"""

from .executors import Executor, make_executor
from .job import CampaignJob, Timed
from .points import point_key, point_seed
from .runner import CampaignFailed, CampaignResult, run_campaign

__all__ = ["CampaignFailed", "CampaignJob", "CampaignResult", "Executor", "Timed", "make_executor", "point_key",
           "point_seed", "run_campaign"]
