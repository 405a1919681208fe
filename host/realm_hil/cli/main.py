"""The `realm-hil` command: a thin click layer over the library API."""

from __future__ import annotations

import sys

import click

from ..errors import RealmError
from ..toolchain import ToolchainError


class UserError(click.ClickException):
    """A one-line message and exit code 2: bad input, missing board, bad config."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"realm-hil: error: {self.message}", err=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ValueError, RealmError, ToolchainError, FileNotFoundError, TimeoutError) as exc:
            raise UserError(_one_line(exc)) from None
        except KeyboardInterrupt:
            click.echo("realm-hil: interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="realm-hil")
def cli() -> None:
    """Hardware-in-the-loop study of timing errors in LLM inference and statistical ABFT."""


def _register() -> None:
    from . import bench, characterize, compare, gemm, info, resources, run, serve, sweep

    for module in (info, gemm, run, bench, sweep, characterize, compare, serve, resources):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
