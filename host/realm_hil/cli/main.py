"""The `realm-hil` command: a thin click layer over the library API."""

from __future__ import annotations

import sys

import click

from ..errors import RealmError
from ..timing.twin_kernel import TwinBuildError
from ..toolchain import ToolchainError

# The project's own error types for problems the user can fix: bad input, a missing or wrong board,
# bitstream or toolchain. Anything else that escapes a command, a plain ValueError included, is a
# bug (in the host, or in the hardware when a stream or the bus misbehaves) and keeps its traceback.
USER_ERRORS = (RealmError, ToolchainError, TwinBuildError)


class UserError(click.ClickException):
    """A one-line message and exit code 2: bad input, missing board, bad config."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"realm-hil: error: {self.message}", err=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _usage(exc: click.UsageError) -> UserError:
    """click's usage error (Usage:, Try:, Error: lines) as the one line the README promises."""
    message = _one_line(exc.format_message())
    if exc.ctx is not None:
        message += f" (see '{exc.ctx.command_path} --help')"
    return UserError(message)


class _Group(click.Group):
    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        # the group's own arguments: an unknown command or option of `realm-hil` itself
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _usage(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _usage(exc) from None
        except USER_ERRORS as exc:
            raise UserError(_one_line(str(exc)) or type(exc).__name__) from None
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
