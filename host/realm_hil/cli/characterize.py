"""`realm-hil characterize`: the critical region of statistical ABFT, written as an ABFT profile."""

from __future__ import annotations

import click

from ..abft.characterization import run_characterization
from ..abft.characterization_sweep import CharacterizeConfig, Grid, parse_layer_groups
from ..campaign.executors import make_executor
from ..campaign.progress import progress_bar
from ..errors import InputError
from ..llm.selection import layer_components
from .campaign_options import campaign_options
from .options import SEED, FiniteFloat, out_dir_option


def _components(_ctx, _param, value: str) -> tuple[str, ...]:
    try:
        return layer_components(value)
    except InputError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option(
    "--model",
    default=CharacterizeConfig.model,
    show_default=True,
    help="default model, .gguf path, or local HF model",
)
@click.option(
    "--text",
    default=CharacterizeConfig.text,
    show_default=True,
    help="'gpl3', 'wikitext2' (if cached) or a text file",
)
@click.option("--tokens", default=CharacterizeConfig.tokens, show_default=True, type=click.IntRange(2))
@click.option("--window", default=CharacterizeConfig.window, show_default=True, type=click.IntRange(2))
@click.option(
    "--classes",
    "components",
    default="linear",
    show_default=True,
    callback=_components,
    help="components to characterize, each on its own: names (q,k,v,o,gate,up,down,qk,sv) or "
    "linear, attention, all, sensitive, resilient (the paper's classes)",
)
@click.option("--layers", default=None, help="layer groups, e.g. 'early=0-9;late=20-29' [early/late halves]")
@click.option(
    "--stages",
    default="prefill",
    show_default=True,
    type=click.Choice(["prefill", "decode", "prefill,decode"]),
)
@click.option(
    "--grid",
    "grid_spec",
    default=Grid().spec(),
    show_default=True,
    help="log2 MSD and log2 freq values: 'msd=start:stop:step,freq=start:stop:step' or a/b/c lists",
)
@click.option(
    "--metric",
    default=CharacterizeConfig.metric,
    show_default=True,
    help="what the critical region is fitted on: ppl (perplexity), top1 (top-1 agreement with the error-free "
    "W8A8 model, same forward) or task:NAME (an lm-evaluation-harness task's score, the eval extra)",
)
@click.option(
    "--tolerance",
    type=FiniteFloat(min=0, min_open=True),
    help="damage that makes a point critical [ppl: perplexity increase 1.0; top1: fraction of positions "
    "changed 0.05; task: score drop 0.02]",
)
@click.option("--task-include-path", type=click.Path(file_okay=False),
              help="--metric task:NAME: a directory of task YAML files besides the harness's registry")
@click.option("--task-limit", type=click.IntRange(1), help="--metric task:NAME: documents per evaluation [all]")
@click.option(
    "--array-n",
    default=CharacterizeConfig.array_n,
    show_default=True,
    type=click.IntRange(1),
    help="array size n: the hardware's n x n statistics tile",
)
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="torch threads")
@out_dir_option("runs/characterize", "profile.yaml, points.csv, heatmap.png, report.txt (and the campaign's points)")
@campaign_options
def characterize(
    model,
    text,
    tokens,
    window,
    components,
    layers,
    stages,
    grid_spec,
    metric,
    tolerance,
    task_include_path,
    task_limit,
    array_n,
    seed,
    threads,
    out_dir,
    jobs,
    cluster,
    campaign_dir,
    resume,
) -> None:
    """Sweep GEMM errors over (MSD, freq), fit the critical region, write the ABFT profile."""
    config = CharacterizeConfig(
        model=model,
        text=text,
        tokens=tokens,
        window=window,
        components=components,
        layer_groups=parse_layer_groups(layers) if layers else None,
        stages=tuple(stages.split(",")),
        grid=Grid.parse(grid_spec),
        seed=seed,
        tolerance=tolerance,
        array_n=array_n,
        threads=threads,
        metric=metric,
        task_include_path=task_include_path,
        task_limit=task_limit,
    )
    executor = make_executor(jobs, cluster)
    with progress_bar("characterize") as progress:
        result = run_characterization(config, out_dir, resume=resume, progress=progress, executor=executor,
                                      campaign_dir=campaign_dir)
    click.echo(result.report())
    click.echo(
        f"wrote {out_dir / 'profile.yaml'}, {out_dir / 'points.csv'}, {out_dir / 'heatmap.png'}, "
        f"{out_dir / 'report.txt'}"
    )


COMMANDS = [characterize]
