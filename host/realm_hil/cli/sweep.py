"""`realm-hil sweep-clock`: error rates per element and per bit against the array clock."""

from __future__ import annotations

import sys

import click
import numpy as np

from .. import open_accelerator
from ..sweep import clock_range, plot, sweep_clock, write_csv
from ..workload import random_workload
from .options import MHZ, SEED, emulate_checks_option, out_dir_option


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
def sweep_clock_cmd(backend, profile, start, stop, steps, workload_kind, gemms, seed, emulate_checks,
                    out_dir) -> None:
    """Sweep the array clock; write CSV and PNG of element and per-bit error rates.

    Tiles are also counted as false alarms (flagged by the checksums, every result exact) and
    missed errors (a wrong result, not flagged); with --emulate-checks both can occur.
    """
    if start is not None and stop is not None:
        clock_range(start, start, stop, steps)  # a backwards range fails before the device opens
    if backend == "board":
        if emulate_checks:
            raise click.UsageError("--emulate-checks needs the sim or twin backend: the board's checks run on a "
                                   "safe clock")
        options = {}
    else:
        options = {"profile": profile, "seed": seed, "emulate_checks": emulate_checks}
    with open_accelerator(backend, **options) as acc:
        clocks = clock_range(acc.clock_mhz, start, stop, steps)
        if workload_kind == "llm":
            from ..llm.capture import llm_workload

            workload = llm_workload(count=gemms, seed=seed)
            if len(workload) < gemms:
                raise click.BadParameter(f"the llm workload has {len(workload)} GEMMs", param_hint="--gemms")
        else:
            workload = random_workload(count=gemms, seed=seed)
        with click.progressbar(length=len(clocks) * len(workload), label="sweep", file=sys.stderr) as bar:
            points = sweep_clock(acc, workload, clocks, progress=bar.update)
    click.echo(f"{'MHz':>8} {'elem err':>10} {'tile err':>9} {'false al.':>9} {'missed':>9}  highest bit in error")
    for p in points:
        wrong = np.nonzero(p.bit_errors)[0]
        click.echo(f"{p.applied_mhz:8.2f} {p.element_error_rate:10.3g} {p.tile_error_rate:9.3g} "
                   f"{p.false_alarm_rate:9.3g} {p.missed_rate:9.3g}  {wrong.max() if wrong.size else '-'}")
    write_csv(points, out_dir / "sweep.csv")
    checks = ", checksums overclocked" if emulate_checks else ""
    plot(points, out_dir / "sweep.png", f"{backend} / {profile}: {workload_kind} workload, seed {seed}{checks}")
    click.echo(f"wrote {out_dir / 'sweep.csv'} and {out_dir / 'sweep.png'}")


COMMANDS = [sweep_clock_cmd]
