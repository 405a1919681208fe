"""`realm-hil eval`: lm-evaluation-harness tasks on the W8A8 model with its GEMMs on the accelerator."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..task_eval import EvalConfig, run_eval
from .options import labelled_progress_bar, out_dir_option
from .run import run, run_config

# run's options that choose the model, the backend and the operating points; the others measure
# perplexity or generation, which eval replaces by tasks, or govern the clock, which eval's fixed points do not,
# or run run's grid as a campaign, which eval's is not
_NOT_SHARED = {"text", "dataset", "tokens", "window", "confirm_on", "generate", "prompts", "out_dir", "as_json",
               "governor", "governor_window", "jobs", "cluster", "campaign_dir", "resume"}


def _tasks(_ctx, _param, value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise click.BadParameter(f"give task names, comma-separated, got {value!r}")
    return names


@click.command(name="eval")
@click.option("--tasks", required=True, callback=_tasks,
              help="comma-separated lm-evaluation-harness tasks, e.g. hellaswag,arc_easy (data sets cached offline)")
@click.option("--include-path", type=click.Path(file_okay=False, path_type=Path),
              help="a directory of task YAML files besides the harness's registry")
@click.option("--limit", type=click.IntRange(1), help="documents per task (for a quick look)")
@click.option("--num-fewshot", type=click.IntRange(0), help="few-shot examples [each task's own]")
@out_dir_option(None, "write results.json and table.txt here")
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
def eval_tasks(tasks, include_path, limit, num_fewshot, out_dir, as_json, **options) -> None:
    """Task scores of the W8A8 model on the accelerator, per clock, error model and ABFT policy."""
    config = EvalConfig(run_config(options), tasks, None if include_path is None else str(include_path), limit,
                        num_fewshot)
    with labelled_progress_bar() as progress:
        report = run_eval(config, progress)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.table())
    if out_dir is not None:
        report.save(out_dir)


eval_tasks.params[:0] = [p for p in run.params if p.name not in _NOT_SHARED]

COMMANDS = [eval_tasks]
