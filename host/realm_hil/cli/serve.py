"""`realm-hil serve`: expose this machine's accelerator to a workstation over TCP."""

from __future__ import annotations

import math
from pathlib import Path

import click
from click.core import ParameterSource

from ..backends.registry import BACKENDS
from ..remote.protocol import MAX_TIMEOUT_S, TOKEN_ENV, parse_address
from ..remote.server import MAX_ELEMENTS, ServerConfig
from ..serving import ServeConfig
from ..serving import serve as serve_until_stopped
from ..sim.overlay import BOARD_NAMES, SimBoardConfig


def _check_bind(ctx, param, value: str) -> str:
    try:
        parse_address(value, listen=True)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _check_seconds(ctx, param, value: float) -> float:
    if math.isnan(value):
        raise click.BadParameter("nan is not a number of seconds")
    return value


@click.command()
@click.option("--bind", required=True, metavar="ADDR:PORT", callback=_check_bind,
              help="address to listen on, e.g. 192.168.2.99:5555 (no default: choose the interface)")
@click.option("--backend", default="board", show_default=True, type=click.Choice(BACKENDS),
              help="the accelerator to serve")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"file holding the shared token [default: ${TOKEN_ENV}]")
@click.option("--max-elements", default=ServerConfig.max_elements, show_default=True,
              type=click.IntRange(1, MAX_ELEMENTS), help="largest M*K, K*N and M*N accepted")
@click.option("--idle-timeout", default=ServerConfig.idle_timeout_s, show_default=True, callback=_check_seconds,
              type=click.FloatRange(0, MAX_TIMEOUT_S, min_open=True),
              help="seconds before an idle client is disconnected")
@click.option("--allow-force", is_flag=True,
              help="let clients force clocks past the board's safety ceiling (refused by default)")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path),
              help="--backend board: the bitstream manifest, the overlay files beside it [bitstreams/manifest.json]")
@click.option("--pynq-remote", is_flag=True,
              help="instead, simulate a ZU board running the PYNQ.remote image (the Verilated accelerator) for "
                   "`realm-hil run --board pynq://...`; like PYNQ.remote it takes no token")
@click.option("--board-name", default=SimBoardConfig.board, show_default=True, type=click.Choice(BOARD_NAMES),
              help="--pynq-remote: the board to simulate")
@click.option("--array-n", default=SimBoardConfig.array_n, show_default=True, type=click.IntRange(4, 32),
              help="--pynq-remote: array size of the simulated overlay")
@click.option("--seed", default=SimBoardConfig.seed, show_default=True, type=click.IntRange(0),
              help="--pynq-remote: per-PE variation map of the modeled array clock")
@click.option("--overlay-dir", type=click.Path(file_okay=False, path_type=Path),
              help="--pynq-remote: where the simulated board's overlay and manifest go [cache]")
def serve(**options) -> None:
    """Serve GEMMs, statistics and clock control to one remote client at a time.

    The clock goes back to nominal whenever a client leaves, however it leaves. With --pynq-remote,
    simulate a ZU board for pynq's own PYNQ.remote client instead.
    """
    ctx = click.get_current_context()
    # only the options given: the library knows which belong to which mode, and the defaults shown above
    given = {name: value for name, value in options.items()
             if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}
    serve_until_stopped(ServeConfig(**given))


COMMANDS = [serve]
