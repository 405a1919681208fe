"""`realm-hil gemm`: one random INT8 GEMM on a backend, checked bit for bit against numpy (int64 reduced mod 2^32)."""

from __future__ import annotations

import click

from ..gemm_check import run_gemm_check
from .options import SEED, backend_option


@click.command()
@backend_option
@click.option("--m", "m", default=64, show_default=True, type=click.IntRange(1))
@click.option("--k", "k", default=576, show_default=True, type=click.IntRange(1))
@click.option("--n", "n", default=576, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=SEED)
def gemm(backend: str, m: int, k: int, n: int, seed: int) -> None:
    """Run a random M x K x N INT8 GEMM and compare it bit for bit with numpy."""
    result = run_gemm_check(backend, m, k, n, seed)
    click.echo(result.summary())
    if not result.exact:
        raise SystemExit(1)


COMMANDS = [gemm]
