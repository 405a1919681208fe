"""The options every campaign command shares: where its points run (--jobs, --cluster) and are kept."""

from __future__ import annotations

from pathlib import Path

import click


def campaign_options(command):
    """--jobs, --cluster, --campaign-dir and --resume; the command receives `executor`, `campaign_dir`, `resume`."""
    options = [
        click.option("--jobs", type=click.IntRange(1), default=None,
                     help="worker processes (1: in-process) [one per core], or Ray workers with --cluster "
                          "[one per CPU of the cluster]"),
        click.option("--cluster", default=None, metavar="auto|local|ray://HOST:PORT",
                     help="run the points on Ray: auto joins the cluster of `ray start`, ray://HOST:PORT a remote "
                          "head node, local a Ray instance on this machine"),
        click.option("--campaign-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="where each finished point is kept (and results.jsonl) [the output directory]"),
        click.option("--resume", is_flag=True,
                     help="continue the campaign in the directory: finished points are not recomputed"),
    ]
    for option in reversed(options):
        command = option(command)
    return command
