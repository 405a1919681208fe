"""`realm-hil bench ...`: throughput figures as ratios against a baseline measured in the same run."""

from __future__ import annotations

import json

import click


def _emit(result: dict | list[dict], as_json: bool) -> None:
    """One result, or one per case (printed as blocks separated by a blank line)."""
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for i, case in enumerate(result if isinstance(result, list) else [result]):
        if i:
            click.echo("")
        for key, value in case.items():
            click.echo(f"{key:>26}: {value:.4g}" if isinstance(value, float) else f"{key:>26}: {value}")


@click.group()
def bench() -> None:
    """Benchmarks (speed figures relative to a baseline measured in the same run)."""


@bench.command("sim")
@click.option("--array-n", default=8, show_default=True, type=click.IntRange(4, 32))
@click.option("--json", "as_json", is_flag=True)
def bench_sim_cmd(array_n: int, as_json: bool) -> None:
    """Host path (driver, pynq, DMA model, Verilated RTL) against a raw C++ loop on the same RTL."""
    from ..benchmarks.sim_host_path import bench_sim

    _emit(bench_sim(array_n=array_n), as_json)


@bench.command("twin")
@click.option("--array-n", default=8, show_default=True, type=click.IntRange(4, 32))
@click.option("--json", "as_json", is_flag=True)
def bench_twin_cmd(array_n: int, as_json: bool) -> None:
    """Software twin against the RTL simulation on the same GEMMs, near the error onset and heavily overclocked."""
    from ..benchmarks.twin_vs_rtl import bench_twin_vs_rtl

    _emit(bench_twin_vs_rtl(array_n=array_n), as_json)


@bench.command("campaign")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(2), help="pool workers")
@click.option("--json", "as_json", is_flag=True)
def bench_campaign_cmd(jobs: int, as_json: bool) -> None:
    """Points per second of one characterize grid in-process and on a pool of --jobs workers."""
    from ..benchmarks.campaign import bench_campaign

    _emit(bench_campaign(jobs=jobs), as_json)


COMMANDS = [bench]
