"""Options shared by several commands."""

from __future__ import annotations

import click

from .. import BACKENDS

backend_option = click.option(
    "--backend", default="sim", show_default=True, type=click.Choice(BACKENDS), help="where GEMMs run"
)
