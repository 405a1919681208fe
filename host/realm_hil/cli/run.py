"""`realm-hil run`: the main job."""

from __future__ import annotations

import click

from ..demo import run_gemm_check
from .options import backend_option


@click.command()
@click.option("--board", is_flag=True, help="run on a PYNQ board (same as --backend board)")
@backend_option
@click.option("--seed", default=0, show_default=True, type=int)
def run(board: bool, backend: str, seed: int) -> None:
    """Run an LLM-shaped GEMM (64x576x576) on the accelerator and check it against numpy."""
    result = run_gemm_check("board" if board else backend, 64, 576, 576, seed)
    click.echo(result.summary())
    if not result.exact:
        raise SystemExit(1)


COMMANDS = [run]
