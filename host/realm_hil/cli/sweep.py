"""`realm-hil sweep-clock`: error rates per element and per bit against the array clock."""

from __future__ import annotations

from pathlib import Path

import click

from ..campaign.executors import make_executor
from ..campaign.progress import progress_bar as campaign_bar
from ..errors import InputError
from ..sweep import SweepConfig, SweepResult, clock_range, run_sweep
from ..sweep_campaign import run_clock_campaign
from ..timing.device_profile import load_profile
from .campaign_options import campaign_options
from .options import MHZ, SEED, emulate_checks_option, out_dir_option, progress_bar


@click.command("sweep-clock")
@click.option("--backend", default="twin", show_default=True, type=click.Choice(["twin", "sim", "board"]))
@click.option("--profile", default="pynq-z2", show_default=True, help="device timing profile (sim, twin)")
@click.option("--start", default=None, type=MHZ, help="first clock in MHz [profile nominal]")
@click.option("--stop", default=None, type=MHZ, help="last clock in MHz [1.5 x nominal]")
@click.option("--steps", default=16, show_default=True, type=click.IntRange(2, 200))
@click.option("--workload", "workload_kind", default="random", show_default=True,
              type=click.Choice(["random", "llm"]), help="random operands, or GEMMs captured from the model")
@click.option("--gemms", default=6, show_default=True, type=click.IntRange(1), help="GEMMs in the workload")
@click.option("--seed", default=0, show_default=True, type=SEED, help="operands and per-PE variation")
@emulate_checks_option
@out_dir_option("runs/sweep-clock", "write sweep.csv and sweep.png here")
@click.option("--board", "boards", multiple=True, metavar="HOST:PORT",
              help="a `realm-hil serve` board (repeatable): the clocks are spread over the boards on Ray, one "
                   "worker per board; needs --start and --stop")
@campaign_options
def sweep_clock_cmd(backend, profile, start, stop, steps, workload_kind, gemms, seed, emulate_checks,
                    out_dir, boards, jobs, cluster, campaign_dir, resume) -> None:
    """Sweep the array clock; write CSV and PNG of element and per-bit error rates.

    Tiles are also counted as false alarms (flagged by the checksums, every result exact) and
    missed errors (a wrong result, not flagged); with --emulate-checks both can occur.
    """
    config = SweepConfig(backend=backend, profile=profile, start_mhz=start, stop_mhz=stop, steps=steps,
                         workload=workload_kind, gemms=gemms, seed=seed, emulate_checks=emulate_checks)
    if boards or jobs or cluster or campaign_dir or resume:
        # a campaign: one point per clock, each worker with its own device (or board)
        if boards and (start is None or stop is None):
            raise InputError("a sweep over boards needs --start and --stop: each board has its own nominal clock")
        clocks = clock_range(load_profile(profile).nominal_clock_mhz, start, stop, steps)
        with campaign_bar("sweep-clock") as progress:
            points = run_clock_campaign(config, clocks, campaign_dir or out_dir,
                                        make_executor(jobs, cluster, boards), boards=boards, resume=resume,
                                        progress=progress)
        result = SweepResult(config, points)
    else:
        with progress_bar("sweep") as progress:
            result = run_sweep(config, progress)
    click.echo(result.table())
    csv_path, png_path = result.save(out_dir)
    if isinstance(png_path, Path):
        click.echo(f"wrote {csv_path} and {png_path}")
    else:
        click.echo(f"wrote {csv_path}")
        click.echo(f"realm-hil: warning: no plot: {png_path}", err=True)


COMMANDS = [sweep_clock_cmd]
