"""Options shared by several commands."""

from __future__ import annotations

import click

from .. import BACKENDS

backend_option = click.option(
    "--backend", default="sim", show_default=True, type=click.Choice(BACKENDS), help="where GEMMs run"
)

emulate_checks_option = click.option(
    "--emulate-checks",
    is_flag=True,
    help="sim, twin: overclock the checksum accumulators with the array (EMU_CHECKS build) instead of "
    "keeping the checking logic exact",
)
