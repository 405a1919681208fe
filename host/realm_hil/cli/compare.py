"""`realm-hil compare` and `realm-hil calibrate`: software error models against the hardware."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..campaign.executors import make_executor
from ..campaign.progress import progress_bar as campaign_bar
from ..compare import summary_table, write_report
from ..compare.campaign import run_comparison_campaign
from ..compare.jobs import (
    CALIBRATION_CLOCKS,
    DEFAULT_CLOCKS,
    CalibrateConfig,
    CompareConfig,
    SweepRecorded,
    run_calibration,
    run_comparison,
)
from ..errors import InputError
from ..timing.device_profile import load_profile
from .campaign_options import campaign_options
from .options import MHZ, SEED, FiniteFloat, out_dir_option, out_file_option, progress_bar


def _profile(_ctx, param, value: str) -> str:
    # read now: a bad name would otherwise fail only once the workload is captured
    try:
        load_profile(value)
    except InputError as exc:
        raise click.BadParameter(str(exc), param=param) from None
    return value


workload_options = [
    click.option("--workload", "workload_kind", default="llm", show_default=True, type=click.Choice(["llm", "random"]),
                 help="GEMMs captured from the model, or random operands"),
    click.option("--gemms", default=20, show_default=True, type=click.IntRange(1)),
    click.option("--tokens", default=16, show_default=True, type=click.IntRange(2), help="rows of each LLM GEMM"),
    click.option("--seed", default=0, show_default=True, type=SEED,
                 help="per-PE variation of sim/twin, operands of random workloads, draws of the statistical models"),
    click.option("--profile", default="pynq-z2", show_default=True, callback=_profile,
                 help="device profile of sim and twin"),
]


def _with(options):
    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


@click.command("compare")
@click.option("--backend", default="sim", show_default=True, type=click.Choice(["sim", "board"]),
              help="the hardware the models are judged against")
@click.option("--clock-mhz", "clocks", multiple=True, type=MHZ, help=f"repeatable [{DEFAULT_CLOCKS}]")
@click.option("--bit", default=30, show_default=True, type=click.IntRange(0, 31), help="bit the realm model flips")
@_with(workload_options)
@out_dir_option("runs/compare", "write index.html, PNG and CSV here")
@campaign_options
def compare(backend, clocks, bit, workload_kind, gemms, tokens, seed, profile, out_dir, jobs, cluster, campaign_dir,
            resume) -> None:
    """Compare realm, per-bit and twin error models with the hardware; write an HTML report."""
    started = time.monotonic()
    config = CompareConfig(backend=backend, workload=workload_kind, gemms=gemms, tokens=tokens, seed=seed,
                           profile=profile, clocks_mhz=clocks or DEFAULT_CLOCKS, bit=bit)
    if jobs or cluster or campaign_dir or resume:
        # one campaign point per clock (docs/campaigns.md)
        with campaign_bar("compare") as progress:
            comparison = run_comparison_campaign(config, campaign_dir or out_dir, make_executor(jobs, cluster),
                                                 resume, progress)
    else:
        with progress_bar("compare") as progress:
            comparison = run_comparison(config, progress)
    click.echo(summary_table(comparison))
    page = write_report(comparison, out_dir)
    click.echo(f"wrote {page} (and PNG, CSV) in {time.monotonic() - started:.1f} s")


@click.command("calibrate")
@click.option("--backend", default="sim", show_default=True, type=click.Choice(["sim", "board", "twin"]),
              help="where the error rates are measured")
@click.option("--clock-mhz", "clocks", multiple=True, type=MHZ, help=f"repeatable, >= 3 [{CALIBRATION_CLOCKS}]")
@click.option("--start", "start_profile", default=None, help="profile the fit starts from [--profile]")
@click.option("--junction-c", "junctions", multiple=True, type=FiniteFloat(),
              help="repeatable, >= 2: hold the modeled die's junction at each and fit its process factor and "
                   "temperature coefficient instead of t_base, tau and sigma")
@click.option("--sweeps-dir", type=click.Path(file_okay=False, path_type=Path),
              help="gather a die calibration over several runs (a board's junction follows its environment): "
                   "each run adds one sweep at the die temperature it reads; the fit runs once 2 or more "
                   "temperatures are there")
@_with(workload_options)
@click.option("--name", default=None, help="name of the fitted profile [<start>-cal<date>]")
@out_file_option("profile YAML to write [runs/calibrate/<name>.yaml]")
def calibrate(backend, clocks, start_profile, junctions, sweeps_dir, workload_kind, gemms, tokens, seed, profile,
              name, out_path) -> None:
    """Fit a timing profile to measured per-bit error rates; write the profile."""
    config = CalibrateConfig(backend=backend, workload=workload_kind, gemms=gemms, tokens=tokens, seed=seed,
                             profile=profile, clocks_mhz=clocks or CALIBRATION_CLOCKS, start_profile=start_profile,
                             name=name, out_path=out_path, junctions_c=junctions, sweeps_dir=sweeps_dir)
    report = run_calibration(config)
    click.echo(report.table())
    if not isinstance(report, SweepRecorded):
        click.echo(f"wrote {report.path}")


COMMANDS = [compare, calibrate]
