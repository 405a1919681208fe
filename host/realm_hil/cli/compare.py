"""`realm-hil compare` and `realm-hil calibrate`: software error models against the hardware."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import click

from .. import open_accelerator
from ..errors import InputError
from ..results import check_output_file
from ..timing.device_profile import load_profile
from ..workload import random_workload
from .options import MHZ, SEED, out_dir_option, out_file_option

DEFAULT_CLOCKS = (116.0, 120.0, 125.0)  # onset, rising and heavy part of the pynq-z2 error band
CALIBRATION_CLOCKS = (118.0, 122.0, 128.0, 135.0)
NUM_LAYERS = 30


def _llm_gemms(count: int, tokens: int):
    from ..llm.capture import llm_workload

    if count > 2 * NUM_LAYERS:
        raise InputError(f"the llm workload has {2 * NUM_LAYERS} GEMMs (o and down of {NUM_LAYERS} layers), "
                         f"not {count}")
    # o and down projections of layers spread over the depth, so errors can be located by layer
    layers = sorted({round(i * (NUM_LAYERS - 1) / max(math.ceil(count / 2) - 1, 1))
                     for i in range(math.ceil(count / 2))})
    return llm_workload(count=count, tokens=tokens, layers=",".join(map(str, layers)), components="o,down")


def _workload(kind: str, count: int, tokens: int, seed: int):
    return _llm_gemms(count, tokens) if kind == "llm" else random_workload(count=count, seed=seed)


def _hardware(backend: str, profile: str, seed: int):
    return open_accelerator(backend) if backend == "board" else open_accelerator(backend, profile=profile, seed=seed)


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
def compare(backend, clocks, bit, workload_kind, gemms, tokens, seed, profile, out_dir) -> None:
    """Compare realm, per-bit and twin error models with the hardware; write an HTML report."""
    from ..compare import compare_models, summary_table, write_report

    started = time.monotonic()
    workload = _workload(workload_kind, gemms, tokens, seed)
    clocks = list(clocks or DEFAULT_CLOCKS)
    with _hardware(backend, profile, seed) as hw, open_accelerator("twin", profile=profile, seed=seed) as twin:
        with click.progressbar(length=len(clocks), label="compare", file=sys.stderr) as bar:
            comparison = compare_models(hw, twin, workload, clocks, bit=bit, seed=seed, progress=bar.update)
    click.echo(summary_table(comparison))
    page = write_report(comparison, out_dir)
    click.echo(f"wrote {page} (and PNG, CSV) in {time.monotonic() - started:.1f} s")


@click.command("calibrate")
@click.option("--backend", default="sim", show_default=True, type=click.Choice(["sim", "board", "twin"]),
              help="where the error rates are measured")
@click.option("--clock-mhz", "clocks", multiple=True, type=MHZ, help=f"repeatable, >= 3 [{CALIBRATION_CLOCKS}]")
@click.option("--start", "start_profile", default=None, help="profile the fit starts from [--profile]")
@_with(workload_options)
@click.option("--name", default=None, help="name of the fitted profile [<start>-cal<date>]")
@out_file_option("profile YAML to write [runs/calibrate/<name>.yaml]")
def calibrate(backend, clocks, start_profile, workload_kind, gemms, tokens, seed, profile, name, out_path) -> None:
    """Fit t_base, tau and sigma of a timing profile to measured per-bit error rates; write the profile."""
    import datetime

    from ..compare import calibrate as fit
    from ..compare import write_profile
    from ..sweep import sweep_clock

    clocks = list(clocks or CALIBRATION_CLOCKS)
    if len(set(clocks)) < 3:
        raise click.BadParameter("give 3 or more distinct clocks", param_hint="--clock-mhz")
    start = load_profile(start_profile or profile)
    name = name or f"{start.name}-cal{datetime.date.today():%Y%m%d}"
    out_path = check_output_file(out_path or Path("runs/calibrate") / f"{name}.yaml")
    workload = _workload(workload_kind, gemms, tokens, seed)
    with _hardware(backend, profile, seed) as hw:
        points = sweep_clock(hw, workload, clocks)
        array_n = hw.array_n
    result = fit(start, workload, points, array_n=array_n, seed=seed)
    written = write_profile(result, out_path, name)
    click.echo(f"{'':18} {'start':>10} {'fitted':>10}")
    for field in ("t_base_ns", "tau_ns_per_bit", "variation_sigma"):
        click.echo(f"{field:18} {getattr(start, field):10.5g} {getattr(written, field):10.5g}")
    click.echo(f"{'log10-rate MSE':18} {result.loss_before:10.4g} {result.loss_after:10.4g}")
    for mhz, before, after in zip(result.clocks_mhz, result.js_before, result.js_after, strict=True):
        click.echo(f"{f'JS bits {mhz:g} MHz':18} {before:10.4f} {after:10.4f}")
    click.echo(f"wrote {out_path}")


COMMANDS = [compare, calibrate]
