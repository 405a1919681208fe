"""`realm-hil info`: what this machine can run and where things are cached."""

from __future__ import annotations

import json

import click

from ..diagnostics import machine_info


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of text")
def info(as_json: bool) -> None:
    """Version, array size, available backends (and why not), Verilator, cache location."""
    report = machine_info()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"realm-hil {report['version']}  array {report['array_n']}x{report['array_n']}  "
               f"register map {report['regmap_version']}")
    for name, status in report["backends"].items():
        click.echo(f"  {name:<10} {status}")
    click.echo(f"verilator: {report['verilator']}")
    click.echo(f"cache:     {report['cache']}")


COMMANDS = [info]
