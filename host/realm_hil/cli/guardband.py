"""`realm-hil guardband`: the rated clock, static tuning, the oracle and the governor on dies in ambients."""

from __future__ import annotations

import json

import click

from ..guardband import GuardbandConfig, ambient_traces, run_guardband
from .options import SEED, out_dir_option, progress_bar


@click.command()
@click.option("--quick", is_flag=True, help="one die, the 25C and warmup traces, one 64-token window: minutes")
@click.option("--dies", type=click.IntRange(1), help=f"dies (seeds) [{GuardbandConfig.dies}]")
@click.option("--traces", help=f"comma-separated ambients: {', '.join(ambient_traces(1.0))} [all]")
@click.option("--tokens", type=click.IntRange(2), help=f"tokens per point [{GuardbandConfig.tokens}]")
@click.option("--window", type=click.IntRange(2), help=f"perplexity window [{GuardbandConfig.window}]")
@click.option("--seed", default=0, show_default=True, type=SEED, help="campaign seed: the dies' seeds come from it")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1),
              help="processes to run the grid's points on (the same results in the same order)")
@out_dir_option("guardband-out", "write guardband.json, guardband.csv, table.txt, traces and plots here")
@click.option("--json", "as_json", is_flag=True, help="print the rows as JSON")
def guardband(quick, dies, traces, tokens, window, seed, jobs, out_dir, as_json) -> None:
    """How much of the rated clock's guardband each strategy recovers, with what errors, on the twin."""
    given = {"dies": dies, "tokens": tokens, "window": window,
             "traces": None if traces is None else tuple(t.strip() for t in traces.split(",") if t.strip())}
    overrides = {k: v for k, v in given.items() if v is not None}
    config = (GuardbandConfig.quick_preset if quick else GuardbandConfig)(campaign_seed=seed, **overrides)
    with progress_bar("guardband") as bar:
        report = run_guardband(config, lambda done, total, _label: bar(done, total), jobs)
    click.echo(json.dumps(report.rows(), indent=1) if as_json else report.table())
    report.save(out_dir)


COMMANDS = [guardband]
