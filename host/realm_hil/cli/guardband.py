"""`realm-hil guardband`: the rated clock, static tuning, the oracle and the governor on dies in ambients."""

from __future__ import annotations

import json

import click

from ..campaign.executors import make_executor
from ..campaign.progress import progress_bar
from ..guardband import GuardbandConfig, ambient_traces, run_guardband
from .campaign_options import campaign_options
from .options import SEED, out_dir_option


@click.command()
@click.option("--quick", is_flag=True, help="one die, the 25C and warmup traces, one 64-token window: minutes")
@click.option("--dies", type=click.IntRange(1), help=f"dies (seeds) [{GuardbandConfig.dies}]")
@click.option("--traces", help=f"comma-separated ambients: {', '.join(ambient_traces(1.0))} [all]")
@click.option("--tokens", type=click.IntRange(2), help=f"tokens per point [{GuardbandConfig.tokens}]")
@click.option("--window", type=click.IntRange(2), help=f"perplexity window [{GuardbandConfig.window}]")
@click.option("--seed", default=0, show_default=True, type=SEED, help="campaign seed: the dies' seeds come from it")
@out_dir_option("guardband-out", "write guardband.json, guardband.csv, table.txt, traces and plots here "
                "(and the campaign's points)")
@click.option("--json", "as_json", is_flag=True, help="print the rows as JSON")
@campaign_options
def guardband(quick, dies, traces, tokens, window, seed, out_dir, as_json, jobs, cluster, campaign_dir,
              resume) -> None:
    """How much of the rated clock's guardband each strategy recovers, with what errors, on the twin."""
    given = {"dies": dies, "tokens": tokens, "window": window,
             "traces": None if traces is None else tuple(t.strip() for t in traces.split(",") if t.strip())}
    overrides = {k: v for k, v in given.items() if v is not None}
    config = (GuardbandConfig.quick_preset if quick else GuardbandConfig)(campaign_seed=seed, **overrides)
    with progress_bar("guardband") as progress:
        report = run_guardband(config, campaign_dir or out_dir, make_executor(jobs, cluster), resume, progress)
    click.echo(json.dumps(report.rows(), indent=1) if as_json else report.table())
    report.save(out_dir)


COMMANDS = [guardband]
