"""`realm-hil resources`: FPGA resources of the array and of the checking logic, from yosys."""

from __future__ import annotations

import json

import click

from ..fpga.resources import PART_ALIASES, PARTS, measure


@click.command()
@click.option("--array-n", default=8, show_default=True, type=click.IntRange(4, 32))
@click.option("--part", default="pynq-z2", show_default=True, type=click.Choice([*PART_ALIASES, *PARTS]),
              help="part to check the fit against")
@click.option("--json", "as_json", is_flag=True)
def resources(array_n: int, part: str, as_json: bool) -> None:
    """LUT/FF/DSP/BRAM of the array alone, the checksum + statistics logic, the whole top (FPGA build)."""
    report = measure(array_n)
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "overhead_pct": report.overhead_pct(),
                               "fits": report.fits(part)}, indent=2))
        return
    click.echo(f"realm_accel N={array_n}, TIMING_EMU=0, INJECT=0 (yosys {report.yosys_version}, synth_xilinx xc7)")
    click.echo(f"{'':<30}{'LUT':>8}{'FF':>8}{'DSP':>6}{'BRAM36':>8}")
    for label, res in (("array (realm_core)", report.array), ("checksums + statistics", report.checking),
                       ("whole top", report.top)):
        click.echo(f"{label:<30}{res.lut:>8}{res.ff:>8}{res.dsp:>6}{res.bram36:>8.1f}")
    over = report.overhead_pct()
    click.echo("checking overhead vs array: " + ", ".join(
        f"{k.upper()} {v:.1f}%" for k, v in over.items() if v is not None))
    util = report.top.utilisation(part)
    click.echo(f"{part}: " + ", ".join(f"{k.upper()} {v:.1f}%" for k, v in util.items())
               + ("  (fits)" if report.fits(part) else "  (DOES NOT FIT)"))


COMMANDS = [resources]
